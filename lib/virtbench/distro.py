"""A realistic userland: Debian's ``minbase`` root file system, built with debootstrap, cached.

``build_rootfs()`` runs ``debootstrap --variant=minbase`` against the Debian mirror this
machine's apt uses (read from ``/etc/apt/sources.list*``) and keeps the result in
``<cache>/distro/<suite>-<variant>-<key>/rootfs``, where the key is the SHA-256 of what
determines it: suite, variant, mirror and extra package list. The downloaded ``.deb`` files
and apt's package lists are removed afterwards, as Debian's own container images do. A
``manifest.json`` beside it (written last: a directory without one is incomplete) records
the debootstrap version and every installed package with its version.

The same directory becomes the Docker image (``docker import``, see
:mod:`virtbench.platforms.docker.images`) and the VM's ext4 root disk (see
:mod:`virtbench.platforms.vm.rootdisk`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from virtbench.paths import cache_dir
from virtbench.process import child_env, kill_group, tool_version

SUITE = "bookworm"
VARIANT = "minbase"
#: Packages added to minbase (debootstrap --include); none: minbase as Debian defines it.
PACKAGES: tuple[str, ...] = ()
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))
DEBOOTSTRAP_TIMEOUT_S = 1800.0
#: What is removed after debootstrap (globs under the root): the downloaded packages and
#: apt's package lists, as in Debian's container images (``apt-get update`` restores them).
CLEANED = ("var/cache/apt/archives/*.deb", "var/cache/apt/*.bin", "var/lib/apt/lists/*_*",
           "var/log/bootstrap.log")
#: Packages the full-OS userland (debian-systemd) adds to minbase: systemd as PID 1, udev
#: (the device units that systemd's serial getty waits for) and strace (in-guest tracing).
SYSTEMD_PACKAGES = ("systemd-sysv", "udev", "strace")
#: The suite's static workloads put into the userland (its image and its root disk).
USERLAND_WORKLOADS = ("noop", "cpu", "mem", "fileio", "http")


class DistroUnavailable(RuntimeError):
    """The Debian root file system cannot be built here; ``reason`` and ``fix`` say why."""

    def __init__(self, reason: str, fix: str = "") -> None:
        super().__init__(reason + (f" ({fix})" if fix else ""))
        self.reason, self.fix = reason, fix


@dataclass(frozen=True)
class Rootfs:
    """A built root file system and what determined it."""

    path: Path
    key: str
    suite: str
    variant: str
    mirror: str
    packages: tuple[str, ...]
    manifest: dict

    @property
    def release(self) -> str:
        """The point release the tree says it is (``/etc/debian_version``, e.g. 12.13)."""
        try:
            return (self.path / "etc" / "debian_version").read_text().strip()
        except OSError:
            return "unknown"

    @property
    def label(self) -> str:
        """``Debian bookworm minbase (12.13, debootstrap from http://deb.debian.org/debian,
        88 packages)``."""
        extra = f" + {', '.join(self.packages)}" if self.packages else ""
        count = len(self.manifest.get("packages", {}))
        return (f"Debian {self.suite} {self.variant}{extra} ({self.release}, debootstrap from "
                f"{self.mirror}, {count} packages)")

    @property
    def build_id(self) -> str:
        """A digest of what this build holds (its manifest: package versions, bytes): the
        key of what is made from it, so a rebuild from a mirror that moved on is not
        mistaken for the earlier one."""
        text = json.dumps(self.manifest, sort_keys=True)
        return hashlib.sha256(f"{self.key}\0{text}".encode()).hexdigest()[:16]

    @property
    def bytes_used(self) -> int:
        """Bytes of the regular files in the tree (each hard-linked file counted once)."""
        return int(self.manifest.get("file_bytes", 0))


# ---- the mirror -------------------------------------------------------------------------------

def parse_sources(text: str, deb822: bool) -> list[tuple[str, list[str]]]:
    """(URI, suites) of each binary ``deb`` source in an apt sources file, in file order.

    ``deb822``: the ``Types:/URIs:/Suites:`` stanza format of ``*.sources`` files; else the
    one-line ``deb [options] URI SUITE COMPONENTS`` format.
    """
    found: list[tuple[str, list[str]]] = []
    if deb822:
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and \
                    fields.get("enabled", "yes").lower() != "no":
                suites = fields.get("suites", "").split()
                found += [(uri, suites) for uri in fields.get("uris", "").split()]
        return found
    for line in text.splitlines():
        line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(line) >= 3 and line[0] == "deb":
            found.append((line[1], [line[2]]))
    return found


def mirror(suite: str = SUITE) -> str:
    """The Debian mirror apt uses here for ``suite`` (its first ``deb`` source naming that
    suite), else :data:`DEFAULT_MIRROR`."""
    files: list[Path] = []
    for src in SOURCES:
        if src.is_file():
            files.append(src)
        elif src.is_dir():
            files += sorted(p for p in src.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for uri, suites in parse_sources(text, deb822=path.suffix == ".sources"):
            if suite in suites and uri.startswith(("http://", "https://")):
                return uri.rstrip("/")
    return DEFAULT_MIRROR


def rootfs_key(suite: str, variant: str, mirror_url: str, packages: tuple[str, ...]) -> str:
    """The cache key of a root file system: a digest of what determines its contents."""
    text = json.dumps({"suite": suite, "variant": variant, "mirror": mirror_url,
                       "packages": sorted(packages), "cleaned": CLEANED}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---- the cache ----------------------------------------------------------------------------------

def _root_dir() -> Path:
    return cache_dir() / "distro"


def _entry(key: str, suite: str, variant: str) -> Path:
    return _root_dir() / f"{suite}-{variant}-{key}"


def cached_rootfs(suite: str = SUITE, variant: str = VARIANT, packages: tuple[str, ...] =
                  PACKAGES, mirror_url: str | None = None) -> Rootfs | None:
    """The cached root file system for these inputs, or None (never touches the network)."""
    mirror_url = mirror_url or mirror(suite)
    key = rootfs_key(suite, variant, mirror_url, packages)
    entry = _entry(key, suite, variant)
    try:
        manifest = json.loads((entry / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not (entry / "rootfs" / "bin" / "sh").exists():
        return None
    return Rootfs(entry / "rootfs", key, suite, variant, mirror_url, tuple(packages), manifest)


def status() -> str:
    """One line for ``virtbench doctor``: the debian userland cached, to be built on first
    use, or why it cannot be (never touches the network)."""
    found = cached_rootfs()
    if found is not None:
        return f"userland debian: {found.label}, cached"
    if shutil.which("debootstrap") is None:
        return ("userland debian: not available, debootstrap is not installed (apt-get install "
                "debootstrap, or run `make setup`)")
    if os.geteuid() != 0:
        return "userland debian: not available, debootstrap needs root"
    return f"userland debian: built on first use by debootstrap from {mirror()}"


def build_rootfs(suite: str = SUITE, variant: str = VARIANT,
                 packages: tuple[str, ...] = PACKAGES, mirror_url: str | None = None) -> Rootfs:
    """The cached root file system, built with debootstrap on first use (as root).

    Raises :class:`DistroUnavailable` when it cannot be built here (no debootstrap, not
    root, the mirror unreachable), with debootstrap's own error line.
    """
    found = cached_rootfs(suite, variant, packages, mirror_url)
    if found is not None:
        return found
    mirror_url = mirror_url or mirror(suite)
    if shutil.which("debootstrap") is None:
        raise DistroUnavailable("debootstrap is not installed",
                                "apt-get install debootstrap (or run `make setup`)")
    if os.geteuid() != 0:
        raise DistroUnavailable("debootstrap needs root to build the Debian root file system")
    key = rootfs_key(suite, variant, mirror_url, packages)
    entry = _entry(key, suite, variant)
    entry.parent.mkdir(parents=True, exist_ok=True)
    with _locked(entry.parent / f".{entry.name}.lock"):
        found = cached_rootfs(suite, variant, packages, mirror_url)
        if found is not None:  # another process built it while this one waited
            return found
        for stale in entry.parent.glob(f"vb-debootstrap-{key}-*"):  # of a killed build
            _unmount_under(stale)
            shutil.rmtree(stale, ignore_errors=True)
        with tempfile.TemporaryDirectory(prefix=f"vb-debootstrap-{key}-",
                                         dir=entry.parent) as tmp:
            target = Path(tmp) / "rootfs"
            try:
                _debootstrap(suite, variant, packages, mirror_url, target)
            finally:
                _unmount_under(Path(tmp))
            _clean(target)
            manifest = _manifest(target, suite, variant, mirror_url, packages)
            if entry.exists():
                shutil.rmtree(entry)
            entry.mkdir()
            os.rename(target, entry / "rootfs")
            tmp_manifest = entry / "manifest.json.tmp"
            tmp_manifest.write_text(json.dumps(manifest, indent=1, sort_keys=True))
            tmp_manifest.replace(entry / "manifest.json")
    found = cached_rootfs(suite, variant, packages, mirror_url)
    if found is None:
        raise DistroUnavailable(f"the root file system built in {entry} is incomplete")
    return found


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _debootstrap(suite: str, variant: str, packages: tuple[str, ...], mirror_url: str,
                 target: Path) -> None:
    argv = ["debootstrap", f"--variant={variant}"]
    if packages:
        argv.append("--include=" + ",".join(packages))
    argv += [suite, str(target), mirror_url]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=child_env(), start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=DEBOOTSTRAP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.wait()
        raise DistroUnavailable(f"debootstrap did not finish within "
                                f"{DEBOOTSTRAP_TIMEOUT_S:g} s") from None
    except BaseException:
        kill_group(proc.pid)
        proc.wait()
        raise
    if proc.returncode != 0:
        raise DistroUnavailable(f"debootstrap {variant} {suite} from {mirror_url} exited "
                                f"{proc.returncode}: {debootstrap_error(out)}",
                                "a reachable Debian mirror in /etc/apt/sources.list*")


def debootstrap_error(output: str) -> str:
    """The line of debootstrap's output that says what failed (``E: ...``), else its tail."""
    errors = [line.strip() for line in output.splitlines() if line.startswith("E:")]
    if errors:
        return errors[-1]
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return " | ".join(lines[-3:]) or "no output"


