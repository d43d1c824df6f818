"""The experiment seam: what an experiment declares (:class:`Experiment`), the parameters it
receives (:class:`Params`) and the options it accepts (:class:`Option`).

An experiment measures one *cell* (one variant, one workload, one repetition) at a time and
returns that cell's measurements; :mod:`virtbench.runner` decides the order, stores the
cells and resumes them. Each experiment declares the metrics it emits beside its measuring
code (:attr:`Experiment.metrics`), and the rows written when it measured nothing
(:attr:`Experiment.primary`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from virtbench.metric import Metric
from virtbench.platforms.base import Platform, Workload
from virtbench.store.schema import Measurement


@dataclass(frozen=True)
class Params:
    """Run parameters every experiment receives."""

    quick: bool = False
    reps: int = 10
    warmup: int = 1
    seed: int = 0
    options: dict = field(default_factory=dict)


MeasureFn = Callable[[Platform, Workload, Params], list[Measurement]]


@dataclass(frozen=True)
class Option:
    """A declared ``--option key=value``: its type, inclusive range and meaning."""

    type: type[int] | type[float]
    low: float
    high: float
    help: str = ""

    def describe(self, key: str) -> str:
        return f"{key} ({self.type.__name__} {self.low:g}..{self.high:g}: {self.help})"


@dataclass(frozen=True)
class Experiment:
    """A named measurement step, its defaults, and the metrics it emits."""

    name: str
    description: str
    measure: MeasureFn
    workloads: tuple[str, ...] = ("noop",)
    reps: int = 10
    quick_reps: int = 3
    warmup: int = 1
    quick_warmup: int | None = None        # warm-up repetitions with --quick (None: warmup)
    once: bool = False                     # a property (e.g. a size), measured a single time
    options: dict[str, Option] = field(default_factory=dict)  # what --option accepts
    #: variants this experiment leaves out with --quick, each with the reason its rows give
    quick_skips: Mapping[str, str] = field(default_factory=dict)
    #: the workloads when they are not built-in ones (the host's own programs, such as
    #: Debian's sysbench): a function that names them, called when the experiment runs
    tools: Callable[[], list[Workload]] | None = None
    #: every metric its rows can carry (the catalog collects them)
    metrics: tuple[Metric, ...] = ()
    #: the (metric, conditions) rows written when nothing was measured, with the reason
    primary: tuple[tuple[str, Mapping[str, str]], ...] = ()

    def __post_init__(self) -> None:
        declared = {m.name for m in self.metrics}
        foreign = [m.name for m in self.metrics if m.experiment != self.name]
        if foreign:
            raise ValueError(f"experiment {self.name!r} declares metrics of another "
                             f"experiment: {foreign}")
        if len(declared) != len(self.metrics):
            raise ValueError(f"experiment {self.name!r} declares a metric twice")
        undeclared = [name for name, _ in self.primary if name not in declared]
        if undeclared:
            raise ValueError(f"experiment {self.name!r}: primary rows name undeclared "
                             f"metrics {undeclared}")

    def default_workloads(self) -> list[Workload]:
        """What the experiment runs when the user names no workload."""
        if self.tools is not None:
            return self.tools()
        return [Workload(w) for w in self.workloads]

    def metric(self, name: str) -> Metric:
        """The declared metric ``name``; the error lists the declared ones."""
        for m in self.metrics:
            if m.name == name:
                return m
        raise ValueError(f"metric {name!r} is not declared for experiment {self.name!r}; "
                         f"declared: {', '.join(m.name for m in self.metrics)}")

    def primary_metrics(self) -> list[tuple[Metric, dict[str, str]]]:
        """The primary (metric, conditions) pairs: the "not measured" rows."""
        return [(self.metric(name), dict(conditions)) for name, conditions in self.primary]

    def quick_skip(self, variant: str, quick: bool) -> str:
        """"not measured with --quick: why" when ``--quick`` leaves ``variant`` out, else ""."""
        why = self.quick_skips.get(variant, "") if quick else ""
        return f"not measured with --quick: {why}" if why else ""

    def missing(self, reason: str) -> list[Measurement]:
        """One row with ``reason`` and no value for each primary metric."""
        return [Measurement.missing(m.name, m.unit, reason, conditions=c)
                for m, c in self.primary_metrics()]


def check_options(experiment: Experiment, options: Mapping[str, object]) -> dict[str, float]:
    """Typed option values; an unknown key or a bad value is a ValueError listing valid ones."""
    declared = experiment.options
    valid = "; ".join(o.describe(k) for k, o in declared.items()) or "none (it takes no options)"
    out: dict[str, float] = {}
    for key, raw in options.items():
        if key not in declared:
            raise ValueError(f"unknown option {key!r} for experiment {experiment.name!r}; "
                             f"valid: {valid}")
        opt = declared[key]
        try:
            value = opt.type(raw)
            # a range check is false for NaN; int(2.5) is 2, so compare with the float
            if not opt.low <= value <= opt.high or value != float(raw):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"option {key}={raw!r} is invalid: expected "
                             f"{opt.describe(key)}; valid: {valid}") from None
        out[key] = value
    return out


def resolve_params(experiment: Experiment, *, reps: int | None = None, quick: bool = False,
                   seed: int = 0, options: dict | None = None) -> Params:
    """The parameters of a run: the experiment's default repetitions unless ``reps``, one
    and no warm-up for a property measured once."""
    if reps is None:
        reps = experiment.quick_reps if quick else experiment.reps
    if reps < 1:
        raise ValueError(f"reps must be a positive integer, got {reps}")
    if experiment.once:
        reps = 1
    warmup = experiment.warmup
    if quick and experiment.quick_warmup is not None:
        warmup = experiment.quick_warmup
    if experiment.once:
        warmup = 0
    return Params(quick=quick, reps=reps, warmup=warmup, seed=seed, options=options or {})


#: What ``--quick`` leaves to a full run in the experiments where the machine type is not
#: the point: qemu-tcg/pc emulates the same CPU as qemu-tcg/microvm, behind a boot several
#: times longer (a third of a quick run's time went to it).
QUICK_SKIPS_TCG_PC = {
    "qemu-tcg/pc": "qemu-tcg/pc runs the same TCG emulator as qemu-tcg/microvm behind a "
                   "slower boot; --quick measures its startup, memory, density and disk (where "
                   "the machine type matters) and leaves this experiment to a full run"}
