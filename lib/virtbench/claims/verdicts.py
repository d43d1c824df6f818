"""Claim-level verdicts: one per published claim and platform family from its lines (over
variants, readings and code versions), and their tally."""

from __future__ import annotations

from typing import Any

import pandas as pd

from virtbench.claims.outcomes import CONTEXT, DECIDED, VERDICT_ORDER, verdict_class
from virtbench.claims.versions import UNKNOWN_CODE

CLAIM_COLUMNS = ["claim_id", "source", "line", "claim", "claimed", "family", "verdict",
                 "tallied", "lines", "detail"]


def claim_verdicts(check_table: pd.DataFrame) -> pd.DataFrame:
    """One verdict per published claim and platform family.

    Within a reading, a variant's tallied lines (its kernels, workloads, conditions) give
    the variant's verdict when they agree; the reading's verdict is the one its variants
    agree on, else "mixed" (only variants disagreeing make it mixed). The claim gets a verdict
    when every reading with tallied lines agrees, else "depends on the reading" (each
    reading's verdict in the detail, not tallied). Tallied lines whose rows come from more
    than one measuring-code version give "several code versions" (not tallied). A claim with
    no tallied line gets the most informative class among its lines (inconclusive, not
    comparable, not measured, not measurable here) and is not tallied.
    """
    out = []
    if check_table.empty:
        return pd.DataFrame(columns=CLAIM_COLUMNS)
    table = check_table
    if "reading" not in table.columns:
        table = table.assign(reading="")
    for (claim_id, family), group in _groups(_records(table), "claim_id", "family").items():
        first = group[0]
        counted = [r for r in group if r["tallied"]]
        if counted:
            verdict, detail, tallied = _counted_verdict(counted)
        else:
            classes = [verdict_class(r["verdict"]) for r in group]
            if any(c in DECIDED for c in classes):  # decided, but not comparable/self
                verdict = "not comparable"
            else:
                verdict = min(classes, key=lambda c: VERDICT_ORDER.index(c)
                              if c in VERDICT_ORDER else len(VERDICT_ORDER))
            reasons = sorted(dict.fromkeys(r["reason"] for r in group if r["reason"]),
                             key=lambda r: not r.startswith(CONTEXT))
            detail = "; ".join(reasons)[:300]
            tallied = False
        out.append(dict(claim_id=claim_id, source=first["source"], line=first["line"],
                        claim=first["claim"], claimed=first["claimed"], family=family,
                        verdict=verdict, tallied=tallied, lines=len(group), detail=detail))
    return pd.DataFrame(out, columns=CLAIM_COLUMNS)


_ROW_FIELDS = ("claim_id", "family", "source", "line", "claim", "claimed", "verdict",
               "tallied", "reason", "reading", "variant", "metric", "conditions", "code",
               "commit")


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """The check lines as plain dicts of the fields the claim-level verdicts read (a field
    the table lacks is absent from them, as its column is)."""
    fields = [f for f in _ROW_FIELDS if f in table.columns]
    columns = [table[f].tolist() for f in fields]
    return [dict(zip(fields, values, strict=True)) for values in zip(*columns, strict=True)]


def _groups(rows: list[dict[str, Any]], *keys: str) -> dict[Any, list[dict[str, Any]]]:
    """Rows grouped by ``keys`` in order of first appearance, rows with a missing key left
    out (as ``DataFrame.groupby(keys, sort=False)`` does); one key: the value itself."""
    out: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        if any(pd.isna(k) for k in key):
            continue
        out.setdefault(key if len(keys) > 1 else key[0], []).append(row)
    return out


def _counted_verdict(counted: list[dict[str, Any]]) -> tuple[str, str, bool]:
    """(verdict, detail, tallied) of a claim and family from its tallied lines."""
    versions = _code_versions(counted)
    per_reading: dict[str, tuple[str, str]] = {}
    for name, lines in _groups(counted, "reading").items():
        per_reading[str(name)] = _reading_verdict(lines)
    verdicts = list(dict.fromkeys(v for v, _ in per_reading.values()))
    if len(per_reading) == 1:
        verdict, detail = verdicts[0], next(iter(per_reading.values()))[1]
    elif len(verdicts) == 1:
        verdict = verdicts[0]
        detail = "the readings agree: " + "; ".join(
            f"{name}: {v}" + (f" ({d})" if d else "") for name, (v, d) in per_reading.items())
    else:
        verdict = "depends on the reading"
        detail = "; ".join(f"reading {name or '(unnamed)'}: {v}" + (f" ({d})" if d else "")
                           for name, (v, d) in per_reading.items())
    if len(versions) > 1:
        commits = _commits(counted)
        said = ", ".join(versions) + (f" (commits {', '.join(commits)})" if commits else "")
        return ("several code versions",
                f"rows from {len(versions)} measuring-code versions: {said} (else: {verdict})",
                False)
    return verdict, detail, verdict in (*DECIDED, "mixed")


def _reading_verdict(lines: list[dict[str, Any]]) -> tuple[str, str]:
    """A reading's verdict over its variants, and the detail when it is not one verdict."""
    by_variant: dict[str, str | None] = {}
    split: list[str] = []
    for variant, own in _groups(lines, "variant").items():
        classes = list(dict.fromkeys(verdict_class(r["verdict"]) for r in own))
        if len(classes) == 1:
            by_variant[str(variant)] = classes[0]
        else:
            by_variant[str(variant)] = None
            split.append(f"{variant} lines disagree (" + "; ".join(
                f"{r['metric']}{' ' + r['conditions'] if r['conditions'] else ''}: "
                f"{verdict_class(r['verdict'])}"
                for r in own) + ")")
    decided = list(dict.fromkeys(v for v in by_variant.values() if v))
    if not decided:
        return "inconclusive", "; ".join(split)
    if len(decided) == 1:
        return decided[0], "; ".join(split)
    detail = "; ".join(f"{v}: {c}" for v, c in by_variant.items() if c)
    return "mixed", "; ".join([detail, *split])


def _code_versions(lines: list[dict[str, Any]]) -> list[str]:
    """The measuring-code versions behind lines ([] when the table does not say)."""
    if not lines or "code" not in lines[0]:
        return []
    return list(dict.fromkeys(c for r in lines
                              for c in (str(r["code"]).split(", ") if r["code"]
                                        else [UNKNOWN_CODE])))


def _commits(lines: list[dict[str, Any]]) -> list[str]:
    if not lines or "commit" not in lines[0]:
        return []
    return sorted({c for r in lines for c in str(r["commit"]).split(", ")
                   if c and c != "nan"})


def tally(check_table: pd.DataFrame, verdicts: pd.DataFrame | None = None) -> dict[str, int]:
    """How many (claim, family) pairs fall in each verdict family (``verdicts``: the
    :func:`claim_verdicts` of the table, when already computed)."""
    counts: dict[str, int] = {}
    for v in (claim_verdicts(check_table) if verdicts is None else verdicts)["verdict"]:
        counts[v] = counts.get(v, 0) + 1
    return {v: counts[v] for v in sorted(counts, key=lambda c: VERDICT_ORDER.index(c)
                                         if c in VERDICT_ORDER else len(VERDICT_ORDER))}
