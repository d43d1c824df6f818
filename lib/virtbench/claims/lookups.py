"""Look-ups remembered within one claims check of a dataset (claims share their picks)."""

from __future__ import annotations

from virtbench.dataset import Dataset

#: Where a dataset keeps the look-ups of the check under way (an attribute of its own).
MEMO = "_claims_memo"


def memo_of(ds: Dataset) -> dict:
    """A cache of look-ups for one check of ``ds`` (emptied when its rows change)."""
    held = ds.__dict__.get(MEMO)
    if held is None or held[0] is not ds.df:
        held = (ds.df, {})
        ds.__dict__[MEMO] = held
    return held[1]


def forget(ds: Dataset) -> None:
    """Drop the look-ups of ``ds`` (they are remembered within one check only)."""
    ds.__dict__.pop(MEMO, None)
