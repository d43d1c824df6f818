"""The verdict families: which give a verdict, their order from most to least informative,
and the family of a verdict's text."""

from __future__ import annotations

from virtbench import rankings

# verdict families; the first group gives a verdict, the rest do not
DECIDED = ("consistent", "higher than claimed", "lower than claimed", "not confirmed here",
           "more than claimed", rankings.SAME, rankings.DIFFERS)
VERDICT_ORDER = (*DECIDED, "mixed", "depends on the reading", "several code versions",
                 "inconclusive", rankings.TIED, "not comparable", "not measured",
                 "not measurable here")
#: Claim-level verdicts of claims that were answered but get no single verdict.
UNSETTLED = ("depends on the reading", "several code versions")
CONTEXT = "context: "


def verdict_class(verdict: str) -> str:
    """The verdict's family (the text before any ':', '(' or detail)."""
    for v in VERDICT_ORDER:
        if str(verdict).startswith(v):
            return v
    return str(verdict).split(":")[0]
