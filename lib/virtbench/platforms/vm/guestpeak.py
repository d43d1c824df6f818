"""The peak RSS of a user's program inside a VM guest, as busybox ``time`` reports it.

The user script runs the program under ``time -o /etc/vb-peak -f %M`` and prints
``VB-PEAK maxrss_kib=N`` on the console. busybox's ``%M`` is the guest kernel's ``wait4``
``ru_maxrss`` converted as if it were counted in pages (busybox 1.35 as in Debian 12, like
GNU time before 1.8): too large by page size / 1024. The guest runs the host's own
``/bin/busybox``, so the factor is measured once on the host (:func:`busybox_maxrss_scale`)
instead of assumed.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

PEAK_LINE = "VB-PEAK"
CALIBRATION_MIB = 32


def guest_peak_kib(text: str) -> int | None:
    """The number of the console's ``VB-PEAK maxrss_kib=N`` line as busybox printed it."""
    for line in text.splitlines():
        if line.startswith(f"{PEAK_LINE} maxrss_kib="):
            value = line.split("=", 1)[1].strip()
            return int(value) if value.isdigit() else None
    return None


@functools.cache
def busybox_maxrss_scale(busybox: Path = Path("/bin/busybox")) -> int:
    """How many of busybox ``time``'s ``%M`` units make one KiB of ``ru_maxrss``: the ratio,
    on the host, of its report to ``wait4``'s for a program that holds ``CALIBRATION_MIB``
    MiB (1, or page size / 1024); ValueError if it is neither."""
    from virtbench.process import spawn_and_time
    from virtbench.workloads import build

    program = build("mem", "static")
    with tempfile.TemporaryDirectory(prefix="vb-peak-") as tmp:
        out = Path(tmp) / "peak"
        done = spawn_and_time([str(busybox), "time", "-o", str(out), "-f", "%M", str(program),
                               str(CALIBRATION_MIB), "0"], timeout=60).check()
        reported = int(out.read_text().split()[-1])
    maxrss = done.peak_rss_kib  # wait4 of `time` covers the program it waited for
    ratio = reported / maxrss
    page = os.sysconf("SC_PAGE_SIZE") // 1024
    for scale in (1, page):
        if abs(ratio - scale) < 0.1 * scale:
            return scale
    raise ValueError(f"busybox time reported {reported} for a ru_maxrss of {maxrss} "
                     f"KiB (ratio {ratio:.2f}, neither 1 nor {page})")
