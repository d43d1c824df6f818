"""The bytes a VM variant keeps on disk: the guest kernel, the initramfs of each workload, the
root disk of a Debian userland. Mixed into :class:`virtbench.platforms.vm.platform.Qemu`."""

from __future__ import annotations

import tempfile
from pathlib import Path

from virtbench.distro import build_rootfs
from virtbench.platforms.base import (
    Artifact,
)
from virtbench.platforms.vm.common import (
    MIN_DISK_MIB,
)
from virtbench.platforms.vm.fullos import (
    build_fullos_rootfs,
)
from virtbench.platforms.vm.initramfs import build_initramfs
from virtbench.platforms.vm.qemu import (
    make_disk,
)


class DiskUse:
    """Bytes on disk of a VM variant (mixed into :class:`Qemu`)."""

    def artifacts(self) -> list[Artifact]:
        """The kernel, each workload's initramfs, the I/O disk image, and what each workload
        boots from (debian userland: the kernel, the initramfs that mounts the root disk, and
        the root disk)."""
        kernel = self.kernel()
        image = self.machine.kernel_image(kernel)
        kernel_bytes = image.stat().st_size
        what = ("compressed bzImage" if self.machine_type == "pc"
                else "uncompressed ELF vmlinux")
        out = [Artifact("kernel", kernel_bytes, f"the {what} this variant boots ({kernel.label})")]
        if self.userland != "minimal":
            return out + self._root_disk_artifacts(kernel_bytes, what)
        with tempfile.TemporaryDirectory(prefix="vb-vm-disk-") as tmp:
            img = make_disk(Path(tmp) / "work.img", MIN_DISK_MIB)
            apparent, allocated = img.stat().st_size, img.stat().st_blocks * 512
        for name in ("noop", "cpu", "http", "fileio"):
            initrd = build_initramfs(name, kernel, self.machine.bus).stat().st_size
            total = kernel_bytes + initrd + (allocated if name == "fileio" else 0)
            extra = (f" + the allocated blocks of the empty {MIN_DISK_MIB} MiB ext4 disk image"
                     if name == "fileio" else "")
            out += [
                Artifact("initramfs", initrd,
                         f"gzip cpio: init, busybox-static, the static {name} workload"
                         + (" and its kernel modules" if name in ("http", "fileio") else ""),
                         workload=name),
                Artifact("workload", total, f"the {what} + the {name} initramfs{extra}",
                         workload=name),
            ]
        return out + [
            Artifact("disk_image", apparent, "apparent size of the raw ext4 image attached for "
                     "I/O", workload="fileio"),
            Artifact("disk_image_allocated", allocated, "blocks allocated (st_blocks) by the "
                     "sparse raw ext4 image after mke2fs", workload="fileio"),
        ]

    def _root_disk_artifacts(self, kernel_bytes: int, what: str) -> list[Artifact]:
        """A root-disk userland's boot: its initramfs, its root disk, their sum per
        workload."""
        initrd = self.root_initramfs().stat().st_size
        root = self.root_disk()
        apparent, allocated = root.stat().st_size, root.stat().st_blocks * 512
        label = (build_fullos_rootfs() if self.full_os else build_rootfs()).label
        disk = (f"the raw ext4 root disk (mkfs.ext4 -d) of {label} with the static workloads "
                "under /vb/wl" + (" and the systemd unit that runs them" if self.full_os
                                  else ""))
        target = "systemd (/sbin/init)" if self.full_os else "it"
        out = [
            Artifact("initramfs", initrd, "gzip cpio: busybox-static, the virtio and ext4 "
                     f"modules and an init that mounts the root disk and switch_roots to "
                     f"{target}", workload="noop"),
            Artifact("disk_image", apparent, f"apparent size of {disk}", workload="noop"),
            Artifact("disk_image_allocated", allocated, f"blocks allocated (st_blocks) by {disk}",
                     workload="noop"),
        ]
        return out + [Artifact("workload", kernel_bytes + initrd + allocated,
                               f"the {what} + the root-disk initramfs + the allocated blocks of "
                               f"{disk} (one disk holds every workload, {name} among them)",
                               workload=name) for name in ("noop", "cpu", "http")]