def _unmount_under(root: Path) -> None:
    """Lazily unmount whatever an interrupted debootstrap left mounted under ``root``."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    points = [m.split()[1].replace("\\040", " ") for m in mounts if len(m.split()) > 1]
    for point in sorted((p for p in points if p.startswith(str(root) + "/")), reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)


def _clean(root: Path) -> None:
    for pattern in CLEANED:
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _manifest(root: Path, suite: str, variant: str, mirror_url: str,
              packages: tuple[str, ...]) -> dict:
    status = (root / "var" / "lib" / "dpkg" / "status").read_text(errors="replace")
    return {"suite": suite, "variant": variant, "mirror": mirror_url,
            "packages_added": list(packages), "cleaned": list(CLEANED),
            "debootstrap": tool_version(["debootstrap", "--version"]) or "unknown",
            "packages": installed_packages(status), "file_bytes": tree_bytes(root)}


def installed_packages(status: str) -> dict[str, str]:
    """{package: version} of the installed packages in a dpkg ``status`` file."""
    out: dict[str, str] = {}
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", stanza, re.M))
        if "Package" in fields and "install ok installed" in fields.get("Status", ""):
            out[fields["Package"]] = fields.get("Version", "")
    return dict(sorted(out.items()))


def tree_bytes(root: Path) -> int:
    """Bytes of the regular files under ``root``, each inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) in seen or not (st.st_mode & 0o170000 == 0o100000):
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


# ---- the tree as a tar archive ------------------------------------------------------------------

def write_tar(root: Path, out: Path, extra: Mapping[str, Path] | None = None,
              extra_dirs: tuple[str, ...] = ()) -> int:
    """``root`` as a tar archive at ``out`` (numeric owners, hard links, device nodes kept),
    plus ``extra`` files (in-archive path -> host file, mode 0755) and empty directories;
    returns the bytes of the regular files in it."""
    total = 0

    def numeric(info: tarfile.TarInfo) -> tarfile.TarInfo:
        nonlocal total
        info.uname = info.gname = ""
        if info.isreg():
            total += info.size
        return info

    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted(os.listdir(root)):
            tar.add(root / name, arcname=name, recursive=True, filter=numeric)
        for d in extra_dirs:
            info = tarfile.TarInfo(d.strip("/"))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        extra = extra or {}
        for dest in sorted(extra):
            info = tar.gettarinfo(str(extra[dest]), arcname=dest.strip("/"))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755
            with open(extra[dest], "rb") as fh:
                tar.addfile(info, fh)
            total += info.size
    return total
