"""Where virtbench keeps its files: the cache (build artifacts, engines, kernels) and datasets."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent.parent
#: Where an installed wheel keeps the papers, notebooks and reference run (see setup.py).
SHIPPED_DIR = PACKAGE_DIR / "_shipped"


def shipped(checkout_path: str, name: str) -> Path:
    """A folder the project ships: the checkout's own when running from a checkout, else
    the copy inside the installed package."""
    in_checkout = PROJECT_DIR / checkout_path
    return in_checkout if in_checkout.is_dir() or not (SHIPPED_DIR / name).is_dir() \
        else SHIPPED_DIR / name


def cache_dir() -> Path:
    """The suite's cache: ``$VIRTBENCH_CACHE`` or ``~/.cache/virtbench``; created on demand."""
    path = Path(os.environ.get("VIRTBENCH_CACHE", Path.home() / ".cache" / "virtbench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def datasets_dir() -> Path:
    """Where runs are written: ``$VIRTBENCH_DATASETS``, else ``<project>/datasets`` in a
    checkout, else ``./datasets`` (an installed package)."""
    default = PROJECT_DIR / "datasets" if (PROJECT_DIR / "datasets").is_dir() \
        or not SHIPPED_DIR.is_dir() else Path.cwd() / "datasets"
    path = Path(os.environ.get("VIRTBENCH_DATASETS", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def reference_dir() -> Path:
    """The shipped reference run (``datasets/reference`` of the project), wherever
    ``$VIRTBENCH_DATASETS`` points."""
    return shipped("datasets/reference", "reference")


def papers_dir() -> Path:
    """The published figures shipped with the project."""
    return Path(os.environ.get("VIRTBENCH_PAPERS", shipped("papers", "papers")))


def notebooks_dir() -> Path:
    """The project's notebooks (the checkout's, or the installed package's copy)."""
    return shipped("notebooks", "notebooks")
