"""What kind of platform each registered variant is: the one table claims are checked against.

Derived from the registry (:data:`virtbench.platforms.VARIANTS`: the family and the part of
the name before '/'), so a new variant gets its class without touching any claim.
"""

from __future__ import annotations

from virtbench.platforms import SANDBOXED_CONTAINER, VARIANTS, class_of

#: Platform classes a claim can assume, and what each is.
PLATFORM_CLASSES: dict[str, str] = {
    "process": "a bare process on the host",
    "container": "a Linux container (Docker) on the host's kernel",
    "sandboxed-container": "a container with a kernel boundary of its own (gVisor's runsc: "
                           "a user-space kernel between the container and the host)",
    "wasm": "a WebAssembly engine on the host",
    "wasm-in-container": "a WebAssembly engine inside a container",
    "hardware-vm": "a VM on hardware virtualization (QEMU with KVM)",
    "emulated-vm": "a VM under software emulation (QEMU with TCG)",
}
#: What hosts a Wasm engine: its own executable (a CLI), or a process of another runtime that
#: embeds it (a Python worker, Node), whose own memory is not the engine's.
ENGINE_HOSTS = ("engine", "python", "node")


def _family(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    return VARIANTS[variant][0]


def platform_class(variant: str) -> str:
    """The variant's class, one of :data:`PLATFORM_CLASSES`."""
    family, kind = _family(variant), variant.split("/")[0]
    if family == "native":
        return "process"
    if family == "docker":
        if class_of(variant) == SANDBOXED_CONTAINER:
            return "sandboxed-container"
        return "wasm-in-container" if "+wasm" in kind else "container"
    if family == "wasm":
        return "wasm"
    if kind.startswith("qemu-kvm"):
        return "hardware-vm"
    if kind.startswith("qemu-tcg"):
        return "emulated-vm"
    raise ValueError(f"no platform class for {variant!r} (family {family})")


def engine_host(variant: str) -> str:
    """For a Wasm variant, what process holds its engine (:data:`ENGINE_HOSTS`); "" else."""
    if _family(variant) != "wasm":
        return ""
    kind = variant.split("/")[0]
    if kind.startswith("node"):
        return "node"
    if kind.startswith("wasmtime-cli"):
        return "engine"
    return "python"  # wasmtime-embedded (wasmtime-py), wasmer (wasmer-sdk)
