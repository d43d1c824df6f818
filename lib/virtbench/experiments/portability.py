"""Portability: whether what a user of a variant carries to another host runs there unchanged,
when that host's CPU is of another architecture (aarch64 beside this x86-64 host).

The artifact is the variant's own (:meth:`Platform.portable_artifact`): the executable of a
process, the image of a container (``docker save``), the .wasm module of a Wasm engine, the
kernel and initramfs of a guest. Each is run on an emulated aarch64 CPU as an aarch64 host
would run it (:mod:`virtbench.foreignarch`): the program or the image's entry point directly,
the module in that host's own Wasmtime, the guest by that host's QEMU. Nothing is rebuilt:
a multi-architecture image or a second build is a second artifact, which this does not count.

It is the measured side of the "portability" ratings, declared as a proxy: one axis of
portability (the CPU architecture), not the others (the host's OS, its kernel version, its
container engine).
"""

from __future__ import annotations

from virtbench.experiments.base import QUICK_SKIPS_TCG_PC, Experiment, Params
from virtbench.foreignarch import ARCH, run_portable
from virtbench.metric import Metric
from virtbench.platforms.base import NotSupported, Platform, Portable, Workload
from virtbench.store.schema import Measurement

NAME = "portability"
UNIT = "ran (1/0)"

METRICS = (
    Metric("runs_on_other_arch", NAME, UNIT, "higher",
           f"1 when the variant's artifact of the noop workload (its executable, image, .wasm "
           f"module or guest kernel and initramfs), unchanged, ran on an emulated {ARCH} CPU "
           f"as an {ARCH} host runs it and printed its VB-RESULT line; 0 when it did not. "
           f"module=precompiled: the compiled code an ahead-of-time Wasm variant deploys "
           f"instead (its .cwasm)", conditions=("module",), exact=True),
)


def measure_portability(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """The portable artifact, and (condition ``module=precompiled``) the precompiled form an
    ahead-of-time variant deploys instead."""
    out = [_carried(plat.portable_artifact(wl), {})]
    compiled = {"module": "precompiled"}
    try:
        artifact = plat.precompiled_artifact(wl)
    except NotSupported as exc:
        return out + [Measurement.missing("runs_on_other_arch", UNIT, f"not supported: {exc}",
                                          conditions=compiled)]
    return out + ([_carried(artifact, compiled)] if artifact is not None else [])


def _carried(artifact: Portable, conditions: dict[str, str]) -> Measurement:
    attempt = run_portable(artifact)
    ran = "ran" if attempt.ran else "did not run"
    return Measurement(
        "runs_on_other_arch", 1.0 if attempt.ran else 0.0, UNIT,
        f"{artifact.what}, unchanged, on an emulated {ARCH} CPU: {ran} ({attempt.command}: "
        f"{attempt.seen})", conditions=conditions,
        tags={"artifact": artifact.kind, "arch": ARCH, "command": attempt.command,
              "seen": attempt.seen})


EXPERIMENT = Experiment(
    NAME, f"portability: the variant's artifact, unchanged, run on an {ARCH} CPU (QEMU)",
    measure_portability, workloads=("noop",), reps=3, quick_reps=1, warmup=0,
    quick_skips=QUICK_SKIPS_TCG_PC, metrics=METRICS,
    primary=(("runs_on_other_arch", {}),))
