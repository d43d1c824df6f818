"""The VM family: QEMU with Debian's kernel, under KVM where a test boot succeeds and under
TCG (software emulation) otherwise; PC (firmware, full boot) and microvm machine types.

- :mod:`.platform`: a QEMU guest and its instances, under TCG or KVM
- :mod:`.variants`: the pc and microvm machines under each accelerator
- :mod:`.kernel`: fetch ``linux-image-amd64`` with ``apt-get download``, keep vmlinuz, the
  uncompressed vmlinux and the virtio/ext4 modules in the cache
- :mod:`.modules`: ``.modinfo`` dependencies and the ``insmod`` order (no kmod needed)
- :mod:`.init`, :mod:`.initramfs`: the guest's ``/init`` and the cpio archive around it
- :mod:`.rootdisk`: the debian userland's ext4 root disk and the initramfs that mounts it
- :mod:`.qemu`: QEMU command lines (pc full boot, microvm fast boot), disks, HTTP readiness
- :mod:`.serial`, :mod:`.console`: the serial console as a timestamped log, and its parser
- :mod:`.qmp`: a small QMP client; :mod:`.kvm`: the KVM decision by a real test boot
"""

#: The family's variants, in the order of reports: name -> "module:Class".
VARIANTS = {
    "qemu-kvm/pc": "virtbench.platforms.vm.variants:KvmPc",
    "qemu-kvm/microvm": "virtbench.platforms.vm.variants:KvmMicrovm",
    "qemu-tcg/pc": "virtbench.platforms.vm.variants:TcgPc",
    "qemu-tcg/microvm": "virtbench.platforms.vm.variants:TcgMicrovm",
}
