"""Ships the published figures, the notebooks and the reference run inside the wheel.

They live at the top of the checkout (``papers/``, ``notebooks/``, ``datasets/reference/``),
outside the package; the build copies them to ``virtbench/_shipped/`` so an installed
virtbench finds them where :mod:`virtbench.paths` looks when there is no checkout.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"papers": "papers", "notebooks": "notebooks", "datasets/reference": "reference"}
KEEP = ("*.csv", "*.toml", "*.bib", "*.md", "*.ipynb", "*.json", "*.jsonl")


class BuildWithShippedData(build_py):
    """build_py, then the shipped folders copied under the built package."""

    def run(self) -> None:
        super().run()
        for source, name in SHIPPED.items():
            target = Path(self.build_lib) / "virtbench" / "_shipped" / name
            if target.exists():
                shutil.rmtree(target)
            ignore = shutil.ignore_patterns("writer.lock", ".ipynb_checkpoints", "__pycache__")
            shutil.copytree(ROOT / source, target, ignore=ignore)
            for path in target.rglob("*"):
                if path.is_file() and not any(path.match(p) for p in KEEP):
                    path.unlink()


setup(cmdclass={"build_py": BuildWithShippedData})
