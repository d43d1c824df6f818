"""The guest's ``/init``: a busybox shell script that runs the workload named on the command line.

Kernel command line parameters it reads (from ``/proc/cmdline``):

- ``vb.wl=NAME``: run ``/wl/NAME`` (default ``noop``)
- ``vb.args=A,B,C``: its arguments, comma-separated (no spaces, no commas inside one)
- ``vb.disk=1``: mount the ext4 file system on ``/dev/vda`` at ``/work`` (else a tmpfs)
- ``vb.net=1``: bring up ``eth0`` with QEMU user networking's default address
- ``vb.meminfo=1``: pass the workload's output through :data:`READY_MEMINFO`, which prints
  the guest's own memory accounting right after the workload's ``VB-READY`` line
- ``vb.nofile=N``: run the workload with RLIMIT_NOFILE N (``ulimit -n``)
- ``vb.somaxconn=N``: set the guest's ``net.core.somaxconn`` (the listen backlog cap) to N

Lines it prints on the serial console, in order:

- ``VB-BOOTED uptime=S``: the first line from init (S: the guest's own uptime in seconds)
- ``VB-START workload=NAME``: just before the workload runs (``/etc/vb-run``, a script
  written for a user's workload, when the initramfs has one; else ``/wl/NAME ARGS``)
- the workload's own output, including its ``VB-RESULT`` line
- with ``vb.meminfo=1``, ``VB-MEMINFO total_kib=T available_kib=A`` right after the
  workload's ``VB-READY`` line: MemTotal and MemAvailable of the guest's ``/proc/meminfo``
- ``VB-EXIT workload=NAME rc=N``: after it exited; then the guest powers off
- ``VB-ERROR ...``: a setup step failed (module, mount, network)
"""

from __future__ import annotations

#: busybox applets the script calls (linked as /bin/NAME in the initramfs).
APPLETS = ("sh", "mount", "umount", "cat", "cut", "echo", "tr", "insmod", "ip", "sleep",
           "poweroff", "sync", "ls", "dmesg")
#: the applets a user's ``/etc/vb-run`` script adds (only in its initramfs)
USER_APPLETS = ("mkdir", "time", "tail")

GUEST_ADDRESS = "10.0.2.15/24"   # QEMU user networking's default guest address
GUEST_GATEWAY = "10.0.2.2"
MEMINFO_LINE = "VB-MEMINFO"

#: A shell function (busybox ash and dash, builtins only) that the workload's output is piped
#: through, followed by a ``VB-RC N`` line with its exit code: it echoes each line, prints
#: ``VB-MEMINFO`` after the ``VB-READY`` line (read while the workload still holds what it
#: allocated) and returns the workload's exit code.
READY_MEMINFO = f"""ready_meminfo() {{
  while IFS= read -r line; do
    case "$line" in "VB-RC "*) return "${{line#VB-RC }}" ;; esac
    printf '%s\\n' "$line"
    case "$line" in
      VB-READY*)
        while read -r key kib rest; do
          case "$key" in MemTotal:) total=$kib ;; MemAvailable:) avail=$kib ;; esac
        done < /proc/meminfo
        echo "{MEMINFO_LINE} total_kib=$total available_kib=$avail" ;;
    esac
  done
  return 1
}}
"""

INIT_SCRIPT = f"""#!/bin/sh
export PATH=/bin
{READY_MEMINFO}mount -t proc proc /proc
echo "VB-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
wl=noop; args=; disk=0; net=0; meminfo=0; nofile=; somaxconn=
for tok in $(cat /proc/cmdline); do
  case "$tok" in
    vb.wl=*) wl="${{tok#vb.wl=}}" ;;
    vb.args=*) args=$(echo "${{tok#vb.args=}}" | tr ',' ' ') ;;
    vb.disk=*) disk="${{tok#vb.disk=}}" ;;
    vb.net=*) net="${{tok#vb.net=}}" ;;
    vb.meminfo=*) meminfo="${{tok#vb.meminfo=}}" ;;
    vb.nofile=*) nofile="${{tok#vb.nofile=}}" ;;
    vb.somaxconn=*) somaxconn="${{tok#vb.somaxconn=}}" ;;
  esac
done
if [ -f /etc/modules ]; then
  for mod in $(cat /etc/modules); do
    insmod "/lib/modules/$mod.ko" || echo "VB-ERROR insmod $mod"
  done
fi
if [ "$disk" = 1 ]; then
  n=0
  while [ ! -b /dev/vda ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
  mount -t ext4 /dev/vda /work || echo "VB-ERROR mount /dev/vda"
else
  mount -t tmpfs tmpfs /work
fi
if [ "$net" = 1 ]; then
  ip link set lo up
  ip link set eth0 up || echo "VB-ERROR no eth0"
  ip addr add {GUEST_ADDRESS} dev eth0
  ip route add default via {GUEST_GATEWAY}
fi
if [ -n "$nofile" ]; then ulimit -n "$nofile" || echo "VB-ERROR ulimit -n $nofile"; fi
if [ -n "$somaxconn" ]; then
  echo "$somaxconn" > /proc/sys/net/core/somaxconn || echo "VB-ERROR somaxconn $somaxconn"
fi
echo "VB-START workload=$wl"
if [ -f /etc/vb-run ]; then sh /etc/vb-run
elif [ "$meminfo" = 1 ]; then {{ /wl/$wl $args; echo "VB-RC $?"; }} | ready_meminfo
else /wl/$wl $args; fi
rc=$?
echo "VB-EXIT workload=$wl rc=$rc"
[ "$disk" = 1 ] && umount /work
sync
poweroff -f
"""
