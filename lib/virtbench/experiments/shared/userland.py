"""Measurements on the other userlands a variant offers, beside its minimal one.

A Docker or VM variant can run the built-in workloads on a realistic root file system too
(:attr:`virtbench.platforms.base.Platform.userlands`: Debian's minbase; for a VM also the
full-OS guest, Debian booted with systemd). The startup, memory and disk experiments (and
density and observability, for the full-OS guest) measure it in the same cell, on a sibling
object of the variant (:meth:`~virtbench.platforms.base.Platform.with_userland`); its rows
carry the condition ``userland=debian`` or ``userland=debian-systemd``, so readers that do
not ask for it keep reading the minimal rows.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from virtbench.distro import DistroUnavailable
from virtbench.experiments.base import Experiment, Option
from virtbench.platforms.base import NotSupported, Platform, Workload
from virtbench.store.schema import Measurement

#: Userlands that ``--quick`` leaves to a full run, each with the reason its rows give.
QUICK_SKIPPED_USERLANDS = {
    "debian-systemd": "the full-OS guest (systemd as PID 1 booted to a service under TCG) "
                      "takes a minute or more per boot on this host; a full run measures it"}
#: Why ``--quick`` measures the startup and memory of the minimal userland only.
QUICK_SKIPS_USERLANDS = ("not measured with --quick (startup and memory of the minimal "
                         "userland only; sizes on disk cover every userland)")


#: The userland that option ``full_os=0`` leaves out, so that a long campaign can measure
#: the full-OS guest in an invocation of its own.
FULL_OS_USERLAND = "debian-systemd"
FULL_OS_OPTION = Option(int, 0, 1, "1 (default): also measure the full-OS guest (userland "
                        "debian-systemd); 0: leave it out, its rows say so")


def option_skip(name: str, options: Mapping[str, object]) -> str:
    """"left out of this invocation: why" when option ``full_os=0`` leaves ``name`` out."""
    if name == FULL_OS_USERLAND and options.get("full_os", 1) == 0:
        return ("left out of this invocation: option full_os=0 leaves out the full-OS "
                "guest (it takes a minute or more per boot under TCG)")
    return ""


def quick_skip(name: str, quick: bool) -> str:
    """"not measured with --quick: why" when ``--quick`` leaves the userland ``name`` out."""
    why = QUICK_SKIPPED_USERLANDS.get(name, "") if quick else ""
    return f"not measured with --quick: {why}" if why else ""


def on_userlands(plat: Platform, experiment: Experiment, workloads: Sequence[Workload],
                 measure: Callable[[Platform], list[Measurement]], *,
                 skip: str = "", quick: bool = False,
                 names: Sequence[str] | None = None,
                 options: Mapping[str, object] | None = None) -> list[Measurement]:
    """``measure`` on each userland ``plat`` offers (after preparing ``workloads`` there),
    or on those of ``names`` it offers, its rows with the condition ``userland``; a userland
    that cannot be measured gives the experiment's primary rows with the reason (``not
    available:`` when this host cannot build it, ``failed:`` when the measurement went
    wrong, ``skip`` when it is not measured this time, ``not measured with --quick:`` for a
    userland that ``quick`` or option ``full_os=0`` in ``options`` leaves out)."""
    if not all(w.builtin for w in workloads):
        return []
    out: list[Measurement] = []
    for name in plat.userlands:
        if names is not None and name not in names:
            continue
        cond = {"userland": name}
        reason = skip or quick_skip(name, quick) or option_skip(name, options or {})
        if reason:
            out += [Measurement.missing(m.name, m.unit, reason, conditions={**c, **cond})
                    for m, c in experiment.primary_metrics() if "userland" in m.conditions]
            continue
        try:
            with plat.with_userland(name) as sibling:
                if not sibling.availability.available:
                    raise NotSupported(sibling.availability.reason)
                sibling.prepare(workloads)
                ms = measure(sibling)
                note = sibling.describe_userland()
        except DistroUnavailable as exc:
            reason = f"not available: the {name} userland cannot be built here: {exc.reason}"
        except NotSupported as exc:
            reason = f"not supported: {exc}"
        except Exception as exc:
            reason = f"failed: {name} userland: " + \
                traceback.format_exception_only(exc)[-1].strip()
        else:
            out += [replace(m, conditions={**m.conditions, **cond},
                            description=_with_note(m.description, note)) for m in ms]
            continue
        out += [Measurement.missing(m.name, m.unit, reason, conditions={**c, **cond})
                for m, c in experiment.primary_metrics() if "userland" in m.conditions]
    return out


def _with_note(description: str, note: str) -> str:
    if not note or note in description:
        return description
    return f"{description}; {note}" if description else note
