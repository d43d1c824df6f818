"""A workload spec: how to run your own program, read from TOML (``--spec FILE``) or flags.

One :class:`WorkloadSpec` holds everything a platform needs to run a program that is not one
of the suite's: its native argv and/or WebAssembly module, the arguments both get, stdin,
environment, directories, the exit codes that mean success, an optional pattern its stdout
must match, and a time limit. :func:`from_toml` and :func:`from_flags` build the same object
and :func:`checked` validates it in one place.

A directory ``HOST[:GUEST]`` is copied afresh for every run (:func:`stage_dirs`), so what the
program writes never reaches the original and every run starts from the same files; the
program finds it at ``GUEST`` (default: the host path itself, as ``wasmtime run --dir HOST``
does). A native process has no file-system namespace of its own: there, arguments and
environment values that start with a ``GUEST`` path are rewritten to the fresh copy.

``image`` is a ``docker save`` archive of your own (a file with ``manifest.json``; a root
file system tarball needs ``docker import FILE NAME`` and ``docker save NAME -o FILE``
first). With it, ``command`` is the argv *inside* that image (run by docker/runc and
docker/runc-host as it is, not looked up on this host); native and the VM run it only when
``command[0]`` also exists on the host (an absolute path, or a name on PATH), and otherwise
say that the program lives inside the image.

TOML (paths relative to the spec file)::

    name = "solver"
    command = ["./solver"]          # native argv (a static binary also runs in Docker and the VM)
    image = "solver-image.tar"      # or: a `docker save` archive; command is then its argv inside
    wasm = "solver.wasm"            # WASI preview-1 command module
    args = ["/in/problem.cnf"]      # given to both
    stdin = "input.txt"
    env = { LANG = "C" }
    dirs = ["inputs:/in", "scratch:/tmp/out"]
    ok_exit = [10, 20]              # default [0]
    success = "^s (UN)?SATISFIABLE"  # a regular expression searched in stdout
    time_limit_s = 60
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from virtbench.formats import ArchiveError, WasmModuleError, check_module, read_saved_image

DEFAULT_TIME_LIMIT_S = 300.0
MAX_TIME_LIMIT_S = 86_400.0
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEYS = ("name", "command", "wasm", "image", "args", "stdin", "env", "dirs", "ok_exit",
        "success", "time_limit_s")


class SpecError(ValueError):
    """A spec that cannot run; the message names the file, line and key when there is one."""


@dataclass(frozen=True)
class Dir:
    """A host directory the program sees at ``guest`` (a fresh copy per run)."""

    host: Path
    guest: str

    def __str__(self) -> str:
        return f"{self.host}:{self.guest}"


@dataclass(frozen=True)
class WorkloadSpec:
    """Your own program, as every platform family runs it."""

    name: str
    command: tuple[str, ...] = ()
    wasm: Path | None = None
    args: tuple[str, ...] = ()
    stdin: Path | None = None
    env: tuple[tuple[str, str], ...] = ()
    dirs: tuple[Dir, ...] = ()
    ok_exit: tuple[int, ...] = (0,)
    success: str = ""
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    image: Path | None = None  # a `docker save` archive; ``command`` is then its argv inside
    source: str = field(default="", compare=False)  # where it came from, for messages

    @property
    def program(self) -> Path | None:
        """The native executable (argv[0] of ``command``, looked up on PATH); with an
        ``image``, None unless ``command[0]`` is also a file on this host."""
        if not self.command:
            return None
        found = shutil.which(self.command[0])
        relative = "/" in self.command[0] and not self.command[0].startswith("/")
        if self.image is not None and (not found or relative):
            return None
        return Path(found).resolve() if found else Path(self.command[0])

    def not_on_host(self) -> str:
        """Why the program cannot run on the host itself ("" when it can)."""
        if not self.command:
            return f"workload {self.name!r} has no native command"
        if self.program is None:
            return (f"the program lives inside the image {self.image.name} "
                    f"({self.command[0]} is not a file on this host): a user's image runs on "
                    "docker/runc and docker/runc-host")
        return ""

    def native_argv(self, rewrite: Mapping[str, str] | None = None) -> list[str]:
        """``command`` + ``args``, with guest paths rewritten to host copies (native runs)."""
        if not self.command:
            raise SpecError(f"workload {self.name!r} has no native command")
        found = shutil.which(self.command[0])  # not resolved: a multi-call program (redis-
        argv0 = str(Path(found).absolute()) if found else str(self.program)  # server) reads it
        return [argv0, *self.command[1:], *rewrite_paths(self.args, rewrite)]

    def environment(self, rewrite: Mapping[str, str] | None = None) -> dict[str, str]:
        return {k: rewrite_paths([v], rewrite)[0] for k, v in self.env}

    def check_outcome(self, returncode: int, stdout: str, what: str,
                      stderr: str = "") -> None:
        """RuntimeError unless ``returncode`` is accepted and stdout matches ``success``."""
        if returncode not in self.ok_exit:
            tail = (stderr or stdout).strip()[-600:]
            raise RuntimeError(f"{what} exited {returncode} (accepted: "
                               f"{', '.join(map(str, self.ok_exit))}): {tail}")
        if self.success and not re.search(self.success, stdout, re.M):
            raise RuntimeError(f"{what} exited {returncode} but its stdout does not match "
                               f"the success pattern {self.success!r}; it ends with: "
                               f"{stdout.strip()[-300:]!r}")

    def describe(self) -> str:
        parts = [f"args {shlex.join(self.args)}" if self.args else "no args"]
        if self.image is not None:
            parts.insert(0, f"image {self.image.name}")
        if self.dirs:
            parts.append("dirs " + ", ".join(map(str, self.dirs)) + " (fresh copy per run)")
        if self.stdin:
            parts.append(f"stdin {self.stdin}")
        if self.env:
            parts.append("env " + " ".join(k for k, _ in self.env))
        parts.append(f"accepted exit {', '.join(map(str, self.ok_exit))}")
        if self.success:
            parts.append(f"stdout matches {self.success!r}")
        return "; ".join(parts)


def rewrite_paths(values: Iterable[str], rewrite: Mapping[str, str] | None) -> list[str]:
    """``values`` with a leading guest path (a key of ``rewrite``) replaced by its value."""
    out = []
    for value in values:
        for guest, host in sorted((rewrite or {}).items(), key=lambda kv: -len(kv[0])):
            if value == guest or value.startswith(guest.rstrip("/") + "/"):
                value = host + value[len(guest):]
                break
        out.append(value)
    return out


def stage_dirs(spec: WorkloadSpec, root: Path) -> dict[str, Path]:
    """Fresh copies of the spec's directories under ``root``: guest path -> host copy.

    A symbolic link is copied as a link relative to its place in the copy, so it resolves
    inside the copy; a link that resolves outside its directory is refused (SpecError):
    some engines follow links out of a preopened directory, and a guest may read only the
    directory it was given.
    """
    out = {}
    for i, d in enumerate(spec.dirs):
        refuse_links_out(d.host)
        dest = root / f"dir{i}"
        shutil.copytree(d.host, dest, symlinks=True)
        _relink_inside(d.host.resolve(), dest)
        out[d.guest] = dest
    return out


def links_out(directory: Path) -> list[tuple[Path, Path]]:
    """(link, where it resolves) for every symbolic link under ``directory`` that resolves
    outside it (dangling links included: they are judged by where they point)."""
    top = directory.resolve()
    found = []
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            target = (path.parent / os.readlink(path)).resolve()
            if target != top and not target.is_relative_to(top):
                found.append((path, target))
    return found


def refuse_links_out(directory: Path, where: str = "") -> None:
    """SpecError naming the first symbolic link under ``directory`` that leads out of it."""
    bad = links_out(directory)
    if bad:
        link, target = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise SpecError(f"{where}dirs: {link} is a symbolic link to {target}, outside "
                        f"{directory}{more}; a guest may read only the directory it is given: "
                        "replace the link by a copy of what it points to, or give that "
                        "directory as a --dir of its own")


def _relink_inside(source: Path, copy: Path) -> None:
    """Rewrite the links of ``copy`` (a copy of ``source``) as relative links, so a link
    that pointed inside ``source`` by an absolute path points inside the copy."""
    for path in copy.rglob("*"):
        if path.is_symlink():
            original = source / path.relative_to(copy)
            target = (original.parent / os.readlink(original)).resolve()
            path.unlink()
            path.symlink_to(os.path.relpath(copy / target.relative_to(source), path.parent))


def parse_dir(text: str, base: Path | None = None) -> Dir:
    """``HOST[:GUEST]`` (GUEST absolute; default the absolute host path)."""
    host, sep, guest = text.partition(":")
    if not host:
        raise SpecError(f"directory {text!r}: expected HOST[:GUEST]")
    path = Path(host).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    path = path.resolve()
    guest = guest if sep else str(path)
    if not guest.startswith("/") or any(part in ("..", ".") for part in guest.split("/")):
        raise SpecError(f"directory {text!r}: the guest path {guest!r} must be absolute "
                        "and plain (no . or ..)")
    return Dir(path, guest.rstrip("/") or "/")


def parse_env(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not _ENV_NAME.match(key):
        raise SpecError(f"environment {text!r}: expected K=V with K a name such as LANG")
    return key, value


def checked(spec: WorkloadSpec) -> WorkloadSpec:
    """``spec`` if it can run; SpecError naming what is wrong and what is valid otherwise."""
    where = f"{spec.source}: " if spec.source else ""
    if spec.image is not None and not spec.command:
        raise SpecError(f"{where}image: give the command to run inside it (its argv, "
                        "e.g. command = [\"/app/server\"])")
    if not spec.command and spec.wasm is None:
        raise SpecError(f"{where}a workload needs a native command (on the host, or inside "
                        "an image) and/or a .wasm module")
    if not spec.name or any(c.isspace() or c in "/\\," for c in spec.name):
        raise SpecError(f"{where}name {spec.name!r}: a non-empty word without spaces, "
                        "slashes or commas")
    if spec.image is not None:
        try:
            read_saved_image(spec.image)
        except ArchiveError as exc:
            raise SpecError(f"{where}image: {exc}") from None
    elif spec.command:
        exe = spec.program
        if exe is None or not exe.is_file():
            raise SpecError(f"{where}command: {spec.command[0]}: no such file (nor on PATH)")
    if spec.wasm is not None:
        try:
            check_module(spec.wasm)
        except WasmModuleError as exc:
            raise SpecError(f"{where}wasm: {exc}") from None
    if spec.stdin is not None and not spec.stdin.is_file():
        raise SpecError(f"{where}stdin: {spec.stdin}: no such file")
    for d in spec.dirs:
        if not d.host.is_dir():
            raise SpecError(f"{where}dirs: {d.host}: no such directory")
        refuse_links_out(d.host, where)
    guests = [d.guest for d in spec.dirs]
    if len(set(guests)) != len(guests):
        raise SpecError(f"{where}dirs: two directories at the same guest path: {guests}")
    for code in spec.ok_exit:
        if not 0 <= code <= 255:
            raise SpecError(f"{where}ok_exit: {code} is not an exit status (0..255)")
    if spec.success:
        try:
            re.compile(spec.success)
        except re.error as exc:
            raise SpecError(f"{where}success: {spec.success!r} is not a regular expression: "
                            f"{exc}") from None
    if not 0 < spec.time_limit_s <= MAX_TIME_LIMIT_S:
        raise SpecError(f"{where}time_limit_s: {spec.time_limit_s:g} is not in "
                        f"(0, {MAX_TIME_LIMIT_S:g}] seconds")
    return spec


def from_flags(*, name: str | None = None, command: str | None = None,
               wasm: str | None = None, image: str | None = None,
               args: Sequence[str] = (), stdin: str | None = None,
               env: Sequence[str] = (), dirs: Sequence[str] = (), ok_exit: Sequence[int] = (),
               success: str | None = None, time_limit_s: float | None = None,
               base: WorkloadSpec | None = None) -> WorkloadSpec:
    """The spec of the command-line flags, on top of ``base`` (a ``--spec`` file) if given."""
    spec = base or WorkloadSpec(name="")
    changes: dict = {}
    if command:
        changes["command"] = tuple(shlex.split(command))
    if wasm:
        changes["wasm"] = Path(wasm).expanduser().resolve()
    if image:
        changes["image"] = Path(image).expanduser().resolve()
    if args:
        changes["args"] = spec.args + tuple(args)
    if stdin:
        changes["stdin"] = Path(stdin).expanduser().resolve()
    if env:
        changes["env"] = spec.env + tuple(parse_env(e) for e in env)
    if dirs:
        changes["dirs"] = spec.dirs + tuple(parse_dir(d) for d in dirs)
    if ok_exit:
        changes["ok_exit"] = tuple(ok_exit)
    if success:
        changes["success"] = success
    if time_limit_s is not None:
        changes["time_limit_s"] = float(time_limit_s)
    spec = replace(spec, **changes)
    if name:
        spec = replace(spec, name=name)
    elif not spec.name:
        default = (Path(spec.command[0]).name if spec.command
                   else spec.wasm.stem if spec.wasm else "")
        spec = replace(spec, name=default)
    return checked(spec)


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.match(line):
            return number
    return None


def from_toml(path: str | Path) -> WorkloadSpec:
    """The spec in a TOML file; SpecError names the file, the line and the key when wrong."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise SpecError(f"--spec {path}: no such file")
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        at = re.search(r"at line (\d+)", str(exc))
        raise SpecError(f"{path}{f':{at.group(1)}' if at else ''}: not valid TOML: "
                        f"{exc}") from None
    base = path.resolve().parent

    def bad(key: str, why: str) -> SpecError:
        line = _line_of(text, key)
        return SpecError(f"{path}{f':{line}' if line else ''}: key {key!r}: {why}")

    unknown = [k for k in data if k not in KEYS]
    if unknown:
        raise bad(unknown[0], f"unknown key; valid: {', '.join(KEYS)}")

    def strings(key: str) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad(key, "expected a list of strings")
        return tuple(value)

    def text_of(key: str) -> str:
        value = data.get(key, "")
        if not isinstance(value, str):
            raise bad(key, f"expected a string, got {type(value).__name__}")
        return value

    def file_of(key: str) -> Path | None:
        value = text_of(key)
        return (base / Path(value).expanduser()).resolve() if value else None

    env = data.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise bad("env", "expected a table of strings, e.g. env = { LANG = \"C\" }")
    ok = data.get("ok_exit", [0])
    if not isinstance(ok, list) or not ok or not all(type(v) is int for v in ok):
        raise bad("ok_exit", "expected a non-empty list of integers, e.g. [0, 10]")
    limit = data.get("time_limit_s", DEFAULT_TIME_LIMIT_S)
    if type(limit) not in (int, float):
        raise bad("time_limit_s", "expected a number of seconds")
    command = strings("command")
    image = file_of("image")
    if (command and image is None and "/" in command[0]
            and not Path(command[0]).is_absolute()):
        command = (str((base / command[0]).resolve()), *command[1:])
    try:
        dirs = tuple(parse_dir(d, base) for d in strings("dirs"))
        envs = tuple(parse_env(f"{k}={v}") for k, v in env.items())
    except SpecError as exc:
        raise bad("dirs" if "directory" in str(exc) else "env", str(exc)) from None
    spec = WorkloadSpec(
        name=text_of("name"), command=command, wasm=file_of("wasm"), image=image,
        args=strings("args"),
        stdin=file_of("stdin"), env=envs, dirs=dirs, ok_exit=tuple(ok),
        success=text_of("success"), time_limit_s=float(limit), source=str(path))
    if not spec.name:
        spec = replace(spec, name=Path(command[0]).name if command else
                       spec.wasm.stem if spec.wasm else path.stem)
    try:
        return checked(spec)
    except SpecError as exc:
        key = next((k for k in KEYS if f": {k}:" in str(exc)), "")
        line = _line_of(text, key) if key else None
        if line:
            raise SpecError(str(exc).replace(f"{path}: ", f"{path}:{line}: ", 1)) from None
        raise
