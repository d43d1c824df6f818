"""The guest kernel: Debian's ``linux-image-amd64``, fetched with ``apt-get download`` and cached.

``fetch_kernel()`` downloads the meta package, follows its dependency to the versioned image
package (``linux-image-6.1.0-NN-amd64``), extracts it with ``dpkg-deb -x`` in a temporary
directory and keeps only what the suite boots: the compressed ``vmlinuz`` as shipped, the
uncompressed ELF ``vmlinux`` (cut out of the bzImage's XZ payload; it has a PVH entry note,
so QEMU can boot it directly) and the few modules the guest loads (virtio, virtio-blk,
virtio-net, ext4 and their dependencies). The cache lives in ``<cache>/vm/kernel/<abi>_<ver>/``.
"""

from __future__ import annotations

import json
import lzma
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from virtbench.paths import cache_dir
from virtbench.platforms.vm.modules import module_info, module_order
from virtbench.process import run_tool

META_PACKAGE = "linux-image-amd64"
APT_TIMEOUT_S = 600.0
XZ_MAGIC = b"\xfd7zXZ\x00"

#: Modules the guest may load: the block and network drivers for both machine types (virtio
#: over MMIO on microvm, over PCI on pc) and ext4 for the I/O disk. crc32c_generic stands in
#: for ext4's and jbd2's soft dependency ``crypto-crc32c`` (there is no modprobe in the guest).
NEEDED_MODULES = ("virtio_mmio", "virtio_pci", "virtio_blk", "virtio_net", "crc32c_generic",
                  "ext4")


class KernelError(RuntimeError):
    """The guest kernel could not be fetched or extracted; the message says which step failed."""


@dataclass(frozen=True)
class Kernel:
    """A cached guest kernel and its modules."""

    directory: Path
    package: str       # e.g. linux-image-6.1.0-56-amd64
    version: str       # Debian package version, e.g. 6.1.192-2
    release: str       # the kernel release (uname -r), e.g. 6.1.0-56-amd64

    @property
    def vmlinuz(self) -> Path:
        """The compressed bzImage exactly as the package ships it."""
        return self.directory / "vmlinuz"

    @property
    def vmlinux(self) -> Path:
        """The uncompressed ELF kernel (PVH entry)."""
        return self.directory / "vmlinux"

    @property
    def modules_dir(self) -> Path:
        return self.directory / "modules"

    def module(self, name: str) -> Path:
        return self.modules_dir / f"{name}.ko"

    def modules_for(self, wanted: tuple[str, ...]) -> list[str]:
        """``wanted`` plus their dependencies, in an order ``insmod`` accepts."""
        deps = json.loads((self.directory / "modules.json").read_text())
        return module_order(wanted, deps)

    @property
    def label(self) -> str:
        return f"{self.release} ({self.package} {self.version})"


def _kernel_root() -> Path:
    return cache_dir() / "vm" / "kernel"


