"""The VM on a Debian userland: an ext4 root disk and the initramfs that mounts it.

The root disk is the cached Debian root file system (:mod:`virtbench.distro`) with the
suite's static workloads under ``/vb/wl`` and an init script at ``/vb/init``, made into a raw
ext4 image by ``mkfs.ext4 -d`` (sparse, cached by what determines it). QEMU attaches it
read-only, so every boot starts from the same bytes.

Debian's kernel has virtio-blk and ext4 as modules, so a small busybox initramfs
(:data:`ROOT_INIT`) loads them, mounts ``/dev/vda`` read-only and ``switch_root``\\ s into
``/vb/init``, which Debian's ``/bin/sh`` (dash) runs. From there the guest prints the same
console lines as the minimal guest (:mod:`virtbench.platforms.vm.init`, ``VB-MEMINFO``
included), ``VB-BOOTED`` first, and powers off through ``/proc/sysrq-trigger`` (minbase has
no ``poweroff``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from virtbench.distro import USERLAND_WORKLOADS, Rootfs
from virtbench.paths import cache_dir
from virtbench.platforms.vm.init import READY_MEMINFO
from virtbench.platforms.vm.initramfs import BUS_MODULES, BUSYBOX, busybox_base, cached_cpio_gz
from virtbench.platforms.vm.kernel import Kernel
from virtbench.process import run_tool
from virtbench.workloads import build

ROOT_MODULES = ("virtio_blk", "crc32c_generic", "ext4")
ROOT_APPLETS = ("sh", "mount", "umount", "cat", "echo", "insmod", "sleep", "switch_root",
                "poweroff")
#: Free space left on the root disk beyond its files: a quarter, at least 64 MiB.
HEADROOM = 0.25
MIN_FREE_MIB = 64

#: The initramfs's /init (busybox): load the modules, mount the root disk (``{mode}``: ro or
#: rw), switch to its ``{init}``.
ROOT_INIT_TEMPLATE = """#!/bin/sh
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
for mod in $(cat /etc/modules); do
  insmod "/lib/modules/$mod.ko" || echo "VB-ERROR insmod $mod"
