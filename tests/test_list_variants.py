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


def test_every_family_package_has_the_same_parts():
    """Each family declares its variants in its package, has its base class in platform.py
    and its settings-only variants in variants.py (lib/virtbench/README.md)."""
    from virtbench.paths import PACKAGE_DIR

    for family in platforms.FAMILIES:
        package = importlib.import_module(f"virtbench.platforms.{family}")
        folder = PACKAGE_DIR / "platforms" / family
        assert (folder / "platform.py").is_file() and (folder / "variants.py").is_file()
        assert package.VARIANTS and all(
            platforms.VARIANTS[name] == (family, where) for name, where in
            package.VARIANTS.items())
        assert any(where.startswith(f"virtbench.platforms.{family}.variants:")
                   for where in package.VARIANTS.values()), family
    assert sum(len(importlib.import_module(f"virtbench.platforms.{f}").VARIANTS)
               for f in platforms.FAMILIES) == len(platforms.VARIANTS)
