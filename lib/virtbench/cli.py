"""Command line: ``virtbench doctor | run | repair | reproduce | published``."""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
from pathlib import Path

from virtbench import platforms
from virtbench.platforms.base import Workload

EPILOG = "Examples:\n  virtbench doctor\n  virtbench run startup --variant native --reps 30\n"
RUN_EPILOG = """\
The same --run-id resumes a run: complete cells are kept, a cell cut short by a crash and
cells that failed ("failed: ..." rows) are measured again. One process writes a run at a time.

Exit status:
  0  every cell measured, or recorded as not available / not supported
  1  some cell failed (its reason is in the rows; run the same command again to retry)
  2  usage error (bad option, experiment, variant or run id; unreadable dataset)
  3  run refused: another process writes it, it was measured on another host
     (--force-host), or it is the read-only reference dataset (--force)
130 interrupted (measured cells are kept)
"""


class UsageError(ValueError):
    """Bad input from the command line; printed without a traceback."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1 or more), got {value}")
    return value


def cmd_doctor(args: argparse.Namespace) -> int:
    """Report, for every platform variant, whether it runs here, why not, and the fix."""
    from virtbench.host import collect

    entries = []
    for name, (family, _) in platforms.VARIANTS.items():
        if args.family and family not in args.family:
            continue
        if not args.json:
            print(f"checking {name} ...", file=sys.stderr, flush=True)
        plat = platforms.create(name)
        a = plat.availability
        entry = {"family": family, "variant": name, "available": a.available,
                 "reason": a.reason, "version": a.version or None}
        if a.fix:
            entry["fix"] = a.fix
        entries.append(entry)
        plat.close()
    if args.json:
        print(json.dumps({"host": collect(), "platforms": entries}, indent=2, default=str))
        return 0
    width = max(len(e["variant"]) for e in entries)
    for e in entries:
        mark = "yes" if e["available"] else "no "
        print(f"{e['family']:<7} {e['variant']:<{width}}  {mark}  {e['version'] or ''}")
        print(f"{'':<7} {'':<{width}}       {e['reason']}")
        if e.get("fix") and not e["available"]:
            print(f"{'':<7} {'':<{width}}       fix: {e['fix']}")
    return 0


def _user_workload(args: argparse.Namespace) -> list[Workload] | None:
    if not args.command and not args.wasm:
        return None
    wasm = None
    if args.wasm:
        wasm = Path(args.wasm).resolve()
        if not wasm.is_file():
            raise UsageError(f"--wasm {args.wasm}: no such file")
    command = tuple(shlex.split(args.command)) if args.command else ()
    name = args.workload_name or (Path(command[0]).name if command else wasm.stem)
    return [Workload(name=name, command=command, wasm=wasm)]


def cmd_run(args: argparse.Namespace) -> int:
    """Measure one experiment, store it, print the summary."""
    from virtbench import experiments
    from virtbench.results import FAILED_PREFIXES, RunStore, check_run_id, new_run_id
    from virtbench.summary import format_summary, summarize, summary_records

    experiment = experiments.get(args.experiment)
    variants = platforms.select(args.family or (), args.variant or ())
    workloads = _user_workload(args)
    options = experiments.core.check_options(
        experiment, dict(kv.split("=", 1) for kv in args.option or ()))
    run_id = new_run_id(experiment.name) if args.run_id is None else check_run_id(args.run_id)
    store = RunStore(run_id, force=args.force)
    with store.locked():
        print(f"run {store.run_id}: writing {store.path}", file=sys.stderr, flush=True)
        experiments.run(experiment, variants, store, reps=args.reps, quick=args.quick,
                        workloads=workloads, seed=args.seed, options=options,
                        force_host=args.force_host,
                        progress=None if args.no_progress else experiments.core._stderr_progress)
    df = store.rows()
    df = df[(df["experiment"] == experiment.name) & df["variant"].isin(variants)]
    summary = summarize(df)
    if args.json:
        print(json.dumps(summary_records(summary), indent=2))
    else:
        print(format_summary(summary))
        print(f"\nrows: {store.path}", file=sys.stderr)
    failed = df[df["reason"].str.startswith(FAILED_PREFIXES)]
    if not failed.empty:
        cells = failed.drop_duplicates(["variant", "workload", "rep"])
        print(f"virtbench: {len(cells)} cell(s) failed, e.g. {cells['variant'].iloc[0]}: "
              f"{cells['reason'].iloc[0]}; run the same command again to retry them",
              file=sys.stderr)
        return 1
    return 0


def cmd_repair(args: argparse.Namespace) -> int:
    """Rewrite a run keeping every good row; say what was dropped."""
    from virtbench.results import repair

    report = repair(args.run_id, force=args.force)
    for line, why in report.dropped:
        print(f"dropped {report.path}:{line}: {why}")
    print(f"kept {report.kept} row(s), dropped {len(report.dropped)}: {report.path}")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from virtbench import report

    return report.main(args)


def cmd_published(argv: list[str]) -> int:
    from virtbench import published

    return published.main(argv)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="virtbench", description="Process, container, WebAssembly or VM: measured here.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command_name", required=True)

    doctor = sub.add_parser("doctor", help="which platforms run here, and why not")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--family", action="append", choices=platforms.FAMILIES)
    doctor.set_defaults(func=cmd_doctor)

    run = sub.add_parser("run", help="measure one experiment and store the rows",
                         epilog=RUN_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("experiment", help="startup, memory, disk, cpu, io, ...")
    run.add_argument("--family", action="append", metavar="F",
                     help=f"platform family ({', '.join(platforms.FAMILIES)}); repeatable")
    run.add_argument("--variant", action="append", metavar="V",
                     help="variant name, or the part before '/', e.g. native; repeatable")
    run.add_argument("--reps", type=positive_int, help="measured repetitions per cell")
    run.add_argument("--quick", action="store_true", help="few repetitions, small sizes")
    run.add_argument("--run-id", help="store under datasets/RUN_ID (same id resumes)")
    run.add_argument("--seed", type=int, default=0, help="seed of the interleaving order")
    run.add_argument("--force", action="store_true", help="allow writing the reference run")
    run.add_argument("--force-host", action="store_true",
                     help="add to a run measured on another host (hostname, CPU, kernel)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    run.add_argument("--option", action="append", metavar="KEY=VALUE",
                     help="experiment option, e.g. cpu_millions=100, io_mib=64, mem_mib=64")
    run.add_argument("--command", help="your own native workload, e.g. \"/usr/bin/true\"")
    run.add_argument("--wasm", help="your own .wasm module (WASI preview 1)")
    run.add_argument("--workload-name", help="label for your own workload")
    run.set_defaults(func=cmd_run)

    fix = sub.add_parser("repair", help="rewrite a damaged run keeping every good row")
    fix.add_argument("run_id", metavar="RUN_ID", help="the run under datasets/")
    fix.add_argument("--force", action="store_true", help="allow rewriting the reference run")
    fix.set_defaults(func=cmd_repair)

    rep = sub.add_parser("reproduce", help="execute every notebook and write HTML reports")
    rep.add_argument("--quick", action="store_true", help="small, fast measurements")
    rep.add_argument("--run-id", help="dataset to analyse (default: the reference run)")
    rep.add_argument("--rerun", action="store_true", help="measure afresh before reporting")
    rep.add_argument("--out", default="reports", help="output folder (default: reports/)")
    rep.add_argument("--only", action="append", metavar="NOTEBOOK",
                     help="run only notebooks whose name contains this; repeatable")
    rep.set_defaults(func=cmd_reproduce)

    pub = sub.add_parser("published", help="print published figures and the seed's claims",
                         add_help=False)
    pub.add_argument("rest", nargs=argparse.REMAINDER)
    pub.set_defaults(func=None)
    return parser


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "published":
        return cmd_published(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every daemon, container and VM is stopped on the way out
    signal.signal(signal.SIGTERM, _terminate)
    if args.command_name == "run" and args.option:
        bad = [kv for kv in args.option if "=" not in kv]
        if bad:
            parser.error(f"--option expects KEY=VALUE, got {bad[0]!r}")
    from virtbench.results import RunRefused

    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:
        print(f"virtbench: error: {exc}", file=sys.stderr)
        return 2
    except RunRefused as exc:
        print(f"virtbench: error: {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("virtbench: interrupted; measured cells are stored, rerun the same "
              "--run-id to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
