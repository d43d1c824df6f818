"""Parse the workloads' machine-readable lines: ``VB-RESULT workload=cpu key=value ...``.

The text may be a program's whole stdout or a VM's serial console: other lines, kernel
messages, ``\\r\\n`` line ends and bare ``\\r`` are all tolerated.
"""

from __future__ import annotations

import re

_LINE_SPLIT = re.compile(r"[\r\n]+")
# Control characters (other than tab) a serial console may add, e.g. NUL padding.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

_TAIL_LINES = 12
_TAIL_CHARS = 1000


def _clean(line: str) -> str:
    return _CONTROL.sub("", _ANSI.sub("", line)).strip()


def _tail(text: str) -> str:
    lines = [_clean(line) for line in _LINE_SPLIT.split(text)]
    tail = "\n".join(line for line in lines if line)
    tail = "\n".join(tail.splitlines()[-_TAIL_LINES:])
    if len(tail) > _TAIL_CHARS:
        tail = "..." + tail[-_TAIL_CHARS:]
    return tail or "(empty output)"


#: The line every workload prints with its result, and the line a long-running one prints
#: once it is ready.
RESULT = "VB-RESULT"
READY = "VB-READY"


def parse_result_line(text: str | bytes, marker: str = RESULT) -> dict[str, str]:
    """The ``key=value`` pairs of the last line that starts with ``marker``.

    Leading whitespace, ANSI escapes and control characters are ignored; tokens after the
    marker without ``=`` are skipped. A value may itself contain ``=`` (split at the first one).
    Raises :class:`ValueError` naming the marker and showing the tail of ``text`` if no such
    line exists.
    """
    if not marker or any(ch.isspace() for ch in marker):
        raise ValueError(f"marker must be a non-empty word, got {marker!r}")
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    for raw in reversed(_LINE_SPLIT.split(text)):
        line = _clean(raw)
        tokens = line.split()
        if not tokens or tokens[0] != marker:
            continue
        pairs: dict[str, str] = {}
        for token in tokens[1:]:
            key, sep, value = token.partition("=")
            if sep and key:
                pairs[key] = value
        return pairs
    raise ValueError(
        f"no line starting with {marker!r} in the output; it ends with:\n{_tail(text)}"
    )


def as_number(value: str) -> float:
    """A result value as a float: decimal integers, floats and ``0x`` hex are accepted."""
    text = value.strip()
    try:
        if text.lstrip("+-")[:2].lower() == "0x":
            return float(int(text, 16))
        try:
            return float(int(text, 10))
        except ValueError:
            return float(text)
    except ValueError:
        raise ValueError(f"not a number: {value!r}") from None
