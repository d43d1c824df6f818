"""The index's cards, kept beside the reports (``cards.json``), so that reproducing some
notebooks (``reproduce --only``) keeps the cards of the others on the index."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

CARDS_FILE = "cards.json"


def save(cards: Sequence[Any], out: Path, run_id: str) -> None:
    """Write the cards (:class:`virtbench.report.NotebookResult`) of ``run_id``'s reports."""
    records = [{k: (_relative(v, out) if isinstance(v, Path) else v)
                for k, v in asdict(c).items()} for c in cards]
    tmp = out / f".{CARDS_FILE}.tmp"
    tmp.write_text(json.dumps({"run_id": run_id, "cards": records}, indent=1), encoding="utf-8")
    tmp.replace(out / CARDS_FILE)


def merged(new: Sequence[Any], out: Path, run_id: str, order: Sequence[str]) -> list[Any]:
    """``new`` cards with the earlier ones of the same run still in ``out`` (their HTML
    report present), in the order of the notebook names ``order`` (others last)."""
    kind = type(new[0]) if new else None
    earlier = {c.name: c for c in _earlier(out, run_id, kind)} if kind else {}
    earlier.update({c.name: c for c in new})
    rank = {name: i for i, name in enumerate(order)}
    return sorted(earlier.values(), key=lambda c: (rank.get(c.name, len(rank)), c.name))


def _relative(path: Path, out: Path) -> str:
    """``path`` relative to the reports' folder (the folder moves with its files)."""
    try:
        return str(path.resolve().relative_to(out.resolve()))
    except ValueError:
        return str(path)


def _earlier(out: Path, run_id: str, kind: type) -> list[Any]:
    try:
        saved = json.loads((out / CARDS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []  # none yet, or unreadable: the index shows the new cards only
    if not isinstance(saved, dict) or saved.get("run_id") != run_id:
        return []  # another run's reports: not this index's
    known = {f.name for f in fields(kind)}
    cards = []
    for record in saved.get("cards", []):
        if not isinstance(record, dict) or not known >= record.keys():
            continue
        for key in ("ipynb", "html"):
            if record.get(key):
                record[key] = out / record[key]
        if record.get("html") and record["html"].is_file():
            cards.append(kind(**record))
    return cards
