"""What made a report: the analysis code, the dataset, the code that measured it, the host
and the engines, read from the run's ``host.json`` and this installation (never typed in)."""

from __future__ import annotations

from collections.abc import Mapping

from virtbench import drift

#: Engine version keys of ``host.json``, with the label a reader knows them by.
ENGINE_LABELS: dict[str, str] = {
    "wasmtime-py": "wasmtime (embedded, wheel)", "wasmtime-cli": "wasmtime CLI",
    "node": "Node.js", "qemu": "QEMU", "docker-engine": "Docker engine", "wrk": "wrk",
}


def commits_line(host: Mapping) -> str:
    """The commits that measured a run, each with its experiments ("abc123 (startup, cpu),
    def456 (speedtest1)"); the last recorded commit when no invocation says."""
    by_commit: dict[str, list[str]] = {}
    for inv in host.get("invocations") or []:
        experiment = (inv.get("parameters") or {}).get("experiment")
        commit = str(inv.get("git_commit") or "unknown")[:12]
        names = by_commit.setdefault(commit, [])
        if experiment and experiment not in names:
            names.append(experiment)
    if not by_commit:
        return str(host.get("git_commit") or "unknown")
    if len(by_commit) == 1:
        return next(iter(by_commit))
    return ", ".join(f"{c} ({', '.join(names)})" if names else c
                     for c, names in by_commit.items())


def engines_line(versions: Mapping[str, object]) -> str:
    """The engines a run recorded: "wasmtime (embedded, wheel) 50.0.1; QEMU ..."."""
    said = [f"{label} {_short(versions[key])}" for key, label in ENGINE_LABELS.items()
            if drift.recorded(versions.get(key))]
    return "; ".join(said) or "not recorded"


def _short(version: object) -> str:
    """A tool's version line without its boilerplate ("QEMU emulator version 7.2.22 (...)"
    -> "7.2.22 (...)", "Docker version 20.10.24+dfsg1, build x" -> "20.10.24+dfsg1")."""
    text = str(version).strip()
    for lead in ("QEMU emulator version ", "Docker version ", "wasmtime ", "wrk "):
        if text.startswith(lead):
            text = text[len(lead):]
    return text.split(", build")[0].split(" Copyright")[0]


def provenance(host: Mapping, run_id: str, analysed_by: str,
               installed: Mapping[str, object] | None = None) -> list[tuple[str, str]]:
    """(label, text) lines for the top of a report: the analysis, the dataset, the commits
    that measured it, the host, the engines, and engines installed now that differ."""
    from virtbench.dataset import host_line

    lines = [("analysed by", analysed_by), ("dataset", run_id or "unknown"),
             ("measured by commit", commits_line(host)),
             ("host", host_line(dict(host)) if host else "unknown (no host.json)"),
             ("engines", engines_line(host.get("versions") or {}))]
    if installed is not None:
        differ = drift.sentences(host.get("versions") or {}, installed, run_id)
        if differ:
            lines.append(("engine drift", "; ".join(differ)))
    return lines


def analysis_version() -> str:
    """The virtbench version and commit running this analysis."""
    from virtbench.host import _package_version, git_commit

    commit = git_commit()
    return (f"virtbench {_package_version('virtbench') or 'unknown version'}, commit "
            f"{commit[:12] + (' (uncommitted changes)' if commit.endswith('-dirty') else '')}"
            if commit else f"virtbench {_package_version('virtbench') or 'unknown version'}, "
            "not a git checkout")
