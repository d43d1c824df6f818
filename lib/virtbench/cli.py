"""Command line: ``virtbench doctor | run | repair | list | compare | export | claims |
selfcheck | reproduce | published``."""

from __future__ import annotations

import argparse
import json
import os
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
  4  a file of the run could not be written (a full disk, ...): the line names it and
     the free space; the rows written before are intact (run the same command again)
130 interrupted (measured cells are kept)
"""


CAMPAIGN_EPILOG = """\
Each host runs one worker: `virtbench worker ADDRESS --name HOST` (a Dask worker with one
thread and the resource virtbench-host-HOST=1, so two cells never overlap on a host). Rows
arrive in datasets/RUN_ID/ as cells finish, with their host; hosts/HOST.json keeps each
host's facts. The same plan and --run-id resumes what is missing.

Exit status: 0 every cell stored; 1 some cell failed or its host's worker left (rerun to
measure it); 2 usage error (a bad plan: file, line and key are named); 3 run refused.
"""


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("virtbench")
    except metadata.PackageNotFoundError:
        return "unknown (not installed as a package)"


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


def run_id_arg(value: str) -> str:
    """An argparse type: a run id (or ``RUN@HOST``) that is a plain folder name, checked the
    same way for every command."""
    from virtbench.results import check_run_id

    run, sep, host = value.partition("@")
    try:
        check_run_id(run)
        if sep:
            check_run_id(host)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _print_drift(run_id: str = "reference") -> None:
    """Say which installed engines differ from those that measured the shipped reference."""
    from virtbench import drift
    from virtbench.host import collect, read_host_json
    from virtbench.paths import reference_dir

    measured = read_host_json(reference_dir()).get("versions", {})
    lines = drift.sentences(measured, collect()["versions"], run_id)
    if lines:
        print(f"\nengines that differ from those of run {run_id} (constraints.txt pins "
              "them; `make setup` installs them):")
        for line in lines:
            print(f"  {line}")
    else:
        print(f"\nengines: the same versions as those that measured run {run_id}")


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
        entry = {"family": family, "class": platforms.class_of(name), "variant": name,
                 "available": a.available, "reason": a.reason, "version": a.version or None}
        if a.fix:
            entry["fix"] = a.fix
        entries.append(entry)
        plat.close()
    if args.json:
        print(json.dumps({"host": collect(), "platforms": entries}, indent=2, default=str))
        return 0
    import shutil
    import textwrap

    width = max(len(e["variant"]) for e in entries)
    columns = min(shutil.get_terminal_size((100, 24)).columns, 120)
    indent = " " * (width + 8)
    for e in entries:
        mark = "yes" if e["available"] else "no "
        head = f"{e['family']:<7} {e['variant']:<{width}}  {mark}  "
        text = (e["version"] or "") if e["available"] else e["reason"]
        if args.verbose:
            print(head + (e["version"] or ""))
            print(textwrap.fill(e["reason"], columns, initial_indent=indent,
                                subsequent_indent=indent))
            if e.get("fix") and not e["available"]:
                print(textwrap.fill(f"fix: {e['fix']}", columns, initial_indent=indent,
                                    subsequent_indent=indent))
            continue
        print(textwrap.fill(text, max(columns, len(head) + 20), initial_indent=head,
                            subsequent_indent=" " * len(head)) if text else head.rstrip())
    _print_drift()
    if not args.verbose:
        print("\n--verbose for the reasons and fixes in full, --json for scripts",
              file=sys.stderr)
    return 0


def _user_workload(args: argparse.Namespace) -> list[Workload] | None:
    """The workload of ``--spec`` and the workload flags (flags add to the file), or None."""
    from virtbench import spec as workload_spec

    flags = (args.command, args.wasm, args.image, args.arg, args.stdin, args.env, args.dir,
             args.ok_exit, args.success, args.time_limit)
    if not args.spec and not any(flags):
        return None
    if not args.spec and not (args.command or args.wasm):
        raise UsageError("--image, --arg, --stdin, --env, --dir, --ok-exit, --success and "
                         "--time-limit describe your own workload: give it with --command, "
                         "--wasm or --spec")
    base = workload_spec.from_toml(args.spec) if args.spec else None
    spec = workload_spec.from_flags(
        name=args.workload_name, command=args.command, wasm=args.wasm, image=args.image,
        args=args.arg or (),
        stdin=args.stdin, env=args.env or (), dirs=args.dir or (), ok_exit=args.ok_exit or (),
        success=args.success, time_limit_s=args.time_limit, base=base)
    return [Workload.of(spec)]


def cmd_run(args: argparse.Namespace) -> int:
    """Measure one experiment, store it, print the summary."""
    from virtbench import experiments, runner
    from virtbench.experiments.base import check_options
    from virtbench.results import FAILED_PREFIXES, RunStore, check_run_id, new_run_id
    from virtbench.summary import format_summary, summarize, summary_records

    experiment = experiments.get(args.experiment)
    variants = platforms.select(args.family or (), args.variant or ())
    workloads = _user_workload(args)
    options = check_options(experiment, dict(kv.split("=", 1) for kv in args.option or ()))
    run_id = new_run_id(experiment.name) if args.run_id is None else check_run_id(args.run_id)
    store = RunStore(run_id, force=args.force)
    with store.locked():
        print(f"run {store.run_id}: writing {store.path}", file=sys.stderr, flush=True)
        runner.run(experiment, variants, store, reps=args.reps, quick=args.quick,
                   workloads=workloads, seed=args.seed, options=options,
                   force_host=args.force_host, remeasure=args.remeasure,
                   progress=None if args.no_progress else runner.stderr_progress)
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


def _run_names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def cmd_repair(args: argparse.Namespace) -> int:
    """Rewrite a run keeping every good row; say what was dropped and what was derived; a
    damaged host.json is rebuilt (a run without rows too)."""
    from virtbench.hostheal import heal_host_json
    from virtbench.paths import datasets_dir
    from virtbench.results import READ_ONLY_RUNS, RESULTS_FILE, RunRefused, repair

    run_dir = datasets_dir() / args.run_id
    if not run_dir.is_dir():
        raise ValueError(f"no run {args.run_id!r} under {datasets_dir()}; runs there: "
                         f"{', '.join(_run_names(datasets_dir())) or 'none'}")
    if args.run_id in READ_ONLY_RUNS and not args.force and not args.dry_run:
        raise RunRefused(f"run {args.run_id!r} is the shipped reference dataset and is "
                         "read-only; --force to repair it")
    has_rows = (run_dir / RESULTS_FILE).exists()
    report = repair(args.run_id, force=args.force, dry_run=args.dry_run) if has_rows else None
    verb = "would drop" if args.dry_run else "dropped"
    for line, why in report.dropped if report else ():
        print(f"{verb} {report.path}:{line}: {why}")
    for note in report.notes if report else ():
        print(("would fix " if args.dry_run else "") + note)
    warning = heal_host_json(run_dir, dry_run=args.dry_run)
    if warning:
        print(f"warning: {warning}")
    if report is None and not warning:
        raise ValueError(f"no dataset {run_dir / RESULTS_FILE} and nothing else to repair")
    if report is not None:
        print(f"{'would keep' if args.dry_run else 'kept'} {report.kept} row(s), {verb} "
              f"{len(report.dropped)}: {report.path}" + (" (dry run: nothing written)"
                                                         if args.dry_run else ""))
    return 0


def _repetitions(e) -> str:
    """An experiment's default repetitions, full and ``--quick``, with warm-ups (as the
    runner resolves them)."""
    from virtbench.experiments.base import resolve_params

    if e.once:
        return "measured once"
    full, quick = resolve_params(e), resolve_params(e, quick=True)

    def part(p) -> str:
        return f"{p.reps}" + (f" + {p.warmup} warm-up" if p.warmup else "")
    left_out = "".join(f", without {v}" for v in e.quick_skips)
    return f"reps {part(full)}; quick {part(quick)}{left_out}"


def _class_note(variant: str) -> str:
    """`` (sandboxed container)`` when the variant's report class is not its family's."""
    klass = platforms.class_of(variant)
    return "" if klass == platforms.CLASSES[platforms.family_of(variant)] else f" ({klass})"


def cmd_list(args: argparse.Namespace) -> int:
    """Print the metric catalog, its condition keys, or the experiments."""
    import textwrap
    from dataclasses import asdict

    from virtbench import catalog, experiments

    if args.what == "experiments":
        rows = [{"name": e.name, "description": f"{e.description} [{_repetitions(e)}]"}
                for e in experiments.EXPERIMENTS.values()]
    elif args.what == "variants":
        rows = [{"name": v, "description": f"{fam}{_class_note(v)}: {_variant_summary(v)}"}
                for v, (fam, _) in platforms.VARIANTS.items()]
    elif args.what == "runs":
        rows = _runs(Path(args.datasets) if args.datasets else None)
        if not rows and not args.json:
            print("no runs yet: measure one with `virtbench run EXPERIMENT`", file=sys.stderr)
            return 0
    elif args.what == "conditions":
        rows = [{"name": k, "description": v} for k, v in catalog.CONDITIONS.items()]
    else:
        found = catalog.metrics(args.experiment)
        if args.json:
            print(json.dumps([{**asdict(m), "conditions": list(m.conditions)} for m in found],
                             indent=2))
            return 0
        head = ("experiment", "metric", "unit", "better", "exact", "conditions")
        table = [(m.experiment, m.name, m.unit, m.better or "-", "yes" if m.exact else "-",
                  ", ".join(m.conditions) or "-") for m in found]
        widths = [max(len(r[i]) for r in [head, *table]) for i in range(len(head))]
        for row, m in [(head, None), *zip(table, found, strict=True)]:
            line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            print(line if len(line) <= 100 else line[:99] + "~")
            if m is not None:
                print(textwrap.fill(m.what, 100, initial_indent="    ", subsequent_indent="    "))
        return 0
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows) + 2
    for r in rows:
        print(textwrap.fill(r["description"], 100, initial_indent=r["name"].ljust(width),
                            subsequent_indent=" " * width))
    return 0


def _variant_summary(variant: str) -> str:
    """The variant's own one-line summary (its class's ``summary``; else the first paragraph
    of the class's own docstring, not one it inherits)."""
    import importlib

    where = platforms.VARIANTS[variant][1]
    if isinstance(where, str):
        module, _, name = where.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            return f"(cannot import: {exc})"
    else:
        cls = where  # a class registered directly
    text = cls.summary or (cls.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(text.split())


def _runs(root: Path | None) -> list[dict]:
    """The runs stored under the datasets folder: id, rows, experiments, last change."""
    from datetime import UTC, datetime

    from virtbench.paths import datasets_dir
    from virtbench.results import RESULTS_FILE, DatasetError, load_runs

    root = root or datasets_dir()
    out = []
    for path in sorted(root.glob(f"*/{RESULTS_FILE}")):
        try:
            df = load_runs(path.parent.name, root=root)
            what = (f"{len(df)} rows, {int(df['value'].notna().sum())} measured; "
                    f"{', '.join(dict.fromkeys(df['experiment']))}")
        except DatasetError as exc:
            what = f"unreadable: {exc}"
        when = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M UTC")
        out.append({"name": path.parent.name, "description": f"{what} (written {when})"})
    return out


def cmd_claims(args: argparse.Namespace) -> int:
    """The claims check of a run: every line checked and one verdict per claim and family."""
    from virtbench import checkcache, claims, published, stats
    from virtbench.dataset import Dataset

    if args.source is not None and args.source not in published.SOURCES:
        raise ValueError(f"unknown source {args.source!r}; valid: "
                         f"{', '.join(published.SOURCES)}")
    policy = stats.Policy(min_n=args.min_n, margin=args.margin)
    ds = Dataset.load(args.run_id, args.datasets or None)
    check = checkcache.cached(
        lambda: claims.check(ds, source=args.source, policy=policy),
        [*ds.files, *claims.map_inputs()],
        {"run": args.run_id, "source": args.source, "min_n": policy.min_n,
         "margin": policy.margin, "confidence": policy.confidence})
    if args.json:
        record = claims.to_records(check)
        record = {"run_id": ds.run_id, "policy": {"min_n": policy.min_n,
                                                  "margin": policy.margin,
                                                  "confidence": policy.confidence}, **record}
        print(json.dumps(record, indent=1, default=str))
        return 0
    verdicts = claims.claim_verdicts(check)
    answered = verdicts["verdict"].isin(claims.UNSETTLED)  # measured, but no one verdict
    shown = verdicts if args.all else verdicts[verdicts["tallied"] | answered]
    width = max([len(c) for c in shown["claim"]] + [5])
    width = min(width, 58)
    for r in shown.itertuples():
        claim = r.claim if len(r.claim) <= width else r.claim[:width - 1] + "~"
        print(f"{r.claim_id:<14} {claim:<{width}} {r.family:<7} {r.verdict}")
    print(f"\n{claims.headline(check)}")
    print(f"run {ds.run_id}; policy: n >= {policy.min_n}, margin {policy.margin:.0%}; "
          "--json for every line, --all for claims without a verdict", file=sys.stderr)
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    """Which platform classes meet the budgets asked for, from a run's measurements."""
    from virtbench import recommend, stats
    from virtbench.dataset import Dataset

    budget = recommend.Budget(args.max_start_ms, args.max_mem_mib, args.isolation)
    policy = stats.Policy(min_n=args.min_n)
    ds = Dataset.load(args.run_id, args.datasets or None)
    records = recommend.recommend(ds, budget, policy)
    if args.json:
        print(json.dumps({"run_id": ds.run_id, "budget": vars(budget), "min_n": policy.min_n,
                          "classes": records}, indent=1, default=str))
    else:
        print(recommend.text(records, budget, ds.run_id))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Two runs cell by cell: ratio of medians with its CI, Holm-corrected test, verdict."""
    from virtbench import catalog, compare
    from virtbench.dataset import Dataset

    for name in args.experiment or ():
        if name not in catalog.experiments():
            raise ValueError(f"unknown experiment {name!r}; valid: "
                             f"{', '.join(catalog.experiments())}")
    known = {m.name for m in catalog.metrics()}
    for name in args.metric or ():
        if name not in known:
            raise ValueError(f"unknown metric {name!r}; `virtbench list metrics` lists them")
    a = Dataset.load(args.run_a, args.datasets or None)
    b = Dataset.load(args.run_b, args.datasets or None)
    table = compare.compare(a, b, args.experiment or (), args.metric or ())
    if args.json:
        records = json.loads(table.to_json(orient="records"))
        print(json.dumps({"run_a": args.run_a, "run_b": args.run_b, "cells": records,
                          "summary": compare.summary_line(table)}, indent=1))
    else:
        print(compare.format_table(table, args.run_a, args.run_b))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A run's rows and host metadata as one parquet, CSV or JSON file."""
    from virtbench import export

    out = export.export(args.run_id, args.format, Path(args.out) if args.out else None,
                        Path(args.datasets) if args.datasets else None,
                        history=args.history)
    print(f"wrote {out}", file=sys.stderr)
    return 0


def cmd_campaign(args: argparse.Namespace) -> int:
    """Measure a plan on many hosts through a Dask scheduler into one run."""
    from contextlib import ExitStack

    from virtbench.campaign import client as campaign
    from virtbench.campaign import cluster
    from virtbench.campaign import plan as plans
    from virtbench.results import check_run_id, new_run_id

    plan = plans.load(args.plan)
    run_id = check_run_id(args.run_id or plan.run_id or new_run_id("campaign"))
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("campaigns need Dask distributed: run `make setup` (or pip install "
                         "distributed)") from None

    with ExitStack() as stack:
        address = stack.enter_context(cluster.local(args.local)) if args.local else args.scheduler
        client = stack.enter_context(Client(address, timeout=30))
        outcome = campaign.run(plan, client, run_id, expect=args.local or 0, force=args.force)
    from virtbench.paths import datasets_dir

    print(f"rows: {datasets_dir() / run_id}/ (hosts side by side: virtbench compare "
          f"{run_id}@HOST_A {run_id}@HOST_B)", file=sys.stderr)
    return 0 if outcome.complete else 1


def cmd_worker(args: argparse.Namespace) -> int:
    """Become this host's benchmark worker (``dask worker`` with one thread, no nanny)."""
    import platform as platform_

    from virtbench.campaign import cluster

    cluster.exec_worker(args.address, args.name or platform_.node())
    return 0


def cmd_selfcheck(args: argparse.Namespace) -> int:
    """The suite's readings beside standalone tools; ratios printed and put in host.json."""
    from virtbench import selfcheck
    from virtbench.host import check_host, record_selfcheck, write_host_json
    from virtbench.results import RunStore, check_run_id, new_run_id

    checks = selfcheck.check_names(args.check or ())
    settings = selfcheck.Settings(rounds=args.rounds or (3 if args.quick else 5),
                                  quick=args.quick, seed=args.seed)
    run_id = new_run_id("selfcheck") if args.run_id is None else check_run_id(args.run_id)
    store = RunStore(run_id, force=args.force)
    with store.locked():
        check_host(store.dir)  # a run's selfcheck speaks of the host that measured it
        write_host_json(store.dir, {"command": "selfcheck", "rounds": settings.rounds,
                                    "quick": settings.quick, "seed": settings.seed,
                                    "checks": [c.name for c in checks]})
        say = (lambda _m: None) if args.no_progress else \
            (lambda m: print(m, file=sys.stderr, flush=True))
        section = selfcheck.run(settings, [c.name for c in checks], progress=say)
        path = record_selfcheck(store.dir, section)
    print(json.dumps(section, indent=2) if args.json else selfcheck.format_section(section))
    print(f"\nselfcheck written to {path}", file=sys.stderr)
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
    parser.add_argument("--version", action="version", version=f"virtbench {_version()}")
    sub = parser.add_subparsers(dest="command_name", required=True)

    doctor = sub.add_parser("doctor", help="which platforms run here, and why not")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--verbose", "-v", action="store_true",
                        help="every reason and fix in full")
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
    run.add_argument("--run-id", type=run_id_arg,
                     help="store under datasets/RUN_ID (same id resumes)")
    run.add_argument("--datasets", default="",
                     help="root folder of the datasets (default: $VIRTBENCH_DATASETS or "
                          "datasets/)")
    run.add_argument("--seed", type=int, default=0, help="seed of the interleaving order")
    run.add_argument("--force", action="store_true", help="allow writing the reference run")
    run.add_argument("--force-host", action="store_true",
                     help="add to a run measured on another host (hostname, CPU, kernel)")
    run.add_argument("--remeasure", action="store_true",
                     help="measure the chosen cells again although stored (the new rows are "
                          "appended and replace the earlier ones in every analysis; after a "
                          "crash, resume without it)")
    run.add_argument("--json", action="store_true", help="print the summary as JSON")
    run.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    run.add_argument("--option", action="append", metavar="KEY=VALUE",
                     help="experiment option, e.g. cpu_millions=100, io_mib=64, mem_mib=64")
    run.add_argument("--command", help="your own native workload, e.g. \"/usr/bin/true\"")
    run.add_argument("--wasm", help="your own .wasm module (WASI preview 1)")
    run.add_argument("--image", metavar="FILE",
                     help="your own `docker save` archive; --command is then the program inside "
                          "it (docker/runc, docker/runc-host)")
    run.add_argument("--workload-name", help="label for your own workload")
    run.add_argument("--spec", metavar="FILE",
                     help="your own workload as a TOML file (keys: name, command, wasm, image, "
                          "args, stdin, env, dirs, ok_exit, success, time_limit_s); flags add "
                          "to it")
    run.add_argument("--arg", action="append", metavar="A",
                     help="an argument of your workload (native and Wasm); repeatable")
    run.add_argument("--stdin", metavar="FILE", help="your workload's standard input")
    run.add_argument("--env", action="append", metavar="K=V",
                     help="an environment variable of your workload; repeatable")
    run.add_argument("--dir", action="append", metavar="HOST[:GUEST]",
                     help="a directory your workload sees at GUEST (default: the same path), "
                          "copied fresh for each run; repeatable")
    run.add_argument("--ok-exit", action="append", type=int, metavar="N",
                     help="an exit status that means success (default 0); repeatable")
    run.add_argument("--success", metavar="REGEX",
                     help="a pattern your workload's stdout must contain to count as success")
    run.add_argument("--time-limit", type=float, metavar="S",
                     help="seconds your workload may run (default 300)")
    run.set_defaults(func=cmd_run)

    lst = sub.add_parser("list", help="the metric catalog, its conditions, the experiments")
    lst.add_argument("what", choices=("metrics", "conditions", "experiments", "variants", "runs"))
    lst.add_argument("--datasets", default="", help="root folder of the datasets (for runs)")
    lst.add_argument("--experiment", metavar="E", help="only the metrics of experiment E")
    lst.add_argument("--json", action="store_true", help="machine-readable output")
    lst.set_defaults(func=cmd_list)

    cmp_ = sub.add_parser("compare", help="two runs cell by cell: ratios, tests, verdicts")
    cmp_.add_argument("run_a", metavar="RUN_A", type=run_id_arg,
                      help="the run compared against")
    cmp_.add_argument("run_b", metavar="RUN_B", type=run_id_arg,
                      help="the run compared (ratios are B / A)")
    cmp_.add_argument("--experiment", action="append", metavar="E", help="only E; repeatable")
    cmp_.add_argument("--metric", action="append", metavar="M", help="only M; repeatable")
    cmp_.add_argument("--datasets", default="", help="root folder of the datasets")
    cmp_.add_argument("--json", action="store_true", help="machine-readable output")
    cmp_.set_defaults(func=cmd_compare)

    exp = sub.add_parser("export", help="a run's raw rows and host metadata as one file")
    exp.add_argument("run_id", metavar="RUN_ID", type=run_id_arg)
    exp.add_argument("--format", choices=("parquet", "csv", "json"), default="parquet")
    exp.add_argument("--out", help="file to write (default: RUN_ID.FORMAT here)")
    exp.add_argument("--datasets", default="", help="root folder of the datasets")
    exp.add_argument("--history", action="store_true",
                     help="superseded readings too (the status column says which)")
    exp.set_defaults(func=cmd_export)

    chk = sub.add_parser("claims", help="check the published claims against a run")
    chk.add_argument("--run-id", default="reference", type=run_id_arg,
                     help="run to check (default: reference)")
    chk.add_argument("--datasets", default="", help="root folder of the datasets")
    chk.add_argument("--source", metavar="SOURCE",
                     help="only the claims of this source: seed, edera, lumos, isolation, "
                          "felter, edera-blog, unikernels")
    chk.add_argument("--min-n", type=positive_int, default=6,
                     help="samples a verdict needs (default 6)")
    chk.add_argument("--margin", type=float, default=0.05,
                     help="practical-equivalence margin around a claim (default 0.05)")
    chk.add_argument("--all", action="store_true", help="also list claims without a verdict")
    chk.add_argument("--json", action="store_true",
                     help="every checked line, the claim-level verdicts and the tally")
    chk.set_defaults(func=cmd_claims)

    rec = sub.add_parser("recommend", help="which platform classes meet a start, memory and "
                         "isolation budget on a run")
    rec.add_argument("--max-start-ms", "--start-budget-ms", type=float, metavar="MS",
                     dest="max_start_ms",
                     help="cold start budget in ms (the seed's decision tree asks < 10 ms)")
    rec.add_argument("--max-mem-mib", "--memory-budget-mib", type=float, metavar="MIB",
                     dest="max_mem_mib", help="memory budget per idle instance in MiB")
    rec.add_argument("--isolation", metavar="LEVEL",
                     help="the weakest isolation acceptable: process, namespace, kernel, "
                          "hardware")
    rec.add_argument("--run-id", default="reference", type=run_id_arg,
                     help="run to answer from (default: reference)")
    rec.add_argument("--datasets", default="", help="root folder of the datasets")
    rec.add_argument("--min-n", type=positive_int, default=6,
                     help="samples an answer needs (default 6)")
    rec.add_argument("--json", action="store_true", help="the answer as JSON")
    rec.set_defaults(func=cmd_recommend)

    fix = sub.add_parser("repair", help="rewrite a damaged run keeping every good row")
    fix.add_argument("run_id", metavar="RUN_ID", type=run_id_arg, help="the run under datasets/")
    fix.add_argument("--datasets", default="", help="root folder of the datasets")
    fix.add_argument("--dry-run", action="store_true",
                     help="say what would be dropped, change nothing")
    fix.add_argument("--force", action="store_true", help="allow rewriting the reference run")
    fix.set_defaults(func=cmd_repair)

    camp = sub.add_parser("campaign", help="measure a plan on many hosts through Dask",
                          epilog=CAMPAIGN_EPILOG,
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    camp.add_argument("plan", metavar="PLAN.toml", help="experiments, variants, reps, hosts")
    where = camp.add_mutually_exclusive_group(required=True)
    where.add_argument("--scheduler", metavar="ADDRESS",
                       help="the Dask scheduler, e.g. tcp://10.0.0.1:8786")
    where.add_argument("--local", type=positive_int, metavar="N",
                       help="a scheduler and N worker processes on loopback (local-1 ...)")
    camp.add_argument("--run-id", type=run_id_arg,
                      help="store under datasets/RUN_ID (same id resumes)")
    camp.add_argument("--force", action="store_true", help="allow writing the reference run")
    camp.set_defaults(func=cmd_campaign)

    wrk = sub.add_parser("worker", help="serve this host to campaigns (a Dask worker)")
    wrk.add_argument("address", metavar="ADDRESS", help="the Dask scheduler's address")
    wrk.add_argument("--name", help="this host's name in the campaign (default: hostname)")
    wrk.set_defaults(func=cmd_worker)

    sc = sub.add_parser("selfcheck", help="the harness's share: the suite's readings beside "
                        "hyperfine, a plain engine loop, wrk and the bare engine command")
    sc.add_argument("--check", action="append", metavar="NAME",
                    help="native_start, warm_wasm, http, wasm_cpu (default: all); repeatable")
    sc.add_argument("--rounds", type=positive_int,
                    help="alternations of suite and reference (default 5; 3 with --quick)")
    sc.add_argument("--quick", action="store_true", help="fewer runs per reading")
    sc.add_argument("--run-id", type=run_id_arg, help="write into datasets/RUN_ID/host.json")
    sc.add_argument("--seed", type=int, default=0, help="seed of the checks' order")
    sc.add_argument("--force", action="store_true", help="allow writing the reference run")
    sc.add_argument("--json", action="store_true", help="print the section as JSON")
    sc.add_argument("--no-progress", action="store_true", help="no progress on stderr")
    sc.set_defaults(func=cmd_selfcheck)

    rep = sub.add_parser("reproduce", help="execute every notebook and write HTML reports")
    rep.add_argument("--quick", action="store_true", help="small, fast measurements")
    rep.add_argument("--run-id", type=run_id_arg,
                     help="dataset to analyse (default: the reference run)")
    rep.add_argument("--rerun", action="store_true", help="measure afresh before reporting")
    rep.add_argument("--force", action="store_true",
                     help="with --rerun --run-id reference: re-measure the shipped reference run")
    rep.add_argument("--out", default="reports", help="output folder (default: reports/)")
    rep.add_argument("--only", action="append", metavar="NOTEBOOK",
                     help="run only notebooks whose name contains this; repeatable (the "
                          "index keeps the other reports of the same run)")
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
    if args.command_name in ("run", "repair") and args.datasets:
        # one way to point at data: the same folder every module reads through datasets_dir()
        os.environ["VIRTBENCH_DATASETS"] = str(Path(args.datasets).resolve())
    # SIGTERM unwinds like Ctrl-C, so every daemon, container and VM is stopped on the way out
    signal.signal(signal.SIGTERM, _terminate)
    if args.command_name == "run" and args.option:
        bad = [kv for kv in args.option if "=" not in kv]
        if bad:
            parser.error(f"--option expects KEY=VALUE, got {bad[0]!r}")
    from virtbench.results import RunRefused
    from virtbench.store.errors import WriteFailed

    try:
        return args.func(args)
    except WriteFailed as exc:
        print(f"virtbench: error: {exc}", file=sys.stderr)
        return 4
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
    except BrokenPipeError:  # the reader went away (`virtbench list ... | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
