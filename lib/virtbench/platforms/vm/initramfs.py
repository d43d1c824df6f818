"""The guest's initramfs: a gzip-compressed cpio (newc) archive, built in Python, cached.

Contents: ``/init`` (see :mod:`virtbench.platforms.vm.init`), busybox-static at ``/bin/busybox``
with links for the applets init uses, the static build of one workload at ``/wl/NAME``,
``/dev/console``, and, when the workload needs a device, the kernel modules for it in load
order (``/lib/modules/*.ko`` listed in ``/etc/modules``). Archive entries have fixed owners
and times, so the same inputs give the same bytes; the cache key is their SHA-256.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from virtbench.paths import cache_dir
from virtbench.platforms.vm.init import APPLETS, INIT_SCRIPT, USER_APPLETS
from virtbench.platforms.vm.kernel import Kernel
from virtbench.workloads import build

BUSYBOX = Path("/bin/busybox")

#: The devices each workload needs in the guest, per bus ("mmio" on microvm, "pci" on pc).
DEVICE_MODULES = {
    "fileio": ("virtio_blk", "crc32c_generic", "ext4"),
    "speedtest1": ("virtio_blk", "crc32c_generic", "ext4"),
    "http": ("virtio_net",),
    "trace": ("virtio_net",),
}
BUS_MODULES = {"mmio": ("virtio_mmio",), "pci": ("virtio_pci",)}

_DIRS = ("bin", "dev", "etc", "lib", "lib/modules", "proc", "root", "sys", "tmp", "wl", "work")


class CpioWriter:
    """Builds a cpio archive in the ``newc`` format (what the kernel's initramfs unpacker reads)."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._ino = 0

    def _entry(self, name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0),
               nlink: int = 1) -> None:
        self._ino += 1
        encoded = name.encode() + b"\0"
        fields = (self._ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
                  len(encoded), 0)
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self._parts += [header, encoded, _pad(len(header) + len(encoded)), data, _pad(len(data))]

    def directory(self, name: str, mode: int = 0o755) -> None:
        self._entry(name, stat.S_IFDIR | mode, nlink=2)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def char_device(self, name: str, major: int, minor: int, mode: int = 0o600) -> None:
        self._entry(name, stat.S_IFCHR | mode, rdev=(major, minor))

    def finish(self) -> bytes:
        """The archive with its ``TRAILER!!!`` entry."""
        self._ino = -1
        self._entry("TRAILER!!!", 0, nlink=1)
        return b"".join(self._parts)


def _pad(n: int) -> bytes:
    return b"\0" * (-n % 4)


def modules_needed(workload: str, bus: str,
                   devices: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The modules (before dependencies) a workload needs on a bus; none for no device.
    ``devices`` overrides the workload's own (a user's workload with directories)."""
    if bus not in BUS_MODULES:
        raise ValueError(f"unknown bus {bus!r}; valid: {', '.join(BUS_MODULES)}")
    devices = DEVICE_MODULES.get(workload, ()) if devices is None else devices
    return BUS_MODULES[bus] + devices if devices else ()


def busybox_base(dirs: Sequence[str], init: str, applets: Sequence[str]) -> CpioWriter:
    """An archive with ``dirs``, ``/dev/console``, ``init`` and busybox linked as
    ``applets``: what every initramfs of the suite starts from."""
    cpio = CpioWriter()
    for d in dirs:
        cpio.directory(d)
    cpio.char_device("dev/console", 5, 1)
    cpio.file("init", init.encode(), 0o755)
    cpio.file("bin/busybox", BUSYBOX.read_bytes(), 0o755)
    for applet in applets:
        cpio.symlink(f"bin/{applet}", "busybox")
    return cpio


def initramfs_bytes(workload: str, binary: Path, kernel: Kernel, bus: str, *,
                    files: dict[str, bytes] | None = None,
                    devices: tuple[str, ...] | None = None) -> bytes:
    """The uncompressed archive for ``workload`` (its static ``binary``) on ``bus``; a
    user's workload adds ``files`` (its ``/etc/vb-run`` script, its stdin) and ``devices``."""
    cpio = busybox_base(_DIRS, INIT_SCRIPT, APPLETS)
    cpio.file(f"wl/{workload}", binary.read_bytes(), 0o755)
    if files:
        for applet in USER_APPLETS:
            cpio.symlink(f"bin/{applet}", "busybox")
        for name in sorted(files):
            cpio.file(name, files[name], 0o644)
    modules = kernel.modules_for(modules_needed(workload, bus, devices))
    for mod in modules:
        cpio.file(f"lib/modules/{mod}.ko", kernel.module(mod).read_bytes())
    if modules:
        cpio.file("etc/modules", ("\n".join(modules) + "\n").encode())
    return cpio.finish()


def build_initramfs(workload: str, kernel: Kernel, bus: str, *, binary: Path | None = None,
                    files: dict[str, bytes] | None = None,
                    devices: tuple[str, ...] | None = None) -> Path:
    """The cached ``.cpio.gz`` for ``workload`` on ``bus`` ("mmio" or "pci"): a built-in
    one, or a user's static ``binary`` with its ``files`` and ``devices``."""
    if not BUSYBOX.is_file():
        raise FileNotFoundError(f"{BUSYBOX} not found; install the Debian package busybox-static")
    raw = initramfs_bytes(workload, binary or build(workload, "static"), kernel, bus,
                          files=files, devices=devices)
    return cached_cpio_gz(raw, f"{workload}-{bus}")


def cached_cpio_gz(raw: bytes, stem: str) -> Path:
    """``raw`` (a cpio archive) gzipped in the cache as ``STEM-<sha256 prefix>.cpio.gz``,
    written once and atomically."""
    key = hashlib.sha256(raw).hexdigest()[:16]
    out_dir = cache_dir() / "vm" / "initramfs"
    out = out_dir / f"{stem}-{key}.cpio.gz"
    if out.is_file() and out.stat().st_size > 0:
        return out
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".tmp{os.getpid()}")
    try:
        tmp.write_bytes(gzip.compress(raw, compresslevel=9, mtime=0))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
