"""Durations as a person reads them in progress lines: "42 s", "3 min 07 s", "1 h 05 min"."""

from __future__ import annotations


def duration_text(seconds: float) -> str:
    """``seconds`` rounded to whole seconds, in s, min and s, or h and min."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
