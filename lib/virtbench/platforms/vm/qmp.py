"""A small QMP client: JSON commands over QEMU's unix socket (``-qmp unix:PATH,server=on``)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any


class QmpError(RuntimeError):
    """QEMU answered a command with an error, or the connection failed."""


class Qmp:
    """One QMP session: connect, negotiate capabilities, execute commands, skip events."""

    def __init__(self, path: Path | str, timeout: float = 10.0) -> None:
        self.path = str(path)
        self.timeout = timeout
        self.events: list[dict] = []
        self._sock: socket.socket | None = None
        self._buf = b""

    def connect(self, wait: float = 10.0) -> Qmp:
        """Connect (retrying until QEMU has created the socket) and leave capability mode."""
        deadline = time.monotonic() + wait
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
                break
            except (FileNotFoundError, ConnectionRefusedError) as exc:
                sock.close()
                if time.monotonic() > deadline:
                    raise QmpError(f"QMP socket {self.path} not reachable within {wait:g} s: "
                                   f"{exc}") from exc
                time.sleep(0.002)
        self._sock = sock
        greeting = self._read()
        if "QMP" not in greeting:
            raise QmpError(f"unexpected QMP greeting: {greeting}")
        self.execute("qmp_capabilities")
        return self

    def _read(self) -> dict:
        assert self._sock is not None
        while b"\n" not in self._buf:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError as exc:
                raise QmpError(f"no QMP reply within {self.timeout:g} s") from exc
            if not chunk:
                raise QmpError("QEMU closed the QMP connection")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return json.loads(line)

    def execute(self, command: str, arguments: dict | None = None) -> Any:
        """Run one command and return its ``return`` value; raise QmpError on ``error``."""
        if self._sock is None:
            raise QmpError("not connected")
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self._sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                err = reply["error"]
                raise QmpError(f"{command}: {err.get('class')}: {err.get('desc')}")
            return reply.get("return")

    def status(self) -> str:
        """The VM's run state (``running``, ``paused``, ``inmigrate``, ...)."""
        return self.execute("query-status")["status"]

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Qmp:
        return self if self._sock is not None else self.connect()

    def __exit__(self, *exc) -> None:
        self.close()
