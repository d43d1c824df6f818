"""The full-OS guest: Debian bookworm booting with systemd as PID 1 to a service.

The root file system is the Debian userland of :mod:`virtbench.distro` plus
:data:`virtbench.distro.SYSTEMD_PACKAGES` (``systemd-sysv``; ``udev``, without which the
device units that units wait for never appear; ``strace`` for in-guest tracing), made into
an ext4 root disk
with the suite's static workloads under ``/vb/wl`` (:func:`build_fullos_disk`). QEMU attaches
it with ``snapshot=on``: the guest mounts it read-write, its writes go to a temporary
overlay that QEMU discards, so every boot starts from the same bytes.

Boot: a busybox initramfs (:data:`FULLOS_ROOT_INIT`) loads the virtio and ext4 modules,
mounts ``/dev/vda`` read-write and ``switch_root``\\ s into ``/sbin/init``, i.e. systemd. systemd
brings the system up to ``multi-user.target``, which wants :data:`UNIT`
(``vb-workload.service``); its ``/vb/service`` script (Debian's dash) prints on the serial
console, through ``/dev/console``:

- ``VB-BOOTED uptime=S pid1=COMM``: first, when systemd started the service (S: the guest's
  /proc/uptime; COMM: /proc/1/comm, ``systemd``)
- ``VB-START``, the workload's output (``VB-READY``, ``VB-RESULT``), ``VB-MEMINFO`` with
  ``vb.meminfo=1``, ``VB-EXIT rc=N``: as the minimal guest's init (:mod:`.init`), except that
  with ``vb.meminfo=1`` the workload's output is held until systemd's startup finished, so
  its ``VB-READY`` and the ``VB-MEMINFO`` after it come from a booted, idle system
- ``VB-SYSTEMD state=S finish_us=F userspace_us=U``: once systemd says its startup finished
  (``systemctl is-system-running --wait``), from the manager's FinishTimestampMonotonic and
  UserspaceTimestampMonotonic (guest CLOCK_MONOTONIC, microseconds since the kernel started)
- with ``vb.trace=SECONDS``: the workload runs in the background, ``strace -f -c -p PID``
  attaches to it, and once the workload's /proc status shows the tracer it traces for
  SECONDS; strace is then stopped (SIGTERM: it prints its summary), its summary table is
  printed between ``VB-STRACE-BEGIN`` and ``VB-STRACE-END`` lines, and the workload is
  stopped

After the workload exits (and the ``VB-SYSTEMD`` line is out) the guest powers off through
``/proc/sysrq-trigger``, not an orderly systemd shutdown. The serial getty that
``console=ttyS0`` would start is masked: its login prompt would run into the markers on the
serial line (the gettys on the virtual terminals stay, as on any Debian system).
"""

from __future__ import annotations

from pathlib import Path

from virtbench.distro import SYSTEMD_PACKAGES, USERLAND_WORKLOADS, build_rootfs
from virtbench.platforms.vm.init import READY_MEMINFO
from virtbench.platforms.vm.initramfs import BUSYBOX, cached_cpio_gz
from virtbench.platforms.vm.kernel import Kernel
from virtbench.platforms.vm.rootdisk import root_disk_image, root_init, root_initramfs_bytes

UNIT = "vb-workload.service"
#: The workloads on the full-OS root disk: the userland's, and the hog the tracing probe
#: traces (write + fsync in a loop).
FULLOS_WORKLOADS = (*USERLAND_WORKLOADS, "hog")
SYSTEMD_LINE = "VB-SYSTEMD"
STRACE_BEGIN, STRACE_END = "VB-STRACE-BEGIN", "VB-STRACE-END"

#: The initramfs's /init: load the modules, mount the root disk read-write (QEMU keeps the
#: writes in a discarded overlay), hand over to systemd.
FULLOS_ROOT_INIT = root_init("rw", "/sbin/init")

#: The unit systemd starts on the way to multi-user.target.
UNIT_FILE = """[Unit]
Description=virtbench workload (the static workload named by vb.wl on the kernel command line)

[Service]
Type=simple
ExecStart=/vb/service
StandardInput=null

[Install]
WantedBy=multi-user.target
"""

