"""The start sequences of a docker variant, timed around Docker SDK calls: a run from an
existing image with its create, start and removal split, a warm restart, and a cold start
from the saved archive. Mixed into
:class:`virtbench.platforms.docker.platform.DockerPlatform`."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from virtbench.platforms.base import (
    Peak,
    Timing,
    Workload,
)
from virtbench.platforms.docker.images import (
    UserImage,
)
from virtbench.platforms.docker.objects import labels
from virtbench.spec import WorkloadSpec


@dataclass
class Timed:
    """perf_counter_ns stamps around the SDK calls of one container run."""

    create: int = 0
    created: int = 0
    started: int = 0
    exited: int = 0
    remove: int = 0
    removed: int = 0
    status: int = -1
    stdout: str = ""
    stderr: str = ""
    peaks: tuple[Peak, ...] = ()


class StartSequences:
    """Timed starts of a docker variant (needs ``api``, ``networks``, ``run_timed``...)."""

    def timed_starts(self, workload: Workload) -> list[Timing]:
        """Existing-image, warm and cold starts, and the create/start/remove split, per network.

        Every interval carries its network as the condition ``network``.
        """
        tag, spec = self.image(workload)
        argv = self.argv(workload, [])
        user = workload.user
        out: list[Timing] = []
        for net in self.networks:
            out += self._startup_existing(tag, argv, net, user)
        for net in self.networks:
            out += self._startup_warm(tag, argv, net, user)
        if isinstance(spec, UserImage) and not self.user_image_owned(tag):
            why = (f"not measured: image {tag[:19]} of {spec.archive.name} was in the engine "
                   "before the suite loaded it (the user's own), and a cold start removes it")
            return out + self._no_cold_start(why)
        others = self.engine.other_users()
        if others:
            why = (f"not measured: another virtbench process (pid {', '.join(map(str, others))})"
                   " uses this engine, and a cold start removes the image it may be running; "
                   "measure it alone with --remeasure")
            return out + self._no_cold_start(why)
        archive = spec.archive if isinstance(spec, UserImage) else self.save_archive(tag)
        for net in self.networks:
            out += self._startup_cold(tag, archive, argv, net, user)
        return out

    def _no_cold_start(self, why: str) -> list[Timing]:
        """The cold-start and load readings of every network, not measured for ``why``."""
        return [Timing(kind, None, "", conditions={"network": net}, tags={"network": net},
                       reason=why) for net in self.networks for kind in ("cold", "load")]

    def _timing(self, kind: str, net: str, ns: int, interval: str, **tags: str) -> Timing:
        return Timing(kind, ns, f"{interval}; network {net}", conditions={"network": net},
                      tags={"network": net, **tags})

    def _check_status(self, t: Timed, what: str, user: WorkloadSpec | None = None) -> None:
        """RuntimeError unless the container exited 0 (a user's workload: an accepted code
        and its success pattern)."""
        if user is not None:
            user.check_outcome(t.status, t.stdout, f"{what}: container", t.stderr)
        elif t.status != 0:
            raise RuntimeError(f"{what}: container exited {t.status}: "
                               f"{(t.stderr or t.stdout).strip()[-600:]}")

    def _startup_existing(self, tag: str, argv: list[str], net: str,
                          user: WorkloadSpec | None = None) -> list[Timing]:
        t = self.run_timed(tag, argv, net, user=user)
        self._check_status(t, "existing-image start", user)
        return [
            self._timing("launch", net, t.exited - t.create,
                     "image present: from the SDK call APIClient.create_container to "
                     "APIClient.wait returning the exit status (create, start, run, exit)"),
            self._timing("create", net, t.created - t.create,
                     "APIClient.create_container, from the call to its return"),
            self._timing("start", net, t.started - t.created,
                     "APIClient.start of the created container, from the call to its return "
                     "(runc has started the container's process)"),
            self._timing("remove", net, t.removed - t.remove,
                     "APIClient.remove_container of the exited container, from the call to "
                     "its return (teardown, not part of startup)"),
        ]

    def _startup_warm(self, tag: str, argv: list[str], net: str,
                      user: WorkloadSpec | None = None) -> list[Timing]:
        api = self.api
        limit = user.time_limit_s if user else 60
        if user is not None and user.stdin is not None:
            return [Timing("warm", None, "", reason="not supported: a restarted container "
                           "gets no new standard input to read", tags={"network": net},
                           conditions={"network": net})]
        with self.user_mounts(user) as (binds, env):
            cid = api.create_container(tag, argv, labels=labels(), environment=env or None,
                                       host_config=self.host_config(net, binds=binds or None)
                                       )["Id"]
            try:
                api.start(cid)
                self._wait(cid, limit)
                t0 = time.perf_counter_ns()
                api.start(cid)
                status = self._wait(cid, limit)
                t1 = time.perf_counter_ns()
                logs = api.logs(cid, stdout=True, stderr=False).decode(errors="replace")
            finally:
                self.remove(cid)
        self._check_status(Timed(status=status, stdout=logs), "warm start", user)
        return [self._timing("warm", net, t1 - t0,
                         "warm: restart of a stopped container (created, run and exited once "
                         "before): from the SDK call APIClient.start to APIClient.wait "
                         "returning the exit status")]

    def _startup_cold(self, tag: str, archive: Path, argv: list[str],
                      net: str, user: WorkloadSpec | None = None) -> list[Timing]:
        api = self.api
        api.remove_image(tag, force=tag.startswith("sha256:"))  # a user's image: every tag
        dropped = self._drop_caches()
        t0 = time.perf_counter_ns()
        self._load(archive)
        t1 = time.perf_counter_ns()
        t = self.run_timed(tag, argv, net, user=user)
        self._check_status(t, "cold start", user)
        size = archive.stat().st_size
        where = ("page cache dropped before the load (sync; drop_caches=3)" if dropped else
                 "page cache not dropped: the tarball and the engine's files may be in memory")
        source = ("the user's image archive" if user is not None and user.image is not None
                  else "the cache")
        return [
            self._timing("cold", net, t.exited - t0,
                     f"cold: image absent from the engine; from the SDK call APIClient."
                     f"load_image (streaming the {size} B saved image tarball from {source}) "
                     f"to APIClient.wait returning the exit status (load, create, start, run, "
                     f"exit); {where}", page_cache_dropped=str(dropped).lower()),
            self._timing("load", net, t1 - t0,
                     f"APIClient.load_image of the {size} B saved image tarball, from the call "
                     f"to the end of the engine's response; {where}",
                     page_cache_dropped=str(dropped).lower()),
        ]

    def _drop_caches(self) -> bool:
        if not self.drop_caches:
            return False
        try:
            os.sync()
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
            return True
        except OSError:
            return False
