"""The runner: interleaves an experiment's cells, stores them and resumes them.

It decides the order (repetitions outside, variants inside, in a seeded shuffled order per
repetition), skips cells already stored, turns unavailable variants and unsupported
measurements into rows with a reason (the experiment's primary rows), and writes each cell
to disk before the next one starts. What a cell measures is the experiment's own business
(:mod:`virtbench.experiments`).
"""

from __future__ import annotations

import random
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence

from virtbench import platforms, sweep
from virtbench.durations import duration_text
from virtbench.experiments.base import Experiment, Params, check_options, resolve_params
from virtbench.host import check_host, finish_invocation, write_host_json
from virtbench.hostheal import heal_host_json
from virtbench.platforms import Variant
from virtbench.platforms.base import NotSupported, Platform, Workload
from virtbench.store.errors import WriteFailed
from virtbench.store.rows import make_rows
from virtbench.store.schema import Measurement, Row, now
from virtbench.store.writer import RunStore

Progress = Callable[[str], None]


def stderr_progress(message: str) -> None:
    """The default progress: one line on stderr."""
    print(message, file=sys.stderr, flush=True)


def run(
    experiment: Experiment,
    variants: Sequence[Variant],
    store: RunStore,
    *,
    reps: int | None = None,
    quick: bool = False,
    workloads: Sequence[Workload] | None = None,
    seed: int = 0,
    options: Mapping[str, object] | None = None,
    progress: Progress | None = stderr_progress,
    force_host: bool = False,
    remeasure: bool = False,
) -> RunStore:
    """Measure ``experiment`` on ``variants`` into ``store`` (resuming what is there; cells
    that failed are measured again; with ``remeasure`` every chosen cell is measured again,
    its new rows appended and read instead of the earlier ones).

    A variant is a registered name, a Platform class or a platform object
    (:func:`virtbench.platforms.create`); the runner closes the platforms it created, and
    leaves the objects it was given to their owner.

    Before any platform starts: options are checked, the run's writer lock is taken and the
    host is compared with the run's earlier invocations (unless ``force_host``).
    """
    checked = check_options(experiment, options or {})
    with store.locked():
        if force_host and (warning := heal_host_json(store.dir)):
            print(f"virtbench: warning: {warning}", file=sys.stderr, flush=True)
        check_host(store.dir, force=force_host)
        return _run(experiment, variants, store, reps=reps, quick=quick, workloads=workloads,
                    seed=seed, options=checked, progress=progress, remeasure=remeasure)