#: /vb/service, run by the unit with Debian's dash.
SERVICE_SCRIPT = """#!/bin/sh
exec > /dev/console 2>&1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
up_and_idle() {
  timeout 300 systemctl is-system-running --wait > /dev/null 2>&1
}
""" + READY_MEMINFO + f"""uptime=$(cut -d' ' -f1 /proc/uptime)
echo "VB-BOOTED uptime=$uptime pid1=$(cat /proc/1/comm)"
wl=noop; args=; meminfo=0; trace=0
for tok in $(cat /proc/cmdline); do
  case "$tok" in
    vb.wl=*) wl="${{tok#vb.wl=}}" ;;
    vb.args=*) args=$(echo "${{tok#vb.args=}}" | tr ',' ' ') ;;
    vb.meminfo=*) meminfo="${{tok#vb.meminfo=}}" ;;
    vb.trace=*) trace="${{tok#vb.trace=}}" ;;
  esac
done
(
  up_and_idle
  echo "{SYSTEMD_LINE} state=$(systemctl is-system-running)" \\
    "finish_us=$(systemctl show -P FinishTimestampMonotonic)" \\
    "userspace_us=$(systemctl show -P UserspaceTimestampMonotonic)"
) &
started=$!
echo "VB-START workload=$wl"
if [ "$trace" != 0 ]; then
  /vb/wl/$wl $args &
  pid=$!
  strace -f -c -o /run/vb-strace -p "$pid" &
  tracer=$!
  n=0; tp=0
  while [ "$tp" = 0 ] && [ $n -lt 600 ]; do
    while read -r key value; do [ "$key" = TracerPid: ] && tp=$value; done < /proc/$pid/status
    [ "$tp" = 0 ] && sleep 0.1; n=$((n + 1))
  done
  sleep "$trace"
  kill -TERM "$tracer"; wait "$tracer"
  echo "{STRACE_BEGIN} pid=$pid seconds=$trace tracer_pid=$tp"
  cat /run/vb-strace
  echo "{STRACE_END}"
  kill "$pid"; wait "$pid"; rc=0
elif [ "$meminfo" = 1 ]; then
  {{ /vb/wl/$wl $args; echo "VB-RC $?"; }} | {{ up_and_idle; ready_meminfo; }}; rc=$?
else /vb/wl/$wl $args; rc=$?; fi
echo "VB-EXIT workload=$wl rc=$rc"
wait "$started"
sync
echo o > /proc/sysrq-trigger
while :; do sleep 1; done
"""


def fullos_files() -> dict[str, tuple[str, int]]:
    """The files put into the root file system (path -> (text, mode))."""
    return {"vb/service": (SERVICE_SCRIPT, 0o755),
            f"etc/systemd/system/{UNIT}": (UNIT_FILE, 0o644),
            "etc/hostname": ("vbguest\n", 0o644),
            "etc/fstab": ("/dev/vda / ext4 rw 0 0\n", 0o644)}


def fullos_links() -> dict[str, str]:
    """The symbolic links put into it: the unit enabled for multi-user.target, and the
    serial getty masked (the serial line carries the suite's markers; a login prompt on it
    would run into them; the gettys on the virtual terminals stay)."""
    return {f"etc/systemd/system/multi-user.target.wants/{UNIT}": f"/etc/systemd/system/{UNIT}",
            "etc/systemd/system/serial-getty@ttyS0.service": "/dev/null"}


def build_fullos_rootfs():
    """The cached Debian root file system with systemd (debootstrap on first use)."""
    return build_rootfs(packages=SYSTEMD_PACKAGES)


def build_fullos_disk() -> Path:
    """The cached raw ext4 root disk of the full-OS guest."""
    rootfs = build_fullos_rootfs()
    return root_disk_image(rootfs, f"debian-systemd-{rootfs.suite}-{rootfs.variant}",
                           fullos_files(), FULLOS_WORKLOADS, links=fullos_links())


def build_fullos_initramfs(kernel: Kernel, bus: str) -> Path:
    """The cached ``.cpio.gz`` that mounts the full-OS root disk on ``bus`` and starts
    systemd."""
    if not BUSYBOX.is_file():
        raise FileNotFoundError(f"{BUSYBOX} not found; install the Debian package busybox-static")
    return cached_cpio_gz(root_initramfs_bytes(kernel, bus, FULLOS_ROOT_INIT),
                          f"fullos-{bus}")