done
n=0
while [ ! -b /dev/vda ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
if ! mount -t ext4 -o {mode} /dev/vda /newroot; then
  echo "VB-ERROR mount root /dev/vda"
  poweroff -f
fi
umount /dev
exec switch_root /newroot {init}
echo "VB-ERROR switch_root /newroot {init}"
poweroff -f
"""


def root_init(mode: str = "ro", init: str = "/vb/init") -> str:
    """The initramfs's /init that mounts /dev/vda ``mode`` and hands over to ``init``."""
    return ROOT_INIT_TEMPLATE.format(mode=mode, init=init)


ROOT_INIT = root_init()

#: The root disk's /vb/init (Debian's dash): the markers and workload of the minimal guest.
DISTRO_INIT = """#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
""" + READY_MEMINFO + """mount -t proc proc /proc
echo "VB-BOOTED uptime=$(cut -d' ' -f1 /proc/uptime)"
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for dir in /run /tmp /work; do mount -t tmpfs tmpfs "$dir"; done
wl=noop; args=; meminfo=0
for tok in $(cat /proc/cmdline); do
  case "$tok" in
    vb.wl=*) wl="${tok#vb.wl=}" ;;
    vb.args=*) args=$(echo "${tok#vb.args=}" | tr ',' ' ') ;;
    vb.meminfo=*) meminfo="${tok#vb.meminfo=}" ;;
  esac
done
echo "VB-START workload=$wl"
if [ "$meminfo" = 1 ]; then { /vb/wl/$wl $args; echo "VB-RC $?"; } | ready_meminfo
else /vb/wl/$wl $args; fi
rc=$?
echo "VB-EXIT workload=$wl rc=$rc"
echo o > /proc/sysrq-trigger
while :; do sleep 1; done
"""


def root_initramfs_bytes(kernel: Kernel, bus: str, init: str = ROOT_INIT) -> bytes:
    """The uncompressed initramfs that mounts the root disk on ``bus`` ("mmio" or "pci")
    with ``init`` as its /init."""
    if bus not in BUS_MODULES:
        raise ValueError(f"unknown bus {bus!r}; valid: {', '.join(BUS_MODULES)}")
    cpio = busybox_base(("bin", "dev", "etc", "lib", "lib/modules", "newroot"), init,
                        ROOT_APPLETS)
    modules = kernel.modules_for(BUS_MODULES[bus] + ROOT_MODULES)
    for mod in modules:
        cpio.file(f"lib/modules/{mod}.ko", kernel.module(mod).read_bytes())
    cpio.file("etc/modules", ("\n".join(modules) + "\n").encode())
    return cpio.finish()


def build_root_initramfs(kernel: Kernel, bus: str) -> Path:
    """The cached ``.cpio.gz`` that boots the root disk on ``bus``."""
    if not BUSYBOX.is_file():
        raise FileNotFoundError(f"{BUSYBOX} not found; install the Debian package busybox-static")
    return cached_cpio_gz(root_initramfs_bytes(kernel, bus), f"rootdisk-{bus}")


def disk_mib(file_bytes: int) -> int:
    """The root disk's size in MiB: the files, ext4's metadata and :data:`HEADROOM`."""
    files_mib = file_bytes / 2**20
    return int(math.ceil(max(files_mib * (1 + HEADROOM), files_mib + MIN_FREE_MIB) / 4) * 4) \
        + 32


def build_root_disk(rootfs: Rootfs) -> Path:
    """The cached raw ext4 image of ``rootfs`` with the static workloads and /vb/init."""
    return root_disk_image(rootfs, f"debian-{rootfs.suite}-{rootfs.variant}",
                           {"vb/init": (DISTRO_INIT, 0o755)}, USERLAND_WORKLOADS,
                           key_text=DISTRO_INIT)


def root_disk_image(rootfs: Rootfs, stem: str, files: Mapping[str, tuple[str, int]],
                    workload_names: Sequence[str], *, links: Mapping[str, str] | None = None,
                    key_text: str | None = None) -> Path:
    """The cached raw ext4 image of ``rootfs`` plus ``files`` (path in the tree -> (text,
    mode)), symbolic ``links`` (path -> target) and the static ``workload_names`` under
    /vb/wl; cached as ``STEM-<key>.img`` by what determines it (``key_text``: the text
    that stands for ``files`` and ``links`` in the key; default: all of them)."""
    workloads = {name: build(name, "static") for name in workload_names}
    links = dict(links or {})
    if key_text is None:
        key_text = json.dumps([sorted(files.items()), sorted(links.items())])
    digest = hashlib.sha256(f"{rootfs.build_id}\0{key_text}\0{HEADROOM}".encode())
    for name, path in sorted(workloads.items()):
        digest.update(f"\0{name}\0".encode() + hashlib.sha256(path.read_bytes()).digest())
    key = digest.hexdigest()[:16]
    out = cache_dir() / "vm" / "rootdisk" / f"{stem}-{key}.img"
    if out.is_file() and out.stat().st_size > 0:
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vb-rootdisk-", dir=out.parent) as tmp:
        tree = Path(tmp) / "tree"
        tree.mkdir()
        run_tool(["cp", "-a", f"{rootfs.path}/.", f"{tree}/"], timeout=600)
        (tree / "vb" / "wl").mkdir(parents=True)
        (tree / "work").mkdir(exist_ok=True)
        for rel, (text, mode) in files.items():
            dest = tree / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.unlink(missing_ok=True)
            dest.write_text(text)
            dest.chmod(mode)
        for rel, target in links.items():
            dest = tree / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.unlink(missing_ok=True)
            dest.symlink_to(target)
        for name, path in workloads.items():
            shutil.copyfile(path, tree / "vb" / "wl" / name)
            (tree / "vb" / "wl" / name).chmod(0o755)
        image = Path(tmp) / "root.img"
        extra = sum(p.stat().st_size for p in workloads.values())
        with open(image, "wb") as fh:
            fh.truncate(disk_mib(rootfs.bytes_used + extra) << 20)
        run_tool(["mkfs.ext4", "-q", "-F", "-L", "vbroot", "-d", tree, "-E",
                  "lazy_itable_init=0,lazy_journal_init=0", image], timeout=600)
        os.replace(image, out)
    return out
