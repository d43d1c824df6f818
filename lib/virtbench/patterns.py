"""Variant patterns: the one syntax the command line, the notebooks and the claim map share.

A pattern is a family name (``wasm``), an exact variant (``qemu-tcg/pc``), the part of a
variant before its slash (``qemu-tcg``), or a glob (``*/aot``). A pattern prefixed with
``!`` excludes what it matches. A list of patterns selects the variants that match any
plain pattern (every variant when there is none) and no excluding one.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence

__all__ = ["matches", "selected", "select"]


def matches(pattern: str, variant: str, family: str) -> bool:
    """Whether one plain pattern matches a variant of ``family``."""
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(variant, pattern)
    return pattern in (family, variant, variant.split("/")[0])


def selected(patterns: Sequence[str], variant: str, family: str) -> bool:
    """Whether ``patterns`` select the variant (see the module docstring)."""
    include = [p for p in patterns if not p.startswith("!")]
    exclude = [p[1:] for p in patterns if p.startswith("!")]
    return ((not include or any(matches(p, variant, family) for p in include))
            and not any(matches(p, variant, family) for p in exclude))


def select(patterns: Iterable[str], known: dict[str, str]) -> list[str]:
    """The variants of ``known`` (variant -> family, in order) that ``patterns`` select.

    A plain pattern that matches no known variant is an error listing the valid forms.
    """
    patterns = list(patterns)
    for p in patterns:
        bare = p[1:] if p.startswith("!") else p
        if not bare or not any(matches(bare, v, f) for v, f in known.items()):
            families = sorted(set(known.values()))
            raise ValueError(
                f"no variant matches {p!r}; a pattern is a family ({', '.join(families)}), "
                f"a variant ({', '.join(known)}), the part before '/', or a glob such as "
                "'*/aot'; prefix '!' to exclude")
    return [v for v, f in known.items() if selected(patterns, v, f)]
