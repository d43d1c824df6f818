"""The claims check: published rows against the measurements that answer them.

The mapping is data: ``papers/claims.toml`` (:func:`load_map` reads and validates it against
the published CSVs and the metric catalog). :func:`check` turns it into one line per
(published row, variant, workload, conditions): the claim in the measured unit, the
measured median with its CI, and a verdict under the verdict policy
(:class:`virtbench.stats.Policy`). :func:`claim_verdicts` gives one verdict per published
claim and platform family; :func:`tally` and :func:`headline` count those. Nothing is
guessed: a missing measurement reads "not measured: <reason>".

One job per module, each importing only those before it:

- ``model``: the map's data (claims, readings, picks); ``transforms``: what a pick turns
  its samples into; ``outcomes``: the verdict families and their order
- ``requirements``: the like-for-like rules (what a line must meet to answer a claim)
- ``pubrows``: the published rows a mapping selects, as claims; ``units``: a claim in the
  measured unit
- ``claimmap``: read and validate ``papers/claims.toml``; the claims of a notebook, an
  aspect or a source (``claims_for``, ``keys_for``)
- ``lookups``, ``versions``, ``measure``: the rows that answer a pick, their code versions
- ``lines``: the judged lines of one claim and variant; ``checktable``: the whole table
- ``verdicts``: one verdict per claim and family, and the tally; ``present``: for readers
  (the headline, the display table, the cells of a verdict or capability matrix)
"""

from __future__ import annotations

from typing import Any

from virtbench import stats
from virtbench.claims.checktable import check
from virtbench.claims.claimmap import (
    claim_map,
    claims_for,
    coverage,
    keys_for,
    load_map,
    map_inputs,
)
from virtbench.claims.lines import check_variant as _check_variant
from virtbench.claims.model import ClaimMapError, ClaimMapFile
from virtbench.claims.outcomes import CONTEXT, DECIDED, UNSETTLED, VERDICT_ORDER, verdict_class
from virtbench.claims.present import (
    MAP_RULES,
    aspect_selectors,
    aspect_verdicts,
    capability_matrix,
    display_table,
    evidence_found,
    evidence_shares,
    headline,
    lines_for,
    matrix_cell_text,
    matrix_table,
    policy_markdown,
    to_records,
)
from virtbench.claims.pubrows import PublishedClaim as _Claim
from virtbench.claims.pubrows import published_rows
from virtbench.claims.requirements import unmet
from virtbench.claims.transforms import TRANSFORMS
from virtbench.claims.units import MAGNITUDES
from virtbench.claims.units import unit_readings as _readings
from virtbench.claims.verdicts import claim_verdicts, tally
from virtbench.dataset import BASELINE, Dataset, host_line
from virtbench.patterns import selected
from virtbench.reasons import NOT_IN_DATASET

#: The names used as ``claims.X`` by the rest of the package, the notebooks and the tests
#: (``_Claim``, ``_readings`` and ``_check_variant`` are reached by tests only).
__all__ = [
    "BASELINE", "CONTEXT", "DECIDED", "MAGNITUDES", "MAP_RULES", "NOT_IN_DATASET",
    "TRANSFORMS", "UNSETTLED", "VERDICT_ORDER", "ClaimMapError", "ClaimMapFile", "Dataset",
    "_Claim", "_check_variant", "_readings", "aspect_selectors", "aspect_verdicts",
    "capability_matrix", "check", "claim_map", "claim_verdicts", "claims_for", "coverage",
    "display_table", "evidence_found", "evidence_shares", "headline", "host_line",
    "keys_for", "lines_for", "load_map", "map_inputs", "matrix_cell_text", "matrix_table",
    "policy_markdown", "published_rows", "selected", "stats", "tally", "to_records", "unmet",
    "verdict_class",
]


def __getattr__(name: str) -> Any:
    """``CLAIMS``, ``SYSTEMS``, ``NOT_HERE``: the shipped map's parts, loaded on first use."""
    if name in ("CLAIMS", "SYSTEMS", "NOT_HERE"):
        cmf = claim_map()
        return {"CLAIMS": cmf.claims, "SYSTEMS": cmf.systems, "NOT_HERE": cmf.not_here}[name]
    if name in ("STARTUP_PICKS", "COLD_PICKS"):
        key = "seed:core:startup" if name == "STARTUP_PICKS" else "seed:chart:summary"
        return next(cm.picks for cm in claim_map().claims if cm.key == key)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
