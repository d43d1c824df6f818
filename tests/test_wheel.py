"""The wheel works where it is installed: papers, notebooks and the reference ship inside."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from virtbench.paths import PROJECT_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv outside the checkout with the built wheel installed (its dependencies
    are this environment's, reached through a .pth file, so nothing is downloaded twice)."""
    tmp = tmp_path_factory.mktemp("wheel")
    had_build = (PROJECT_DIR / "build").exists()
    try:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w",
                        str(tmp / "dist"), str(PROJECT_DIR)], check=True, timeout=600,
                       capture_output=True)
    finally:  # setuptools builds in the checkout's build/: leave the tree as it was
        if not had_build:
            shutil.rmtree(PROJECT_DIR / "build", ignore_errors=True)
    wheel = next((tmp / "dist").glob("virtbench-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")],
                   check=True, timeout=120)
    python = tmp / "venv" / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print("
                                   "sysconfig.get_paths()['purelib'])"], check=True,
                                  capture_output=True, text=True).stdout.strip())
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(purelib), str(wheel)], check=True, timeout=600, capture_output=True)
    (purelib / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (tmp / "elsewhere").mkdir()
    return tmp


def _virtbench(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp), "LANG": "C.UTF-8"}
    return subprocess.run([str(tmp / "venv" / "bin" / "python"), "-m", "virtbench", *args],
                          cwd=tmp / "elsewhere", env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_wheel_carries_papers_notebooks_and_the_reference(installed):
    wheel = next((installed / "dist").glob("virtbench-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "virtbench/_shipped/papers/claims.toml" in names
    assert "virtbench/_shipped/notebooks/01_startup.ipynb" in names
    assert "virtbench/_shipped/reference/results.csv" in names
    assert not any(n.startswith("virtbench/_shipped/reference/writer.lock") for n in names)


def test_an_installed_virtbench_runs_published_and_claims_outside_the_checkout(installed):
    published = _virtbench(installed, "published", "seed")
    assert published.returncode == 0, published.stderr
    assert "era of emergence" in published.stdout
    claims = _virtbench(installed, "claims", "--source", "seed")
    assert claims.returncode == 0, claims.stderr
    assert "claim-family pairs with a verdict" in claims.stdout
    located = subprocess.run([str(installed / "venv" / "bin" / "python"), "-c",
                              "import virtbench; print(virtbench.__file__)"],
                             capture_output=True, text=True, timeout=60,
                             cwd=installed / "elsewhere", env={"PATH": "/usr/bin:/bin"})
    assert located.stdout.startswith(str(installed / "venv"))
