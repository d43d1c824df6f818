"""disk: the bytes on disk a variant needs to run the workloads.

One row per artifact the variant lists (:meth:`~virtbench.platforms.base.Platform.artifacts`:
the executable, module, compiled code, engine, image, kernel, initramfs or disk image), on
its minimal userland and on the others it offers; for a user's workload, its own image.
"""

from __future__ import annotations

from collections.abc import Sequence

from virtbench.experiments.base import Experiment, Params
from virtbench.experiments.shared.userland import FULL_OS_OPTION, on_userlands
from virtbench.metric import Metric
from virtbench.platforms.base import ARTIFACT_KINDS, Platform, Workload
from virtbench.store.schema import Measurement

NAME = "disk"
_B = "B"
_SIZE = "bytes on disk of"
_USERLAND = ("userland",)

METRICS = (
    Metric("artifact_size", NAME, _B, "lower",
           f"{_SIZE} what one workload needs to run on the variant (executable, module, "
           "image, or kernel + initramfs or root disk)", _USERLAND, exact=True),
    Metric("compiled_size", NAME, _B, "lower",
           f"{_SIZE} the serialized compiled module (wasmtime Module.serialize)",
           exact=True),
    Metric("engine_size", NAME, _B, "lower",
           f"{_SIZE} the Wasm engine (CLI executable or installed package)", exact=True),
    Metric("image_content_size", NAME, _B, "lower",
           f"{_SIZE} the files put into the Docker image", _USERLAND, exact=True),
    Metric("image_archive_size", NAME, _B, "lower",
           f"{_SIZE} the Docker image saved as a tarball (docker save)", _USERLAND,
           exact=True),
    Metric("kernel_size", NAME, _B, "lower",
           f"{_SIZE} the kernel image the VM boots", _USERLAND, exact=True),
    Metric("initramfs_size", NAME, _B, "lower",
           f"{_SIZE} one workload's gzip cpio initramfs (userland=debian: the one that "
           "mounts the root disk)", _USERLAND, exact=True),
    Metric("disk_image_size", NAME, _B, "",
           "apparent size of a raw ext4 image attached to the VM: the empty work disk "
           "for I/O (userland=debian: the root disk)", _USERLAND, exact=True),
    Metric("disk_image_allocated", NAME, _B, "lower",
           "blocks allocated (st_blocks) by the sparse raw ext4 image after mke2fs (the "
           "empty work disk; userland=debian: the root disk)", _USERLAND, exact=True),
)


#: The metric of each kind of :class:`~virtbench.platforms.base.Artifact`.
DISK_METRICS = {"workload": "artifact_size", "compiled": "compiled_size",
                "engine": "engine_size", "image_content": "image_content_size",
                "image_archive": "image_archive_size", "kernel": "kernel_size",
                "initramfs": "initramfs_size", "disk_image": "disk_image_size",
                "disk_image_allocated": "disk_image_allocated"}
assert set(DISK_METRICS) == set(ARTIFACT_KINDS)


def disk_rows(plat: Platform, artifacts: Sequence | None = None) -> list[Measurement]:
    """One row per artifact (default: those the variant lists): its bytes, under its kind's
    metric."""
    return [Measurement(DISK_METRICS[a.kind], a.bytes, "B", a.what, workload=a.workload,
                        tags=dict(a.tags))
            for a in (plat.artifacts() if artifacts is None else artifacts)]


def measure_disk(plat: Platform, wl: Workload, params: Params) -> list[Measurement]:
    """Bytes on disk of the variant's artifacts, minimal and on its other userlands; for a
    user's workload, its own image (Docker)."""
    if not wl.builtin:
        return disk_rows(plat, plat.user_artifacts(wl))
    return disk_rows(plat) + on_userlands(plat, EXPERIMENT, [wl], disk_rows, quick=params.quick,
                                          options=params.options)


EXPERIMENT = Experiment(
    NAME, "bytes on disk needed to run the workloads",
    measure_disk, workloads=("noop",), once=True, options={"full_os": FULL_OS_OPTION},
    metrics=METRICS, primary=(("artifact_size", {}),))
