"""The claim map's data: a claim (published rows and how to check them), its readings and
picks, the loaded file and its error."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from virtbench.dataset import BASELINE


@dataclass(frozen=True)
class Pick:
    """One way to measure a reading of a claim. A reading lists several only for variants or
    datasets that measure the same quantity differently (the first with data that meets the
    requirements answers); a different quantity is a different reading."""

    metric: str
    experiment: str
    transform: str = "value"
    workload: str | None = None
    baseline_metric: str | None = None
    variants: tuple[str, ...] = ()
    conditions: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Reading:
    """One honest meaning of a claim, measured its own way. ``name`` "" is the only reading
    of a claim given with plain ``picks``."""

    name: str
    means: str
    picks: tuple[Pick, ...]
    requires: dict[str, Any] = field(default_factory=dict)
    variants: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClaimMap:
    """Published rows (selected by table, metric, system, condition) and how to check them."""

    key: str
    notebooks: tuple[str, ...]
    source: str
    table: str
    metrics: tuple[str, ...]
    systems: tuple[str, ...] = ()
    condition: str | None = None
    stat: str | None = None
    picks: tuple[Pick, ...] = ()
    variants: tuple[str, ...] = ()
    baseline: tuple[str, ...] = (BASELINE,)
    over: str | None = None
    up_to_from: float | None = None
    not_measurable: str = ""
    comparable: str = ""
    note: str = ""
    requires: dict[str, Any] = field(default_factory=dict)
    readings: tuple[Reading, ...] = ()
    stands_in: str = ""
    kind: str = ""  # "" a value claim; "ranking" (virtbench.rankings); "cost" (virtbench.costs)
    spec: dict[str, Any] = field(default_factory=dict)  # the kind's own settings
    aspect: str = ""  # what the claim is about, the name notebooks select it by ("" none)
    line: int = 0


@dataclass(frozen=True)
class ClaimMapFile:
    """The loaded map: system names, systems not here, and the mappings."""

    path: Path
    systems: dict[str, tuple[str, ...]]
    not_here: dict[str, str]
    claims: tuple[ClaimMap, ...]


class ClaimMapError(ValueError):
    """A claim map that cannot be used; the message names file and line."""

    def __init__(self, path: Path, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
