"""Why a run has no sample: the reasons stored with its rows, the conditions that make
rows not comparable, and what is absent. Mixed into :class:`virtbench.dataset.Dataset`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from virtbench.conditions import DEFAULTS, NOT_COMPARABLE, Conditions, parse_conditions, wanted

NOT_IN_DATASET = "not in this dataset"


def _join_reasons(reasons: Iterable[str], keep: int = 2) -> str:
    """Distinct non-empty reasons, the first ``keep`` in full, then how many more."""
    found = [r for r in dict.fromkeys(reasons) if r]
    text = "; ".join(found[:keep])
    return text + (f" (+{len(found) - keep} other reasons)" if len(found) > keep else "")


class Reasons:
    """Why-not-measured answers of a :class:`~virtbench.dataset.Dataset` (its ``df`` and
    ``rows``)."""

    def row_reason(self, variant: str, metric: str, experiment: str | None = None) -> str:
        """The reason stored with the rows of ``metric`` (or, when the variant measured
        nothing in ``experiment``, with its rows there: an unavailable or failed variant);
        "" when the dataset gives none."""
        index = self._reasons()
        for part in metric.split("+"):
            found = _join_reasons(index.get((variant, part, experiment), ())
                                  if index is not None else
                                  self.rows(variant, part, experiment)["reason"])
            if found:
                return found
        if experiment is not None:
            if index is not None:
                reasons, measured = index.get((variant, None, experiment), ((), True))
                return "" if measured else _join_reasons(reasons)
            rows = self.rows(variant, None, experiment)
            if len(rows) and rows["value"].notna().sum() == 0:
                return _join_reasons(rows["reason"])
        return ""

    def _reasons(self) -> dict[tuple, tuple] | None:
        """The distinct reasons of the rows of each (variant, metric, experiment) and
        (variant, metric, any experiment), and of each (variant, None, experiment) with
        whether any of those rows has a value; the run's rows read once (None: a frame
        without the columns, read per request)."""
        self._indexes()
        if self._reason_index is None and {"experiment", "reason"} <= set(self.df.columns):
            df = self.df
            by: dict[tuple, dict] = {}
            in_experiment: dict[tuple, list] = {}
            for v, m, e, why, value in zip(df["variant"].to_numpy(), df["metric"].to_numpy(),
                                           df["experiment"].to_numpy(),
                                           df["reason"].to_numpy(), df["value"].notna(),
                                           strict=True):
                by.setdefault((v, m, e), {})[why] = None
                by.setdefault((v, m, None), {})[why] = None
                entry = in_experiment.setdefault((v, None, e), [{}, False])
                entry[0][why] = None
                entry[1] = entry[1] or bool(value)
            self._reason_index = {k: tuple(d) for k, d in by.items()}
            self._reason_index.update({k: (tuple(d), measured)
                                       for k, (d, measured) in in_experiment.items()})
        return self._reason_index

    def not_comparable(self, variant: str, metric: str, experiment: str | None = None,
                       conditions: Conditions | None = None) -> str:
        """Why the measured rows of ``metric`` that ``conditions`` leave out are not
        comparable (:data:`NOT_COMPARABLE`, e.g. "in-memory filesystem, not a host directory
        (fs=memory)"); "" when no such rows were left out."""
        found = []
        for part in metric.split("+"):
            for text in self._measured_conditions(variant, part, experiment):
                cond = parse_conditions(text)
                if wanted(cond, conditions):
                    continue
                found += [f"{why} ({k}={v})" for (k, v), why in NOT_COMPARABLE.items()
                          if cond.get(k, DEFAULTS.get(k)) == v]
        return "; ".join(dict.fromkeys(found))

    def _measured_conditions(self, variant: str, metric: str, experiment: str | None
                             ) -> list[str]:
        """The distinct conditions of the rows of ``metric`` with a value, in the order they
        first come; the run's rows are read once for every (variant, metric, experiment)."""
        self._indexes()
        if self._conditions is None:
            df = self.df
            if "experiment" not in df.columns:
                r = self.rows(variant, metric, experiment)
                return list(r.loc[r["value"].notna(), "conditions"].unique())
            has = df["value"].notna().to_numpy()
            by: dict[tuple, dict[str, None]] = {}
            for v, m, e, c in zip(df["variant"].to_numpy()[has], df["metric"].to_numpy()[has],
                                  df["experiment"].to_numpy()[has],
                                  df["conditions"].to_numpy()[has], strict=True):
                by.setdefault((v, m, e), {})[c] = None
                by.setdefault((v, m, None), {})[c] = None
            self._conditions = {k: list(v) for k, v in by.items()}
        return self._conditions.get((variant, metric, experiment), [])

    def _why_empty(self, variant: str, metric: str, experiment: str | None,
                   conditions: Conditions | None) -> str:
        """The text of a summary line with no sample: not comparable, or not measured and
        why (naming the asked conditions when other conditions were measured)."""
        excluded = self.not_comparable(variant, metric, experiment, conditions)
        if excluded:
            return f"not comparable: {excluded}"
        why = self.row_reason(variant, metric, experiment)
        if not why and conditions:
            r = self.rows(variant, metric, experiment)
            if r["value"].notna().any():
                asked = ", ".join(f"{k}={v if isinstance(v, str) else '|'.join(v)}"
                                  for k, v in sorted(conditions.items()))
                why = f"{NOT_IN_DATASET} ({variant} has no {metric} rows with {asked})"
        return "not measured: " + (why or self.reason(variant, metric, experiment))

    def reason(self, variant: str, metric: str, experiment: str | None = None) -> str:
        """Why ``metric`` has no value for ``variant``: the rows' reason, else what is absent."""
        return self.row_reason(variant, metric, experiment) or self.absent(
            variant, [metric], [experiment] if experiment else [])

    def absent(self, variant: str, metrics: Sequence[str], experiments: Sequence[str]) -> str:
        """The "not in this dataset" reason, naming what is missing."""
        if not len(self.rows(variant)):
            return f"{NOT_IN_DATASET} (no rows for {variant})"
        exps = [e for e in dict.fromkeys(experiments) if e]
        if exps and not any(len(self.rows(variant, None, e)) for e in exps):
            return f"{NOT_IN_DATASET} (no {' / '.join(exps)} rows for {variant})"
        return f"{NOT_IN_DATASET} ({variant} has no {' / '.join(dict.fromkeys(metrics))} rows)"

    def kernel_reason(self, variant: str, metric: str, kernel: str,
                      experiment: str = "cpu") -> str:
        """Why ``variant`` has no ``metric`` samples of one cpu kernel."""
        rows = self.rows(variant, metric, experiment)
        rows = rows[np.array([wanted(parse_conditions(c), {"kernel": kernel})
                              for c in rows["conditions"]], dtype=bool)]
        found = _join_reasons(rows["reason"])
        if found:
            return found
        if len(rows) or not len(self.rows(variant, None, experiment)):
            return self.reason(variant, metric, experiment)
        return f"{NOT_IN_DATASET} ({variant} has no {metric} rows of kernel {kernel})"
