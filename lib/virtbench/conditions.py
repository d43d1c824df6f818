"""What the conditions of a row mean: the alternates a request must ask for by name
(:data:`OPT_IN`), the value a row without a key was measured under (:data:`DEFAULTS`), the
keys a comparison holds equal (:data:`PAIRED`), the values that are never comparable
(:data:`NOT_COMPARABLE`), the one parser of a row's conditions text, and a condition's value
or label as readers show them."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence

from virtbench import catalog

# Condition values that are a variation of the usual measurement: only rows asked for them
# by name carry them into a sample (a container started with --network none, the pooling
# allocator, a warm code cache, a precompiled module, reads after the page cache was dropped,
# a runtime's in-memory file system, a Debian userland or the full-OS guest instead of the
# minimal one, a start without warm-up, an in-engine time bound, the engine's default memory
# limit, the seed document's 10,000-connection http load instead of the light one).
# The cpu kernels other than the hash chain are asked for by name too, so a request that does
# not name a kernel reads the hash kernel, as it did before there were others.
OPT_IN: dict[str, frozenset[str]] = {
    "network": frozenset({"none"}),
    "allocator": frozenset({"pooling"}),
    "code_cache": frozenset({"on"}),
    "module": frozenset({"precompiled"}),
    "kernel": frozenset(catalog.VALUES["kernel"]) - {"hash"},
    "cache": frozenset({"cold"}),
    "fs": frozenset({"memory"}),
    "userland": frozenset({"debian", "debian-systemd"}),
    "warm_up": frozenset({"none"}),
    "time_bound": frozenset({"epoch", "none"}),
    "memory_limit": frozenset({"off"}),
    "load": frozenset({"seed"}),
}
# What a row without the key was measured under, for keys that have such a default (the
# cpu rows of older datasets ran only the hash kernel).
DEFAULTS: dict[str, str] = {"allocator": "on-demand", "code_cache": "off",
                            "module": "source", "kernel": "hash", "cache": "warm",
                            "fs": "host", "userland": "minimal", "load": "light"}
# Condition keys that say what work was done: a comparison with a baseline holds them equal
# (a variant's nbody time is divided by the baseline's nbody time).
PAIRED: tuple[str, ...] = ("kernel",)
Conditions = Mapping[str, str | Sequence[str]]
# Condition values that make a row not comparable with the others: such rows never enter a
# verdict unless a claim asks for them by name, and this is the reason shown for them.
NOT_COMPARABLE: dict[tuple[str, str], str] = {
    ("fs", "memory"): "in-memory filesystem, not a host directory",
}


def parse_conditions(text: object) -> dict[str, str]:
    """The conditions of a row as a dict ("" or NaN: none)."""
    if not isinstance(text, str) or not text:
        return {}
    return dict(_parsed(text))


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[tuple[str, str], ...]:
    """A row's conditions text parsed once (a run has few distinct condition sets)."""
    return tuple((str(k), str(v)) for k, v in json.loads(text).items())


@functools.lru_cache(maxsize=4096)
def row_conditions_text(text: str) -> str:
    """:func:`conditions_text` of a row's stored conditions, computed once per distinct text."""
    return conditions_text(parse_conditions(text))


def conditions_text(conditions: Mapping[str, str]) -> str:
    """Conditions as short text: "network=none, state=idle" ("" when none)."""
    return ", ".join(f"{k}={v}" for k, v in sorted(conditions.items()))


def conditions_of(text: object) -> dict[str, str]:
    """The conditions of a row (JSON, as stored) or of a summary line ("k=v, k2=v2", as
    :func:`conditions_text` writes them) as a dict ("" or NaN: none)."""
    if not isinstance(text, str) or not text:
        return {}
    if text.startswith("{"):
        return parse_conditions(text)
    return dict(part.split("=", 1) for part in text.split(", "))


def condition_value(text: object, key: str) -> str:
    """One condition of a row or summary line (:func:`conditions_of`): its value, else the
    value a row without it was measured under (:data:`DEFAULTS`), else ""."""
    return conditions_of(text).get(key, DEFAULTS.get(key, ""))


def without_condition(text: object, key: str) -> str:
    """The conditions of a row or summary line but ``key``, as :func:`conditions_text`."""
    return conditions_text({k: v for k, v in conditions_of(text).items() if k != key})


def with_conditions(label: str, conditions: str) -> str:
    """A label with its conditions text, e.g. "startup (network=none)"; without any, the
    label alone."""
    return f"{label} ({conditions})" if conditions else label


def paired_conditions(text: str) -> dict[str, str]:
    """The :data:`PAIRED` keys of conditions given as :func:`conditions_text` text."""
    return {k: v for k, v in conditions_of(text).items() if k in PAIRED}


def wanted(row_conditions: Mapping[str, str], asked: Conditions | None) -> bool:
    """Whether a row's conditions fit a request: each asked key takes an allowed value (a row
    without the key has its :data:`DEFAULTS` value; with no default, the key does not
    constrain it), and no unasked key has an opt-in value (:data:`OPT_IN`)."""
    asked = asked or {}
    for key, allowed in asked.items():
        values = [allowed] if isinstance(allowed, str) else list(allowed)
        value = row_conditions.get(key, DEFAULTS.get(key))
        if value is not None and value not in values:
            return False
    return not any(key not in asked and value in OPT_IN.get(key, ())
                   for key, value in row_conditions.items())
