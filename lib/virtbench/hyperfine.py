"""hyperfine, the standalone reference for whole-process times: run it, parse its JSON export.

``hyperfine -N`` (no shell) forks and execs the command from a long-lived process after
``--warmup`` untimed runs and exports every run's wall time; the suite's own numbers are
compared with it by ``virtbench selfcheck``.
"""

from __future__ import annotations

import json
import shlex
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from virtbench.process import child_env, die_with_parent


class HyperfineMissing(FileNotFoundError):
    """hyperfine is not installed; the message says how to install it."""


@dataclass(frozen=True)
class HyperfineResult:
    """One command's runs as hyperfine exported them (seconds)."""

    command: str
    times_s: tuple[float, ...]
    exit_codes: tuple[int, ...]

    @property
    def median_s(self) -> float:
        return statistics.median(self.times_s)


def parse_hyperfine_json(text: str) -> list[HyperfineResult]:
    """The results of a ``hyperfine --export-json`` file; ValueError naming what is wrong."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"hyperfine export is not JSON: {exc}") from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list) or not results:
        raise ValueError("hyperfine export has no 'results' list")
    out = []
    for i, result in enumerate(results):
        times = result.get("times") if isinstance(result, dict) else None
        if not isinstance(times, list) or not times:
            raise ValueError(f"hyperfine result {i} has no 'times' (hyperfine >= 1.10 exports "
                             "every run's time)")
        codes = result.get("exit_codes") or []
        if any(code not in (0, None) for code in codes):
            raise ValueError(f"hyperfine result {i} ({result.get('command')!r}): a run exited "
                             f"with status {next(c for c in codes if c not in (0, None))}")
        out.append(HyperfineResult(str(result.get("command", "")),
                                   tuple(float(t) for t in times),
                                   tuple(int(c) for c in codes if c is not None)))
    return out


def available() -> bool:
    return shutil.which("hyperfine") is not None


def run_hyperfine(argv: Sequence[str], *, runs: int, warmup: int, timeout: float = 600.0
                  ) -> HyperfineResult:
    """Time ``argv`` with ``hyperfine -N --warmup W --runs R`` (its output to /dev/null)."""
    if not available():
        raise HyperfineMissing("hyperfine is not installed (Debian package hyperfine; run "
                               "`make setup`)")
    with tempfile.TemporaryDirectory(prefix="vb-hyperfine-") as tmp:
        export = Path(tmp) / "times.json"
        cmd = ["hyperfine", "-N", "--style", "none", "--warmup", str(warmup), "--runs",
               str(runs), "--export-json", str(export), shlex.join(str(a) for a in argv)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=child_env(), preexec_fn=die_with_parent())
        if proc.returncode != 0:
            raise RuntimeError(f"hyperfine exited {proc.returncode}: "
                               f"{(proc.stderr or proc.stdout).strip()[-500:]}")
        return parse_hyperfine_json(export.read_text())[0]
