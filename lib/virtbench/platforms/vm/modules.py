"""Kernel modules without kmod: read a ``.ko``'s ``.modinfo`` and order modules for ``insmod``.

A module's ``.modinfo`` ELF section is a run of NUL-terminated ``key=value`` strings; its
``depends=`` entry lists the modules that must be loaded first (what ``depmod`` would put in
``modules.dep``). The guest has no ``modprobe``, so the host computes the load order.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ModInfo:
    name: str
    depends: list[str]
    softdep: str = ""


def _section(elf: bytes, wanted: str) -> bytes:
    """The bytes of section ``wanted`` of a little-endian ELF64 file."""
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ValueError("not a little-endian ELF64 file")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)

    def header(i: int) -> tuple[int, int, int]:
        name, _type, _flags, _addr, offset, size = struct.unpack_from(
            "<IIQQQQ", elf, shoff + i * shentsize)
        return name, offset, size

    _, str_off, str_size = header(shstrndx)
    names = elf[str_off:str_off + str_size]
    for i in range(shnum):
        name, offset, size = header(i)
        end = names.index(b"\0", name)
        if names[name:end].decode() == wanted:
            return elf[offset:offset + size]
    raise ValueError(f"no {wanted} section")


def module_info(ko: bytes) -> ModInfo:
    """Name, hard dependencies and soft dependencies of a kernel module file."""
    fields: dict[str, str] = {}
    for entry in _section(ko, ".modinfo").split(b"\0"):
        key, sep, value = entry.decode(errors="replace").partition("=")
        if sep and key not in fields:
            fields[key] = value
    depends = [d.replace("-", "_") for d in fields.get("depends", "").split(",") if d]
    return ModInfo(fields.get("name", ""), depends, fields.get("softdep", ""))


def module_order(wanted: Iterable[str], depends: Mapping[str, list[str]]) -> list[str]:
    """``wanted`` and everything they depend on, each after its dependencies (stable order)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise ValueError(f"module dependency cycle through {name}")
        if name not in depends:
            raise ValueError(f"unknown module {name}")
        visiting.add(name)
        for dep in depends[name]:
            visit(dep)
        visiting.discard(name)
        order.append(name)

    for name in wanted:
        visit(name)
    return order
