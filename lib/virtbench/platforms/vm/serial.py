"""The serial console of a running QEMU as a timestamped byte log.

QEMU emits the guest's serial output a few characters at a time, so a guest's line often
arrives in several reads. :class:`ConsoleLog` reads QEMU's stdout (serial console and QEMU's
own messages) in a background thread, keeps every byte, and notes when each chunk arrived;
``wait_for(marker)`` returns the arrival time of the chunk that completed the marker. Nothing
is lost or split, however the bytes were chunked.
"""

from __future__ import annotations

import os
import threading
import time

from virtbench.process import Instance, ProcessTimeout


class ConsoleLog:
    """Everything a process writes to its (piped) stdout, with arrival times."""

    def __init__(self, inst: Instance) -> None:
        self.inst = inst
        self._fd = os.dup(inst.proc.stdout.fileno())
        os.set_blocking(self._fd, True)
        self._data = bytearray()
        self._times: list[tuple[int, int]] = []   # (end offset of a chunk, perf_counter_ns)
        self._eof = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, daemon=True,
                                        name=f"console-{inst.pid}")
        self._thread.start()

    def _pump(self) -> None:
        try:
            while True:
                try:
                    chunk = os.read(self._fd, 65536)
                except OSError:
                    chunk = b""
                now = time.perf_counter_ns()
                with self._cond:
                    if not chunk:
                        self._eof = True
                        self._cond.notify_all()
                        return
                    self._data += chunk
                    self._times.append((len(self._data), now))
                    self._cond.notify_all()
        finally:
            os.close(self._fd)

    def _arrival(self, end: int) -> int:
        """Arrival time of the chunk holding byte offset ``end - 1``."""
        for offset, ns in self._times:
            if offset >= end:
                return ns
        return self._times[-1][1]

    def wait_for(self, marker: str, timeout: float, start: int = 0) -> int:
        """perf_counter_ns when ``marker`` had fully arrived (searching from byte ``start``).

        Raises ProcessTimeout if it does not come within ``timeout`` seconds and RuntimeError
        if the output ends (QEMU exited) without it.
        """
        needle = marker.encode()
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                at = self._data.find(needle, start)
                if at >= 0:
                    return self._arrival(at + len(needle))
                if self._eof:
                    self.inst.proc.poll()
                    raise RuntimeError(f"QEMU exited ({self.inst.proc.returncode}) before "
                                       f"{marker!r}; console tail: {self.tail()!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProcessTimeout(f"no {marker!r} within {timeout:g} s; console tail: "
                                         f"{self.tail()!r}")
                self._cond.wait(min(left, 0.5))

    def wait_line(self, marker: str, timeout: float, start: int = 0) -> str:
        """The whole line that starts at ``marker`` (searching from byte ``start``), once its
        line end has arrived; raises as :meth:`wait_for` does."""
        deadline = time.monotonic() + timeout
        self.wait_for(marker, timeout, start)
        with self._cond:
            at = self._data.find(marker.encode(), start)
        self.wait_for("\n", max(0.0, deadline - time.monotonic()), at)
        with self._cond:
            line = self._data[at:self._data.find(b"\n", at)]
        return line.decode(errors="replace").rstrip("\r")

    def offset(self) -> int:
        """Bytes received so far (a ``start`` for later waits)."""
        with self._cond:
            return len(self._data)

    @property
    def text(self) -> str:
        with self._cond:
            return self._data.decode(errors="replace")

    def tail(self, lines: int = 8) -> str:
        with self._cond:
            text = self._data[-4000:].decode(errors="replace")
        return "\n".join(text.replace("\r", "").splitlines()[-lines:])

    def close(self, timeout: float = 5.0) -> None:
        """Wait for the reader to reach the end of the output (after QEMU has exited)."""
        self._thread.join(timeout)
