"""Measurements on the other userlands a variant offers, beside its minimal one.

A Docker or VM variant can run the built-in workloads on a realistic root file system too
(:attr:`virtbench.platforms.base.Platform.userlands`: Debian's minbase). The startup, memory
and disk experiments measure it in the same cell, on a sibling object of the variant
(:meth:`~virtbench.platforms.base.Platform.with_userland`); its rows carry the condition
``userland=debian``, so readers that do not ask for it keep reading the minimal rows.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace

from virtbench import catalog
from virtbench.distro import DistroUnavailable
from virtbench.platforms.base import NotSupported, Platform, Workload
from virtbench.results import Measurement


def on_userlands(plat: Platform, experiment: str, workloads: Sequence[Workload],
                 measure: Callable[[Platform], list[Measurement]], *,
                 skip: str = "") -> list[Measurement]:
    """``measure`` on each userland ``plat`` offers (after preparing ``workloads`` there),
    its rows with the condition ``userland``; a userland that cannot be measured gives the
    experiment's primary rows with the reason (``not available:`` when this host cannot
    build it, ``failed:`` when the measurement went wrong, ``skip`` when it is not measured
    this time)."""
    if not all(w.builtin for w in workloads):
        return []
    out: list[Measurement] = []
    for name in plat.userlands:
        cond = {"userland": name}
        if skip:
            out += [Measurement.missing(m.name, m.unit, skip, conditions={**c, **cond})
                    for m, c in catalog.primary(experiment) if "userland" in m.conditions]
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
                for m, c in catalog.primary(experiment) if "userland" in m.conditions]
    return out


def _with_note(description: str, note: str) -> str:
    if not note or note in description:
        return description
    return f"{description}; {note}" if description else note
