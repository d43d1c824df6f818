"""File formats that the workload spec and the platforms both read: a ``docker save``
archive and a WebAssembly core module. A leaf: it imports nothing from virtbench."""

from __future__ import annotations

import json
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path

WASM_MAGIC = b"\0asm"
CORE_MODULE_VERSION = b"\x01\x00\x00\x00"
EXPORT_SECTION = 7
START = "_start"  # the entry point of a WASI command module


# ---- docker save archives ----------------------------------------------------------------

class ArchiveError(ValueError):
    """A file that is not a ``docker save`` archive of one image; the message says why."""


@dataclass(frozen=True)
class UserImage:
    """A user's ``docker save`` archive, loaded as it is (its own layers, configuration and
    tags). ``image_id`` is its configuration's digest, the engine's image ID; the engine
    tracks the images it loads for the user and removes only those (see
    :meth:`DockerEngine.record_loaded`)."""

    name: str
    archive: Path
    image_id: str
    repo_tags: tuple[str, ...] = ()

    @property
    def tag(self) -> str:
        return self.image_id

    @property
    def archive_size(self) -> int:
        return self.archive.stat().st_size


def read_saved_image(archive: Path, name: str = "") -> UserImage:
    """The image in a ``docker save`` archive (its ``manifest.json``); ArchiveError if the
    file is missing, not a tar, not a ``docker save`` archive, or holds several images."""
    if not archive.is_file():
        raise ArchiveError(f"{archive}: no such file")
    try:
        with tarfile.open(archive) as tar:
            try:
                member = tar.getmember("manifest.json")
            except KeyError:
                raise ArchiveError(
                    f"{archive} is not a `docker save` archive (it has no manifest.json); a "
                    "root file system tarball needs `docker import FILE NAME` and then "
                    "`docker save NAME -o FILE` first") from None
            manifest = json.load(tar.extractfile(member))
    except (tarfile.TarError, OSError) as exc:
        raise ArchiveError(f"{archive} is not a tar archive ({exc}); expected the output "
                           "of `docker save IMAGE -o FILE`") from None
    except ValueError as exc:
        raise ArchiveError(f"{archive}: manifest.json is not valid JSON: {exc}") from None
    if not isinstance(manifest, list) or len(manifest) != 1:
        count = len(manifest) if isinstance(manifest, list) else "no"
        raise ArchiveError(f"{archive} holds {count} images; save exactly one "
                           "(`docker save IMAGE -o FILE`)")
    config = str(manifest[0].get("Config", ""))
    digest = Path(config).name.removesuffix(".json")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ArchiveError(f"{archive}: manifest.json names no image configuration "
                           f"(Config {config!r})")
    tags = tuple(manifest[0].get("RepoTags") or ())
    return UserImage(name or archive.stem, archive.resolve(), f"sha256:{digest}", tags)


# ---- WebAssembly core modules ------------------------------------------------------------

class WasmModuleError(ValueError):
    """A .wasm file that is missing or not a WebAssembly core module; the message names it."""


def check_module(path: str | os.PathLike) -> Path:
    """``path`` if it is a WebAssembly core module; WasmModuleError naming it otherwise."""
    path = Path(path)
    if not path.is_file():
        raise WasmModuleError(f"WebAssembly module {path} does not exist")
    with path.open("rb") as fh:
        head = fh.read(8)
    if head[:4] != WASM_MAGIC:
        raise WasmModuleError(f"{path} is not a WebAssembly module (no \\0asm magic number at "
                              f"its start; it begins with {head[:8]!r})")
    if head[4:8] != CORE_MODULE_VERSION:
        raise WasmModuleError(f"{path} is not a WebAssembly core module of version 1 (version "
                              f"field {head[4:8].hex()}; components are not supported)")
    try:
        functions = exported_functions(path.read_bytes())
    except (IndexError, UnicodeDecodeError):
        raise WasmModuleError(f"{path} is not a valid WebAssembly module (its sections are "
                              "truncated or malformed)") from None
    if START not in functions:
        raise WasmModuleError(f"{path} exports no {START} function (it is not a WASI command "
                              "module)")
    return path


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 number at ``pos``: (value, position after it)."""
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def exported_functions(data: bytes) -> set[str]:
    """Names of the functions a core module exports (read from its export section)."""
    names: set[str] = set()
    pos = 8
    while pos < len(data):
        size, body = _leb128(data, pos + 1)
        if data[pos] == EXPORT_SECTION:
            count, p = _leb128(data, body)
            for _ in range(count):
                length, p = _leb128(data, p)
                name = data[p:p + length].decode()
                kind, p = data[p + length], p + length + 1
                _, p = _leb128(data, p)
                if kind == 0:  # a function
                    names.add(name)
        pos = body + size
        if pos > len(data):
            raise IndexError("section runs past the end of the module")
    return names
