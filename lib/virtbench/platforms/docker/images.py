"""Offline images for the container platform: FROM scratch rootfs tarballs, content-tagged."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from virtbench.distro import Rootfs, write_tar
from virtbench.formats import ArchiveError, UserImage, read_saved_image  # noqa: F401 - re-exported
from virtbench.platforms.base import (
    NotSupported,
)
from virtbench.platforms.docker.objects import LABEL
from virtbench.process import run_tool, tool_version

WORKDIR_IN_CONTAINER = "/work"


# ---- images -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageSpec:
    """An image built FROM scratch: files (in-image path -> host file), empty directories."""

    name: str
    files: dict[str, Path]
    dirs: tuple[str, ...] = (WORKDIR_IN_CONTAINER,)
    symlinks: dict[str, str] = field(default_factory=dict)

    def dockerfile(self) -> bytes:
        return (f"FROM scratch\nCOPY rootfs/ /\nLABEL {LABEL}=1\n"
                f"WORKDIR {WORKDIR_IN_CONTAINER}\n").encode()

    @property
    def content_size(self) -> int:
        """Bytes of the regular files put into the image."""
        return sum(p.stat().st_size for p in self.files.values())

    @property
    def tag(self) -> str:
        digest = hashlib.sha256(self.dockerfile())
        for dest in sorted(self.files):
            digest.update(f"\0{dest}\0{_file_digest(self.files[dest])}".encode())
        for dest in sorted(self.symlinks):
            digest.update(f"\0{dest}->{self.symlinks[dest]}".encode())
        return f"virtbench/{self.name}:{digest.hexdigest()[:12]}"

    def context(self) -> tempfile.SpooledTemporaryFile:
        """The build context as a tar (deterministic owners, modes and times)."""
        buf = tempfile.SpooledTemporaryFile(max_size=8 << 20)
        with tarfile.open(fileobj=buf, mode="w") as tar:
            _add_bytes(tar, "Dockerfile", self.dockerfile(), 0o644)
            for d in sorted({*self.dirs, *(str(Path(p).parent) for p in self.files)}):
                if d != "/":
                    info = tarfile.TarInfo(f"rootfs{d}")
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
            for dest in sorted(self.files):
                src = self.files[dest]
                info = tarfile.TarInfo(f"rootfs{dest}")
                info.size = src.stat().st_size
                with open(src, "rb") as fh:
                    info.mode = 0o755 if fh.read(4) == b"\x7fELF" else 0o644
                    fh.seek(0)
                    tar.addfile(info, fh)
            for dest, target in sorted(self.symlinks.items()):
                info = tarfile.TarInfo(f"rootfs{dest}")
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
        buf.seek(0)
        return buf


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(path: Path) -> str:
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


@functools.lru_cache(maxsize=16)
def with_libraries(binary: Path) -> dict[str, Path]:
    """``binary``'s shared libraries and loader (from ``ldd``), keyed by their in-image path."""
    out = run_tool(["ldd", str(binary)], timeout=30)
    return {str(p): Path(os.path.realpath(p)) for p in parse_ldd(out)}


def is_static_executable(path: Path) -> bool:
    """True for an ELF executable that ``ldd`` calls ``not a dynamic executable``."""
    try:
        with open(path, "rb") as fh:
            if fh.read(4) != b"\x7fELF":
                return False
    except OSError:
        return False
    proc = subprocess.run(["ldd", str(path)], capture_output=True, text=True, timeout=30)
    text = proc.stdout + proc.stderr
    return "not a dynamic executable" in text or "statically linked" in text


def busybox_spec() -> ImageSpec:
    """A busybox image from Debian's busybox-static, for anything that needs a shell."""
    busybox = Path("/bin/busybox")
    if not busybox.exists() or not is_static_executable(busybox):
        raise NotSupported("no static /bin/busybox; apt-get install busybox-static")
    links = {f"/bin/{tool}": "busybox" for tool in ("sh", "sleep", "true", "cat", "ls")}
    return ImageSpec("busybox", {"/bin/busybox": busybox}, (WORKDIR_IN_CONTAINER, "/tmp"),
                     links)


@dataclass(frozen=True)
class ImportSpec:
    """An image made by ``docker import`` of a root file system: one layer, the tree as it
    is plus ``files`` (in-image path -> host file), tagged by what determines it."""

    name: str
    rootfs: Rootfs
    files: dict[str, Path]
    dirs: tuple[str, ...] = (WORKDIR_IN_CONTAINER,)

    @property
    def tag(self) -> str:
        digest = hashlib.sha256(f"{self.rootfs.build_id}\0{sorted(self.dirs)}".encode())
        for dest in sorted(self.files):
            digest.update(f"\0{dest}\0{_file_digest(self.files[dest])}".encode())
        return f"virtbench/{self.name}:{digest.hexdigest()[:12]}"

    @property
    def changes(self) -> list[str]:
        """The image configuration ``docker import --change`` sets."""
        return [f"LABEL {LABEL}=1", f"WORKDIR {WORKDIR_IN_CONTAINER}",
                "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]

    @property
    def content_size(self) -> int:
        """Bytes of the regular files put into the image (the tree's and ``files``)."""
        return self.rootfs.bytes_used + sum(p.stat().st_size for p in self.files.values())

    def tarball(self, out: Path) -> Path:
        """The tree and the files as the tar archive ``docker import`` reads."""
        write_tar(self.rootfs.path, out, self.files, self.dirs)
        return out


def loaded_refs(messages: list) -> list[str]:
    """The images a ``load_image`` response names ("Loaded image: REF" or "Loaded image ID:
    ID" lines of its stream)."""
    refs = []
    for msg in messages:
        text = msg.get("stream", "") if isinstance(msg, dict) else str(msg)
        for line in text.splitlines():
            for prefix in ("Loaded image ID: ", "Loaded image: "):
                if line.startswith(prefix):
                    refs.append(line[len(prefix):].strip())
                    break
    return refs


def short_start_error(text: str) -> str:
    """The part of a runtime's failure to start a container that says why (e.g.
    ``exec: "/app/x": stat /app/x: no such file or directory``), else the text itself."""
    import re

    found = re.search(r'(exec: "[^"]*": .*?)(?:: unknown)?["\)]*$', text.strip())
    return found.group(1) if found else text.strip()[-300:]


# ---- wasmtime CLIs --------------------------------------------------------------------------

def http_wasmtime_release() -> str:
    """The wasmtime release that serves http (``-S tcplisten``): the wasm CLI variant's."""
    from virtbench.platforms.wasm.cli import Tcplisten36

    return Tcplisten36.release


@functools.lru_cache(maxsize=8)
def version_of(exe: Path) -> str:
    return tool_version([str(exe), "--version"]) or f"{exe} (version unknown)"

def parse_ldd(text: str) -> list[Path]:
    """The files ``ldd`` resolves (libraries and the loader); vdso and unresolved skipped."""
    paths = []
    for line in text.splitlines():
        line = line.strip()
        if "=>" in line:
            target = line.split("=>", 1)[1].strip().split(" (")[0].strip()
        else:
            target = line.split(" (")[0].strip()
        if target.startswith("/"):
            paths.append(Path(target))
    return paths
