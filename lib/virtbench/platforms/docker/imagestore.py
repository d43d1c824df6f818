"""The images of the docker variants: which image runs a workload (``FROM scratch`` with the
static workload, a user's program or ``docker save`` archive, the Debian userland), making
sure the engine has it (build, load or import), its saved archive in the cache, and the bytes
each keeps on disk. Mixed into :class:`virtbench.platforms.docker.platform.DockerPlatform`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from virtbench import distro
from virtbench.paths import cache_dir
from virtbench.platforms.base import (
    Artifact,
    NotSupported,
    Portable,
    Workload,
)
from virtbench.platforms.docker.images import (
    WORKDIR_IN_CONTAINER,
    ImageSpec,
    ImportSpec,
    UserImage,
    busybox_spec,
    is_static_executable,
    loaded_refs,
    read_saved_image,
    with_libraries,
)
from virtbench.platforms.docker.objects import LABEL
from virtbench.workloads import build

DISTRO_WORKLOAD_DIR = "/vb"


def distro_image_spec() -> ImportSpec:
    """The debian userland's image: the cached Debian root file system (built on first use,
    :func:`virtbench.distro.build_rootfs`) plus the static workloads under /vb."""
    files = {f"{DISTRO_WORKLOAD_DIR}/{name}": build(name, "static")
             for name in distro.USERLAND_WORKLOADS}
    return ImportSpec("debian", distro.build_rootfs(), files,
                      (WORKDIR_IN_CONTAINER, DISTRO_WORKLOAD_DIR))


class ImageStore:
    """Images of a docker variant (needs ``api``, ``engine``, ``userland`` and ``argv``)."""

    def image_spec(self, workload: Workload) -> ImageSpec | ImportSpec | UserImage:
        """FROM scratch with the static workload at /<name> (or a user's static program, or
        the user's own image archive); on the debian userland, the Debian root file system
        with every built-in static workload under /vb (one image for all of them)."""
        if self.userland == "debian":
            if not workload.builtin:
                raise NotSupported("the debian userland runs the built-in workloads only")
            return distro_image_spec()
        if workload.builtin:
            return ImageSpec(f"runc-{workload.name}",
                             {f"/{workload.name}": build(workload.name, "static")})
        if workload.user.image is not None:
            return read_saved_image(workload.user.image, workload.name)
        if not workload.command:
            raise NotSupported(f"{self.variant} runs native programs; {workload.name!r} has none")
        exe = workload.user.program
        name = Path(workload.command[0]).name  # the invoked name (a symlink's, not its target's)
        if is_static_executable(exe):
            return ImageSpec(f"runc-user-{name}", {f"/app/{name}": exe})
        libraries = with_libraries(exe)  # FROM scratch: the program and what ldd names
        if not libraries:
            raise NotSupported(f"{exe} is neither a static executable nor one whose shared "
                               "libraries ldd can name; images here are FROM scratch")
        return ImageSpec(f"runc-user-{name}", {f"/app/{name}": exe, **libraries})

    def image(self, workload: Workload) -> tuple[str, ImageSpec]:
        """The image of ``workload``, built or loaded if the engine lacks it; tag and spec."""
        spec = self.image_spec(workload)
        return self.ensure_image(spec), spec

    def ensure_image(self, spec: ImageSpec) -> str:
        """Make sure image ``spec.tag`` is in the engine: load its saved archive or build it.

        Checked on every use (an inspect, outside any timed interval): another virtbench
        process sharing the engine may have removed it.
        """
        from docker.errors import ImageNotFound

        if isinstance(spec, UserImage):
            return self._ensure_user_image(spec)
        tag = spec.tag
        try:
            self.api.inspect_image(tag)
        except ImageNotFound:
            archive = self.archive_path(tag)
            if archive.exists():
                self._load(archive)
            elif isinstance(spec, ImportSpec):
                self._import(spec)
            else:
                self._client.images.build(fileobj=spec.context(), custom_context=True, tag=tag,
                                          rm=True, forcerm=True, labels={LABEL: "1"},
                                          timeout=600)
        return tag

    def _ensure_user_image(self, spec: UserImage) -> str:
        """The image ID of a user's archive, loaded unless the engine has it: recorded as
        the suite's (removed with its images) only when the suite loads it."""
        from docker.errors import ImageNotFound

        try:
            return self.api.inspect_image(spec.image_id)["Id"]
        except ImageNotFound:
            pass
        for tag in spec.repo_tags:  # a load moves a tag: never take one from a user's image
            try:
                other = self.api.inspect_image(tag)["Id"]
            except ImageNotFound:
                continue
            raise NotSupported(f"the engine's tag {tag} names another image ({other[:19]}); "
                               f"loading {spec.archive} would move it to the archive's image: "
                               "remove or rename that tag first")
        self.engine.record_loaded(spec.image_id)
        refs = self._load(spec.archive)
        if not refs:
            raise RuntimeError(f"docker load {spec.archive}: the engine named no loaded image")
        image_id = self.api.inspect_image(refs[0])["Id"]
        if image_id != spec.image_id:  # an engine whose IDs are not the config's digest
            self.engine.record_loaded(image_id)
        return image_id

    def user_image_owned(self, tag: str) -> bool:
        """Whether image ``tag`` of a user's archive was loaded by the suite (the suite may
        remove it); False for an image that was in the engine already (the user's)."""
        return self.engine.loaded_by_suite(tag)

    def _import(self, spec: ImportSpec) -> None:
        """``docker import`` of the spec's tree (written to a temporary tar in the cache)."""
        repository, _, tag = spec.tag.partition(":")
        where = cache_dir() / "docker"
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="vb-import-", dir=where) as tmp:
            tarball = spec.tarball(Path(tmp) / "rootfs.tar")
            self.api.import_image(src=str(tarball), repository=repository, tag=tag,
                                  changes=spec.changes)
        self.api.inspect_image(spec.tag)  # raises if the import did not produce the tag

    def portable_artifact(self, workload: Workload) -> Portable:
        tag, _ = self.image(workload)
        return Portable("image", self.save_archive(tag), tuple(self.argv(workload, [])),
                        what=f"the image {tag} (docker save)")

    def archive_path(self, tag: str) -> Path:
        return cache_dir() / "docker" / "archives" / (tag.replace("/", "_").replace(":", "_")
                                                      + ".tar")

    def save_archive(self, tag: str) -> Path:
        """``docker save`` of ``tag`` into the cache (once)."""
        path = self.archive_path(tag)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            part = path.with_suffix(".part")
            with open(part, "wb") as fh:
                for chunk in self.api.get_image(tag):
                    fh.write(chunk)
            os.replace(part, path)
        return path

    def _load(self, archive: Path) -> list[str]:
        """``docker load`` of ``archive``; the image references the engine says it loaded."""
        with open(archive, "rb") as fh:
            messages = list(self.api.load_image(fh, quiet=True))
        for msg in messages:
            if isinstance(msg, dict) and msg.get("error"):
                raise RuntimeError(f"docker load {archive}: {msg['error']}")
        return loaded_refs(messages)

    def prepare(self, workloads: Sequence[Workload]) -> None:
        for w in workloads:
            self.image(w)

    @staticmethod
    def _content_of(spec: ImageSpec | ImportSpec) -> str:
        files = ", ".join(sorted(spec.files))
        if isinstance(spec, ImportSpec):
            return (f"the regular files of {spec.rootfs.label}, each hard-linked file once, "
                    f"and {files}")
        return files

    def user_artifacts(self, workload: Workload) -> list[Artifact]:
        """A user's image: its size as the engine reports it and its archive's bytes."""
        tag, spec = self.image(workload)
        if not isinstance(spec, UserImage):
            return super().user_artifacts(workload)
        size = int(self.api.inspect_image(tag)["Size"])
        return [
            Artifact("workload", size, f"size of the user's image {tag[:19]} "
                     f"({spec.archive.name}) as the engine reports it (image inspect .Size: "
                     "uncompressed layers)"),
            Artifact("image_archive", spec.archive_size,
                     f"size of the user's `docker save` archive {spec.archive.name}"),
        ]

    def disk_workloads(self) -> tuple[str, ...]:
        return ("noop", "cpu", "http")

    def artifacts(self) -> list[Artifact]:
        """Each image as the engine reports it, the bytes put into it, and its saved archive."""
        out = []
        specs = [(name, self.image_spec(Workload(name))) for name in self.disk_workloads()]
        if self.image_kind == "runc" and self.userland == "minimal":
            try:
                specs.append(("busybox", busybox_spec()))
            except NotSupported:
                pass
        for name, spec in specs:
            tag = self.ensure_image(spec)
            size = int(self.api.inspect_image(tag)["Size"])
            archive = self.save_archive(tag)
            out += [
                Artifact("workload", size, f"size of image {tag} as the engine reports it "
                         "(image inspect .Size: uncompressed layers)", workload=name),
                Artifact("image_content", spec.content_size, f"bytes of the files put into "
                         f"image {tag} ({self._content_of(spec)})", workload=name),
                Artifact("image_archive", archive.stat().st_size,
                         f"size of the `docker save` tarball of {tag}", workload=name),
            ]
        return out
