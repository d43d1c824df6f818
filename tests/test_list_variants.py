"""`virtbench list variants` says what each variant is, in the variant's own words."""

from __future__ import annotations

import importlib
import json

from virtbench import platforms
from virtbench.cli import main


def test_each_variant_is_described_by_its_own_summary(capsys):
    assert main(["list", "variants", "--json"]) == 0
    described = {r["name"]: r["description"] for r in json.loads(capsys.readouterr().out)}
    assert set(described) == set(platforms.VARIANTS)
    for variant, (_family, where) in platforms.VARIANTS.items():
        module, _, name = where.partition(":")
        summary = getattr(importlib.import_module(module), name).summary
        assert summary and described[variant].endswith(summary), variant
    assert len(set(described.values())) == len(described), "two variants read the same"
