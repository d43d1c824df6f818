"""Where virtbench keeps its files: the cache (build artifacts, engines, kernels) and datasets."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent.parent


def cache_dir() -> Path:
    """The suite's cache: ``$VIRTBENCH_CACHE`` or ``~/.cache/virtbench``; created on demand."""
    path = Path(os.environ.get("VIRTBENCH_CACHE", Path.home() / ".cache" / "virtbench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def datasets_dir() -> Path:
    """Where runs are written: ``$VIRTBENCH_DATASETS`` or ``<project>/datasets``."""
    path = Path(os.environ.get("VIRTBENCH_DATASETS", PROJECT_DIR / "datasets"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def reference_dir() -> Path:
    """The shipped reference run (``datasets/reference`` of the project), wherever
    ``$VIRTBENCH_DATASETS`` points."""
    return PROJECT_DIR / "datasets" / "reference"


def papers_dir() -> Path:
    """The published figures shipped with the project."""
    return Path(os.environ.get("VIRTBENCH_PAPERS", PROJECT_DIR / "papers"))
