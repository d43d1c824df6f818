"""Packets of an instance seen from the host: a capture with ``tcpdump`` on one interface, or
a pcap file another program wrote (QEMU's ``filter-dump`` of a guest's NIC), read into the
TCP packets they hold.

Only what the network-tracing probe needs: IPv4 TCP in Ethernet frames (Linux's loopback,
a bridge, a guest NIC), the classic pcap file format in either byte order.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from virtbench.platforms.base import NotSupported
from virtbench.process import child_env, die_with_parent, interrupt

ETHERNET = 1  # the pcap link type of Ethernet frames (DLT_EN10MB)
READY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class TcpPacket:
    """One IPv4 TCP packet: its addresses and ports, and its payload length."""

    src: str
    dst: str
    sport: int
    dport: int
    payload: int


@dataclass
class Capture:
    """Where the packets were captured, and (once the capture ended) the TCP packets to the
    port asked for."""

    where: str
    port: int
    packets: list[TcpPacket] = field(default_factory=list)

    def sources(self) -> list[str]:
        return sorted({p.src for p in self.packets})


def read_pcap(data: bytes) -> list[TcpPacket]:
    """The IPv4 TCP packets of a classic pcap file of Ethernet frames (a truncated last
    record is ignored); ValueError when it is not such a file."""
    if len(data) < 24:
        raise ValueError("not a pcap file: shorter than its 24-byte header")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        order = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        order = ">"
    else:
        raise ValueError(f"not a pcap file: magic {magic.hex()}")
    linktype = struct.unpack(order + "I", data[20:24])[0] & 0x0FFFFFFF
    if linktype != ETHERNET:
        raise ValueError(f"pcap link type {linktype}: only Ethernet frames (1) are read")
    out, pos = [], 24
    while pos + 16 <= len(data):
        caplen = struct.unpack(order + "I", data[pos + 8:pos + 12])[0]
        frame = data[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        if len(frame) < caplen:
            break
        packet = _tcp_of(frame)
        if packet is not None:
            out.append(packet)
    return out


def _tcp_of(frame: bytes) -> TcpPacket | None:
    if len(frame) < 14 + 20 or frame[12:14] != b"\x08\x00":  # IPv4 only
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ip[9] != 6 or len(ip) < ihl + 20:  # TCP only
        return None
    total = struct.unpack(">H", ip[2:4])[0]
    tcp = ip[ihl:]
    sport, dport = struct.unpack(">HH", tcp[:4])
    offset = (tcp[12] >> 4) * 4
    return TcpPacket(".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20])), sport,
                     dport, max(total - ihl - offset, 0))


@contextmanager
def tcpdump(interface: str, port: int, where: str, extra: str = "") -> Iterator[Capture]:
    """Capture, while the block lasts, the TCP packets to ``port`` on ``interface`` (plus the
    BPF expression ``extra``); the Capture's packets are filled when the block ends."""
    exe = shutil.which("tcpdump")
    if exe is None:
        raise NotSupported("tcpdump is not installed (Debian package tcpdump; run `make "
                           "setup`)")
    capture = Capture(where, port)
    expression = f"tcp and dst port {port}" + (f" and ({extra})" if extra else "")
    with tempfile.TemporaryDirectory(prefix="vb-capture-") as tmp:
        path = Path(tmp) / "capture.pcap"
        # -Z root: tcpdump would drop to its own user, which cannot write in this folder
        proc = subprocess.Popen([exe, "-i", interface, "-n", "-U", "--immediate-mode", "-s", "256",
                                 "-Z", "root",
                                 "-w", str(path), expression], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=child_env(),
                                preexec_fn=die_with_parent())
        try:
            _wait_listening(proc, interface)
            yield capture
            time.sleep(0.2)  # the last packets through the kernel's buffer
        finally:
            interrupt(proc)
        if path.exists():
            capture.packets = [p for p in read_pcap(path.read_bytes()) if p.dport == port]


def _wait_listening(proc: subprocess.Popen, interface: str) -> None:
    """Until tcpdump says it listens (it then captures); RuntimeError if it ends first."""
    assert proc.stderr is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    seen = ""
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        seen += line
        if "listening on" in line:
            return
        if not line and proc.poll() is not None:
            break
    raise RuntimeError(f"tcpdump on {interface} did not start: {seen.strip()[-300:]}")
