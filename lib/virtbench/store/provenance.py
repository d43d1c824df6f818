"""What measured a row: the git commit of the tree and a fingerprint of the measuring code.

The fingerprint (``code``) hashes the sources that take part in a measurement: every file
of the package except the analysis-only modules below and the Markdown documentation, so a
change to a report, a claim or a README does not make two measurements look like different
code, and any change to a platform, workload, experiment or the runner does.
"""

from __future__ import annotations

import hashlib
import subprocess
from functools import cache
from pathlib import Path

from virtbench.paths import PACKAGE_DIR, PROJECT_DIR

#: Parts of the package that never take part in measuring (analysis: the claims check and
#: the modules it hands claims to, presentation, the CLI front end, the store itself and its
#: re-export ``results``): left out of the fingerprint. A folder is named without a suffix.
ANALYSIS_ONLY = frozenset({
    "claims", "rankings.py", "magnitudes.py", "costs.py", "recommend.py", "repindex.py",
    "sandboxes.py", "nearest.py", "stats.py", "report.py", "plots.py", "tables.py",
    "dataset.py", "published.py", "compare.py", "summary.py", "notebook.py", "export.py",
    "cli.py", "__main__.py", "results.py", "store", "templates",
})
CODE_LENGTH = 12
DIRTY = "+dirty"


def _sources(root: Path) -> list[Path]:
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if (path.is_file() and rel.parts[0] not in ANALYSIS_ONLY
                and "__pycache__" not in rel.parts and path.suffix not in (".pyc", ".md")):
            out.append(path)
    return out


def fingerprint(root: Path) -> str:
    """sha256 (first 12 hex) over the relative paths and contents of the measuring sources
    under ``root`` (the package folder)."""
    digest = hashlib.sha256()
    for path in _sources(root):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:CODE_LENGTH]


@cache
def measuring_code() -> str:
    """The fingerprint of this process's measuring code (computed once per process)."""
    return fingerprint(PACKAGE_DIR)


@cache
def measuring_commit() -> str:
    """The commit of the tree (40 hex, ``+dirty`` when lib/ has uncommitted changes), ""
    when this is not a git checkout."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=PROJECT_DIR, capture_output=True,
                              text=True, timeout=10)
    try:
        head = git("rev-parse", "--verify", "HEAD")
        if head.returncode != 0:
            return ""
        status = git("status", "--porcelain", "--", str(PACKAGE_DIR.parent))
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return head.stdout.strip() + (DIRTY if status.stdout.strip() else "")


def migrated_code(commit: str) -> str:
    """The ``code`` of a row migrated from an older format: its commit stands for the code
    (different commits count as different code), "" when the commit is unknown."""
    if not commit:
        return ""
    base, dirty = commit.removesuffix(DIRTY), commit.endswith(DIRTY)
    return f"commit:{base[:CODE_LENGTH]}" + (DIRTY if dirty else "")