def cached_kernel() -> Kernel | None:
    """The most recently fetched kernel in the cache, or None (never touches the network)."""
    current = _kernel_root() / "current.json"
    try:
        meta = json.loads(current.read_text())
    except (OSError, ValueError):
        return None
    kernel = Kernel(Path(meta["directory"]), meta["package"], meta["version"], meta["release"])
    files = [kernel.vmlinuz, kernel.vmlinux, kernel.directory / "modules.json"]
    if all(p.is_file() and p.stat().st_size > 0 for p in files):
        return kernel
    return None


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside an XZ-compressed bzImage."""
    start = bzimage.find(XZ_MAGIC)
    if start < 0:
        raise KernelError("no XZ stream in the bzImage (is the kernel compressed otherwise?)")
    elf = lzma.LZMADecompressor().decompress(bzimage[start:])
    if elf[:4] != b"\x7fELF":
        raise KernelError("the XZ payload of the bzImage is not an ELF file")
    return elf


def versioned_dependency(depends: str) -> tuple[str, str | None]:
    """``linux-image-6.1.0-56-amd64 (= 6.1.192-2)`` -> (package, version) from a Depends field."""
    for alternative in depends.split(","):
        m = re.match(r"\s*(linux-image-[0-9][^\s(|]*)\s*(?:\(\s*=\s*([^)\s]+)\s*\))?",
                     alternative)
        if m:
            return m.group(1), m.group(2)
    raise KernelError(f"no versioned linux-image package in Depends: {depends!r}")


def _download(package: str, where: Path) -> Path:
    before = set(where.glob("*.deb"))
    argv = ["apt-get", "download", "-q", package]
    try:
        run_tool(argv, timeout=APT_TIMEOUT_S, cwd=where)
    except RuntimeError as exc:
        # A fresh machine may have no package lists yet; as root, fetch them once and retry.
        if os.geteuid() != 0 or "locate package" not in str(exc) and \
                "candidate" not in str(exc):
            raise
        run_tool(["apt-get", "update", "-qq"], timeout=APT_TIMEOUT_S)
        run_tool(argv, timeout=APT_TIMEOUT_S, cwd=where)
    new = sorted(set(where.glob("*.deb")) - before)
    if not new:
        raise KernelError(f"apt-get download {package} produced no .deb file")
    return new[0]


def fetch_kernel() -> Kernel:
    """The cached guest kernel, downloading and extracting it on first use."""
    kernel = cached_kernel()
    if kernel is not None:
        return kernel
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise KernelError("apt-get and dpkg-deb are needed to fetch the Debian guest kernel")
    root = _kernel_root()
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vb-kernel-", dir=root) as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)  # lets apt's unprivileged downloader write here when it can
        try:
            meta = _download(META_PACKAGE, work)
            depends = run_tool(["dpkg-deb", "-f", meta, "Depends"], timeout=60).strip()
            package, _ = versioned_dependency(depends)
            image = _download(package, work)
            version = run_tool(["dpkg-deb", "-f", image, "Version"], timeout=60).strip()
            run_tool(["dpkg-deb", "-x", image, work / "x"], timeout=APT_TIMEOUT_S)
        except RuntimeError as exc:
            raise KernelError(f"fetching {META_PACKAGE} failed: {exc}") from exc
        vmlinuz = sorted((work / "x" / "boot").glob("vmlinuz-*"))
        if not vmlinuz:
            raise KernelError(f"{package} has no /boot/vmlinuz-*")
        release = vmlinuz[0].name.removeprefix("vmlinuz-")
        staging = work / "kernel"
        (staging / "modules").mkdir(parents=True)
        shutil.copyfile(vmlinuz[0], staging / "vmlinuz")
        (staging / "vmlinux").write_bytes(extract_vmlinux(vmlinuz[0].read_bytes()))
        deps = _copy_modules(work / "x", release, staging / "modules")
        (staging / "modules.json").write_text(json.dumps(deps, indent=1, sort_keys=True))
        final = root / f"{release}_{version}"
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    meta_json = {"directory": str(final), "package": package, "version": version,
                 "release": release}
    tmp_current = root / "current.json.tmp"
    tmp_current.write_text(json.dumps(meta_json, indent=1))
    tmp_current.replace(root / "current.json")
    kernel = cached_kernel()
    if kernel is None:
        raise KernelError(f"the extracted kernel in {final} is incomplete")
    return kernel


def _copy_modules(tree: Path, release: str, dest: Path) -> dict[str, list[str]]:
    """Copy NEEDED_MODULES and their dependencies; return {module: [dependencies]}."""
    index = {p.name.removesuffix(".ko").replace("-", "_"): p
             for p in (tree / "lib" / "modules" / release).rglob("*.ko")}
    if not index:
        raise KernelError(f"no uncompressed .ko modules under lib/modules/{release}")
    deps: dict[str, list[str]] = {}
    todo = list(NEEDED_MODULES)
    while todo:
        name = todo.pop()
        if name in deps:
            continue
        if name not in index:
            raise KernelError(f"module {name} is not in the kernel package")
        info = module_info(index[name].read_bytes())
        deps[name] = info.depends
        todo += info.depends
        shutil.copyfile(index[name], dest / f"{name}.ko")
    return deps
