"""The OCI runtimes an engine offers besides runc, and registering one. Mixed into
:class:`virtbench.platforms.docker.engine.DockerEngine`.

A private dockerd reads ``<cache>/docker/daemon.json``, which registers the extra runtimes
installed on the host (:data:`RUNTIMES`: gVisor's ``runsc``, ``crun``); a private daemon
already running reloads that file on SIGHUP when a runtime is missing from it
(:meth:`EngineRuntimes.ensure_runtime`). An engine the suite did not start is never
reconfigured.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

from virtbench.platforms.docker.daemonsetup import (
    RUNTIMES,
    EngineError,
    runtime_config,
    search_path,
)
from virtbench.platforms.docker.procfs import cmdline, read_value

RELOAD_TIMEOUT_S = 10.0


class EngineRuntimes:
    """The engine's runtimes (needs ``root``, ``client``, ``private``, ``dockerd_pid``,
    ``notes``, ``_origin``, ``config_file`` and ``logfile``)."""

    def write_config(self) -> None:
        """Write the private daemon's ``daemon.json``: the installed :data:`RUNTIMES`."""
        self.root.mkdir(parents=True, exist_ok=True)
        text = json.dumps(runtime_config(search_path()), indent=2, sort_keys=True) + "\n"
        if read_value(str(self.config_file)) == text.strip():
            return
        tmp = self.config_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, self.config_file)

    def runtimes(self) -> dict[str, str]:
        """The engine's OCI runtimes: name -> its command line (``docker info`` .Runtimes)."""
        found = self.client.info().get("Runtimes") or {}
        return {name: " ".join([str((conf or {}).get("path", "")),
                                *((conf or {}).get("runtimeArgs") or [])])
                for name, conf in found.items()}

    def ensure_runtime(self, name: str) -> str:
        """Make sure the engine offers OCI runtime ``name``; return how it is registered.

        A private daemon started with the suite's ``daemon.json`` reloads it (SIGHUP) when
        the runtime was installed after it started; other engines are never reconfigured.
        Raises EngineError saying why the runtime is not there and what to do.
        """
        if name not in RUNTIMES:
            raise ValueError(f"unknown runtime {name!r}; valid: {', '.join(RUNTIMES)}")
        exe, args, package = RUNTIMES[name]
        path = shutil.which(exe, path=search_path())
        if path is None:
            raise EngineError(f"{exe} not found (Debian package {package})",
                              f"apt-get install {package}")
        have = self.runtimes()
        if name in have:
            return f"runtime {name} ({have[name]})"
        if not self.private:
            raise EngineError(f"the engine in use ({self._origin}) has no runtime {name!r} "
                              "and virtbench does not reconfigure a daemon it did not start",
                              "register it (e.g. `runsc install` or a \"runtimes\" entry in "
                              "the daemon's daemon.json, then reload it), or unset "
                              "DOCKER_HOST and stop that daemon so the suite starts its own")
        pid = self.dockerd_pid
        if pid is None or f"--config-file {self.config_file}" not in cmdline(pid):
            raise EngineError(f"the running private dockerd (pid {pid}) was started without "
                              f"{self.config_file}, so it cannot gain runtime {name!r}",
                              "rerun when no other virtbench run uses the engine (its last "
                              "user stops it; the next start registers the runtimes)")
        self.write_config()
        os.kill(pid, signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while time.monotonic() < deadline:
            have = self.runtimes()
            if name in have:
                self.notes.append(f"runtime {name} added to the running dockerd (SIGHUP)")
                return f"runtime {name} ({have[name]})"
            time.sleep(0.1)
        raise EngineError(f"dockerd (pid {pid}) did not register runtime {name!r} after "
                          f"reloading {self.config_file}", f"see {self.logfile}")
