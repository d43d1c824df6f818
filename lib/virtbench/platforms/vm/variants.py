"""The VM variants: QEMU under KVM or TCG (:mod:`.platform`), with the pc machine (firmware,
full boot) or the microvm machine (PVH fast boot)."""

from __future__ import annotations

from virtbench.platforms.vm.platform import Kvm, Tcg


class KvmPc(Kvm):
    variant = "qemu-kvm/pc"
    summary = "QEMU + KVM, pc machine, full boot of the compressed kernel"
    machine_type = "pc"


class KvmMicrovm(Kvm):
    variant = "qemu-kvm/microvm"
    summary = "QEMU + KVM, microvm machine, fast boot of the uncompressed kernel (PVH)"
    machine_type = "microvm"


class TcgPc(Tcg):
    variant = "qemu-tcg/pc"
    summary = "QEMU TCG (software emulation), pc machine, full boot of the compressed kernel"
    machine_type = "pc"


class TcgMicrovm(Tcg):
    variant = "qemu-tcg/microvm"
    summary = ("QEMU TCG (software emulation), microvm machine, fast boot of the uncompressed "
               "kernel (PVH)")
    machine_type = "microvm"