def _run(
    experiment: Experiment,
    variants: Sequence[Variant],
    store: RunStore,
    *,
    reps: int | None = None,
    quick: bool = False,
    workloads: Sequence[Workload] | None = None,
    seed: int = 0,
    options: dict | None = None,
    progress: Progress | None = stderr_progress,
    remeasure: bool = False,
) -> RunStore:
    sweep.begin()
    params = resolve_params(experiment, reps=reps, quick=quick, seed=seed, options=options)
    reps, warmup = params.reps, params.warmup
    workloads = list(workloads or experiment.default_workloads())
    say = progress or (lambda _m: None)

    plats = [platforms.create(v) for v in variants]
    created = [p for p, v in zip(plats, variants, strict=True) if p is not v]
    started, outcome, raised = time.monotonic(), "interrupted", True
    try:
        accelerators = {p.variant: p.availability.version for p in plats
                        if p.availability.available}
        names = [v if isinstance(v, str) else v.variant for v in variants]
        write_host_json(store.dir, {
            "experiment": experiment.name, "variants": names, "reps": reps,
            "quick": quick, "seed": seed, "options": options or {}, "remeasure": remeasure,
            "workloads": [w.name for w in workloads],
        }, accelerators)
        ready = _prepare(experiment, plats, workloads, store, params.quick, say)
        waiting = [p for p in plats if p not in ready and p.availability.retry]
        total = (warmup + reps) * (len(ready) + len(waiting)) * len(workloads)

        def stored(variant: str, wl: Workload, rep: int) -> bool:
            return not remeasure and store.done(experiment.name, variant, wl.name, rep)

        todo = sum(not stored(p.variant, wl, rep) for rep in range(warmup + reps)
                   for p in [*ready, *waiting] for wl in workloads)
        clock = _Clock(todo)
        done = 0
        order = random.Random(seed)
        warned: set[str] = set()
        for rep in range(warmup + reps):
            if waiting and rep > 0:  # a check that broke is made again
                ready += _recheck(experiment, waiting, workloads, store, rep,
                                  rep < warmup, say)
            shuffled = list(ready)
            order.shuffle(shuffled)
            for plat in shuffled:
                for wl in workloads:
                    done += 1
                    if stored(plat.variant, wl, rep):
                        clock.skipped += 1
                        continue
                    label = "warm-up" if rep < warmup else f"rep {rep - warmup + 1}/{reps}"
                    say(f"[{done}/{total}] {experiment.name} {plat.variant} {wl.name} {label}"
                        f" · {clock.progress()}")
                    rows = measure_into(store, experiment, plat, wl, rep, params)
                    clock.count(rows)
                    _warn_unhealthy(plat, rows, warned)
            done += len(waiting) * len(workloads)
        say(clock.summary(experiment.name, len(plats) - len(ready)))
        outcome = "completed" if not clock.failed else f"completed, {clock.failed} cell(s) failed"
        raised = False
    except WriteFailed as exc:
        outcome = f"error: {exc}"
        if WriteFailed.INTACT in str(exc):
            raise
        raise exc.resumable() from exc
    except Exception as exc:
        outcome = f"error: {type(exc).__name__}: {exc}"
        raise
    finally:
        close_all(created)
        try:
            finish_invocation(store.dir, started, outcome)
        except WriteFailed:
            if not raised:
                raise  # else the error in flight already says what could not be written
    return store


def close_all(plats: Sequence[Platform]) -> None:
    """Close every platform; a cleanup that fails is reported in one line on stderr and the
    others are closed all the same."""
    for p in plats:
        try:
            p.close()
        except Exception as exc:
            print(f"virtbench: warning: cleanup of {p.variant} failed: {one_line(exc)}; the "
                  "next run removes what it left", file=sys.stderr, flush=True)


def one_line(exc: BaseException) -> str:
    """An exception as ``Type: message`` on one line."""
    text = " ".join(traceback.format_exception_only(exc)[-1].split())
    return text[:300] + (" ..." if len(text) > 300 else "")


def _warn_unhealthy(plat: Platform, rows: Sequence[Row], warned: set[str]) -> None:
    """After a failed cell: say once on stderr what the variant's daemon lacks, if so."""
    if plat.variant in warned or not any(r.reason.startswith("failed:") for r in rows):
        return
    problem = plat.health()
    if problem:
        warned.add(plat.variant)
        print(f"virtbench: {plat.variant}: {problem}; its cells fail until it runs again "
              "(run the same --run-id again to retry them)", file=sys.stderr, flush=True)


def _recheck(experiment: Experiment, waiting: list[Platform], workloads: list[Workload],
             store: RunStore, rep: int, warmup: bool, say: Progress) -> list[Platform]:
    """Check again the variants whose availability check broke; return those usable now
    (taken out of ``waiting``); the others get failed rows for repetition ``rep``."""
    back = []
    for plat in list(waiting):
        plat.recheck()
        reason = unavailable_reason(plat, workloads, say)
        if not reason:
            say(f"{plat.variant}: available on a second check")
            waiting.remove(plat)
            back.append(plat)
            continue
        if not plat.availability.retry:
            waiting.remove(plat)
        for wl in workloads:
            missing_rows(store, experiment, plat, wl, reason, rep=rep, warmup=warmup)
    return back


def measure_into(store: RunStore, experiment: Experiment, plat: Platform, wl: Workload,
                 rep: int, params: Params, host: str = "") -> list[Row]:
    """Measure one cell and write it to ``store`` (rows stamped with when the cell started
    and ended, and ``host`` in a campaign); return its rows."""
    started = now()
    ms = _measure_cell(experiment, plat, wl, params)
    rows = make_rows(ms, run_id=store.run_id, experiment=experiment.name, family=plat.family,
                     variant=plat.variant, workload=wl.name, rep=rep,
                     warmup=rep < params.warmup, host=host, started=started)
    store.write_cell(rows, cell=(experiment.name, plat.variant, wl.name, rep, host))
    return rows


