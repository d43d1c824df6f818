"""Shared fixtures: every test writes datasets into its own temporary folder."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_datasets(tmp_path, monkeypatch):
    """Runs made by tests never land in the project's datasets/ folder."""
    monkeypatch.setenv("VIRTBENCH_DATASETS", str(tmp_path / "datasets"))
