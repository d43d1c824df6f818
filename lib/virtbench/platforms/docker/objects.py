"""The objects the suite makes in a Docker engine, and their removal: every container, image
and network carries the label ``virtbench=1`` (containers also ``virtbench.pid=<owner pid>``);
images loaded from a user's ``docker save`` archive are recorded by id in a folder instead.

A user's own ``docker save`` archive keeps its own configuration (no label can be added): the
image IDs the suite loads from such archives are recorded under ``<root>/loaded-images/``
before the load, and removed with the suite's images; an image that was in the engine before
(the user's) is never recorded. :class:`SuiteObjects` is mixed into
:class:`virtbench.platforms.docker.engine.DockerEngine`.
"""

from __future__ import annotations

import os
from pathlib import Path

from virtbench.platforms.docker.procfs import pid_alive

LABEL = "virtbench"
OWNER_LABEL = "virtbench.pid"


def labels(**extra: str) -> dict[str, str]:
    """Labels for a container the suite creates: ``virtbench=1`` and the owning process."""
    return {LABEL: "1", OWNER_LABEL: str(os.getpid()), **extra}


def remove_labelled(api, loaded_dir: Path, *, only_dead_owners: bool,
                    images: bool = True) -> list[str]:
    """Remove containers (and with ``images`` networks and images) labelled ``virtbench``.

    With ``only_dead_owners`` the containers of other live virtbench processes stay;
    images still used by a container stay in any case; the images recorded in ``loaded_dir``
    go with the suite's. Returns what was removed.
    """
    from docker.errors import APIError, NotFound

    removed: list[str] = []
    for c in api.containers(all=True, filters={"label": LABEL}):
        owner = c.get("Labels", {}).get(OWNER_LABEL, "")
        mine = owner == str(os.getpid())
        if only_dead_owners and owner.isdigit() and pid_alive(int(owner)) and not mine:
            continue
        try:
            api.remove_container(c["Id"], force=True, v=True)
            removed.append(f"container {c['Id'][:12]}")
        except NotFound:
            pass
    if not images:
        return removed
    for n in api.networks(filters={"label": LABEL}):
        try:
            api.remove_network(n["Id"])
            removed.append(f"network {n['Name']}")
        except (NotFound, APIError):
            pass
    for img in api.images(filters={"label": LABEL}):
        for ref in (img.get("RepoTags") or []) + [img["Id"]]:
            if ref == "<none>:<none>":
                continue
            try:
                api.remove_image(ref, force=False)
                removed.append(f"image {ref}")
            except NotFound:
                break
            except APIError:
                pass  # in use by a live container, or still tagged elsewhere
    return removed + remove_loaded(api, loaded_dir)


def remove_loaded(api, loaded_dir: Path) -> list[str]:
    """Remove the images the suite loaded from users' archives, recorded in ``loaded_dir`` (tags,
    then the image)."""
    from docker.errors import APIError, NotFound

    removed = []
    for record in sorted(loaded_dir.glob("*")) if loaded_dir.is_dir() else []:
        image_id = f"sha256:{record.name}"
        try:
            refs = api.inspect_image(image_id).get("RepoTags") or []
            for ref in refs:
                api.remove_image(ref, force=False, noprune=False)
            if not refs:
                api.remove_image(image_id, force=False)
            removed.append(f"image {', '.join(refs) or image_id[:19]} (loaded from a "
                           "user's archive)")
        except NotFound:
            pass
        except APIError:
            continue  # in use by a live container: kept, and so is its record
        record.unlink(missing_ok=True)
    return removed


class SuiteObjects:
    """The suite's objects in one engine (needs ``root`` and ``client``)."""

    @property
    def loaded_dir(self) -> Path:
        return self.root / "loaded-images"

    def record_loaded(self, image_id: str) -> None:
        """Note that the suite loads image ``image_id`` (``sha256:...``) from a user's
        archive, so that it is removed like the suite's own images."""
        self.loaded_dir.mkdir(parents=True, exist_ok=True)
        (self.loaded_dir / image_id.removeprefix("sha256:")).touch()

    def loaded_by_suite(self, image_id: str) -> bool:
        """Whether the suite loaded ``image_id`` (rather than finding it in the engine)."""
        return (self.loaded_dir / image_id.removeprefix("sha256:")).exists()

    def remove_labelled(self, *, only_dead_owners: bool, images: bool = True) -> list[str]:
        """Remove the suite's objects from the engine (:func:`remove_labelled`)."""
        return remove_labelled(self.client.api, self.loaded_dir,
                               only_dead_owners=only_dead_owners, images=images)