def unavailable_reason(plat: Platform, workloads: list[Workload], say: Progress) -> str:
    """"" when the platform is available and prepared for ``workloads``, else why not
    ("not available: ...", "not supported: ..." or "preparation failed: ...")."""
    avail = plat.availability
    if not avail.available and avail.retry:  # measured again on the next repetition or run
        return f"failed: {avail.reason}"
    if not avail.available:
        return f"not available: {avail.reason}"
    try:
        say(f"preparing {plat.variant} ...")
        plat.prepare(workloads)
    except NotSupported as exc:  # e.g. a user's image on a variant that cannot run one
        return f"not supported: {exc}"
    except Exception as exc:
        return f"preparation failed: {exc}"
    return ""


def missing_rows(store: RunStore, experiment: Experiment, plat: Platform, wl: Workload,
                 reason: str, host: str = "", rep: int = 0, warmup: bool = False) -> list[Row]:
    """Write (unless stored) and return the reason rows of an unusable platform for one cell
    (the runner writes rep 0 only; a campaign writes every cell it was given)."""
    rows = make_rows(experiment.missing(reason), run_id=store.run_id,
                     experiment=experiment.name, family=plat.family, variant=plat.variant,
                     workload=wl.name, rep=rep, warmup=warmup, host=host, started=now())
    if not store.done(experiment.name, plat.variant, wl.name, rep, host):
        store.write_cell(rows, cell=(experiment.name, plat.variant, wl.name, rep, host))
    return rows


class _Clock:
    """Elapsed time, an estimate of the time left, and what the cells came to."""

    def __init__(self, todo: int) -> None:
        self.start = time.monotonic()
        self.todo, self.measured, self.failed, self.unsupported, self.skipped = todo, 0, 0, 0, 0

    def count(self, ms: Sequence[Measurement | Row]) -> None:
        reasons = [m.reason for m in ms if m.value is None]
        if reasons and len(reasons) == len(ms) and reasons[0].startswith("failed"):
            self.failed += 1
        elif reasons and len(reasons) == len(ms):
            self.unsupported += 1
        else:
            self.measured += 1

    def progress(self) -> str:
        elapsed = time.monotonic() - self.start
        finished = self.measured + self.failed + self.unsupported
        left = (f", about {duration_text(elapsed / finished * (self.todo - finished))} left"
                if finished else "")
        return f"{duration_text(elapsed)} elapsed{left}"

    def summary(self, name: str, unavailable: int) -> str:
        return (f"{name}: {self.measured} cells measured, {self.unsupported} not supported, "
                f"{self.failed} failed, {self.skipped} already stored, {unavailable} variant(s) "
                f"not available, in {duration_text(time.monotonic() - self.start)}")


def _prepare(experiment: Experiment, plats: list[Platform], workloads: list[Workload],
             store: RunStore, quick: bool, say: Progress) -> list[Platform]:
    """Keep the usable platforms (and those ``--quick`` keeps); write a reason row for each
    one that is not."""
    ready = []
    for plat in plats:
        reason = (experiment.quick_skip(plat.variant, quick)
                  or unavailable_reason(plat, workloads, say))
        if not reason:
            ready.append(plat)
            continue
        say(f"{plat.variant}: {reason}")
        for wl in workloads:
            missing_rows(store, experiment, plat, wl, reason)
    return ready


def _measure_cell(experiment: Experiment, plat: Platform, wl: Workload,
                  params: Params) -> list[Measurement]:
    """One cell's measurements; an unsupported or failed measurement becomes a reason row."""
    try:
        ms = experiment.measure(plat, wl, params)
        if ms:
            return ms
        reason = "the measurement returned nothing"
    except NotSupported as exc:
        reason = f"not supported: {exc}"
    except Exception as exc:
        detail = traceback.format_exception_only(exc)[-1].strip()
        problem = plat.health()
        reason = f"failed: {problem} ({detail})" if problem else f"failed: {detail}"
    return experiment.missing(reason)
