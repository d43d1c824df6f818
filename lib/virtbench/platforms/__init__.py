"""Registry of platform variants, imported lazily so a missing SDK only disables its family."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from virtbench import patterns
from virtbench.platforms.base import (
    FAMILIES,
    Availability,
    NotSupported,
    Platform,
    RunOutcome,
    Workload,
)

__all__ = [
    "FAMILIES", "Availability", "NotSupported", "Platform", "RunOutcome", "Workload",
    "VARIANTS", "CLASSES", "Variant", "create", "select", "family_of", "class_of",
]

#: A variant as callers name it: its registered name, a Platform class, or a platform object.
Variant = str | type[Platform] | Platform

# variant name -> (family, "module:Class"), in the order of reports: each family package
# declares its own variants (``VARIANTS`` in its ``__init__.py``, strings only: nothing of a
# runtime is imported until a variant is created). A variant defined elsewhere (a test's
# fake) may be registered by its class instead of the string.
VARIANTS: dict[str, tuple[str, str | type[Platform]]] = {
    name: (family, where) for family in FAMILIES
    for name, where in importlib.import_module(f"virtbench.platforms.{family}").VARIANTS.items()
}

#: The class of isolation a report's column puts a variant in: its family's, except where
#: a variant gives each instance a kernel boundary its family's others lack.
CLASSES: dict[str, str] = {"native": "process", "docker": "container", "wasm": "wasm",
                           "vm": "vm"}
SANDBOXED_CONTAINER = "sandboxed container"
VARIANT_CLASSES: dict[str, str] = {
    # gVisor: the container's system calls are served by its own user-space kernel
    "docker/runsc": SANDBOXED_CONTAINER,
}


def family_of(variant: str) -> str:
    return VARIANTS[variant][0]


def class_of(variant: str) -> str:
    """The variant's class for reports: "process", "container", "sandboxed container",
    "wasm" or "vm"; the error lists the valid variants."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    return VARIANT_CLASSES.get(variant, CLASSES[family_of(variant)])


def create(variant: Variant) -> Platform:
    """The platform object of ``variant``: the object itself, a new object of a Platform
    class, or a new object of the variant registered under that exact name (the error lists
    the valid names)."""
    if isinstance(variant, Platform):
        return variant
    if isinstance(variant, type) and issubclass(variant, Platform):
        return variant()
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    where = VARIANTS[variant][1]
    if not isinstance(where, str):
        return where()
    module, _, cls = where.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)()
    except ModuleNotFoundError as exc:
        if exc.name and (exc.name == module or module.startswith(exc.name + ".")):
            return _Unimportable(variant, "not implemented in this version of virtbench", "")
        return _Unimportable(variant, f"cannot import its module: {exc}",
                             "run `make setup` to install the Python dependencies")
    except (ImportError, AttributeError) as exc:
        return _Unimportable(variant, f"cannot import its module: {exc}",
                             "run `make setup` to install the Python dependencies")


def select(families: Iterable[str] = (), variants: Iterable[str] = ()) -> list[str]:
    """Variant names chosen by family and/or variant pattern (see :mod:`virtbench.patterns`:
    a family, an exact name, the part before '/', a glob, '!' to exclude).

    Nothing chosen means every variant. Unknown names raise ValueError listing valid ones.
    """
    families, variants = list(families), list(variants)
    for f in families:
        if f not in FAMILIES:
            raise ValueError(f"unknown family {f!r}; valid: {', '.join(FAMILIES)}")
    known = {name: fam for name, (fam, _) in VARIANTS.items()}
    chosen: list[str] = []
    if variants:
        chosen += patterns.select(variants, known)
    chosen += [name for name, fam in known.items() if fam in families]
    if not families and not variants:
        chosen = list(VARIANTS)
    order = list(VARIANTS)
    return sorted(dict.fromkeys(chosen), key=order.index)


class _Unimportable(Platform):
    """Stands in for a variant whose module cannot be imported (missing SDK)."""

    def __init__(self, variant: str, reason: str, fix: str) -> None:
        self._reason, self._fix = reason, fix
        self.family = VARIANTS[variant][0]
        self.variant = variant

    def check(self) -> Availability:
        return Availability(False, self._reason, self._fix)
