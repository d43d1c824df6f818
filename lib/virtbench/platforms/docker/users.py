"""Who uses the engine: this process (reference counted) and every other virtbench process,
registered under ``<cache>/docker/users/<pid>``. Mixed into
:class:`virtbench.platforms.docker.engine.DockerEngine`.

The first acquisition in a process removes the containers of dead virtbench processes; a
process removes its own containers when it releases the engine, and the last live user also
removes the suite's images and networks and stops a private daemon (also one left running
by a crashed run). Engines still held when the interpreter exits are released then.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

from virtbench.platforms.docker.daemonsetup import EngineError
from virtbench.platforms.docker.procfs import pid_alive

#: Engines acquired in this process and not yet shut down.
ACTIVE: list[EngineUsers] = []


class EngineUsers:
    """Acquire and release the engine (needs ``root``, ``client``, ``private``, ``leftovers``,
    ``_users``, ``_lock``, ``_facts``, ``_connect``, ``remove_labelled``, ``daemon_problem``
    and ``stop_daemon``)."""

    @property
    def users_dir(self) -> Path:
        return self.root / "users"

    def acquire(self, *, remove_leftovers: bool = True):
        """A connected ``docker.DockerClient``; starts a private daemon if none answers.

        The first acquisition in this process removes the containers of dead virtbench
        processes (``remove_leftovers``).
        """
        with self._lock:
            if self.client is None:
                self._register()
                try:
                    self._connect()
                except BaseException:
                    self._unregister()
                    raise
                ACTIVE.append(self)
                if remove_leftovers:
                    alone = not self.other_users()
                    self.leftovers = self.remove_labelled(only_dead_owners=True, images=alone)
            self._users += 1
            return self.client

    def release(self) -> None:
        """Drop one user; the last one in this process calls :meth:`shutdown`."""
        with self._lock:
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0:
                self.shutdown()

    def shutdown(self) -> None:
        """Remove this process's containers; the last live user also removes the suite's
        images and networks and stops a private daemon (also when removing failed, or the
        daemon died: then its containers are killed with it). A failure is one EngineError
        line, raised once all of this is done."""
        self._users = 0
        others = self._unregister()
        dead = self.daemon_problem()
        problem = ""
        if self.client is not None:
            try:
                if not dead:
                    self.remove_labelled(only_dead_owners=True, images=not others)
            except Exception as exc:
                problem = f"removing the suite's containers failed: {_one_line(exc)}"
            finally:
                self.client.close()
                self.client = None
        if self.private and (not others or dead):
            self.stop_daemon()
        self.private = False
        self._facts = None
        if self in ACTIVE:
            ACTIVE.remove(self)
        if problem:
            raise EngineError(problem)

    # ---- the registry of processes -------------------------------------------------------
    def _register(self) -> None:
        self.users_dir.mkdir(parents=True, exist_ok=True)
        (self.users_dir / str(os.getpid())).touch()

    def other_users(self) -> list[int]:
        """The other live virtbench processes using this engine (files of dead ones pruned)."""
        others = []
        if self.users_dir.is_dir():
            for entry in self.users_dir.iterdir():
                pid = int(entry.name) if entry.name.isdigit() else -1
                if pid == os.getpid():
                    continue
                if pid < 0 or not pid_alive(pid):
                    entry.unlink(missing_ok=True)
                else:
                    others.append(pid)
        return sorted(others)

    def _unregister(self) -> list[int]:
        """Remove this process from the users; return the other live users."""
        (self.users_dir / str(os.getpid())).unlink(missing_ok=True)
        return self.other_users()


def _one_line(exc: BaseException) -> str:
    text = " ".join(f"{type(exc).__name__}: {exc}".split())
    return text[:300] + (" ..." if len(text) > 300 else "")


@atexit.register
def _release_active() -> None:
    """Safety net: release engines still held when the interpreter exits."""
    for engine in list(ACTIVE):
        try:
            engine.shutdown()
        except Exception:
            if engine.private and not engine._unregister():
                engine.stop_daemon()
