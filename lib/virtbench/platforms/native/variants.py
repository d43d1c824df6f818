"""The native variants: the workload as a plain host process (:mod:`.platform`), statically
or dynamically linked."""

from __future__ import annotations

from virtbench.platforms.native.platform import Native


class NativeStatic(Native):
    variant = "native/static"
    summary = "statically linked executable (the baseline: the same binary the container runs)"
    target = "static"


class NativeDynamic(Native):
    variant = "native/dynamic"
    summary = "dynamically linked executable (glibc loaded at start)"
    target = "native"
