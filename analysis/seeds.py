"""Results over seeds: a per-method table of mean ± sd, and which differences between methods the spread covers.

A study that scores every checkpoint (one row per model, or per model and occluder kind) gets, from
:func:`seed_summary`, one row per method (and per any other grouping column) with, for each metric, the mean
and the sample standard deviation (ddof = 1) over the method's seeds, and the seeds it saw.

The spread rule (:data:`SPREAD_RULE`): a difference between methods a and b in a metric is *within spread*
when ``|mean_a − mean_b| < sd_a + sd_b``. It is deliberately lenient towards "no difference": with three seeds
it calls two methods different only when their one-sd bands do not touch, a rough screen, not a test. A
method seen with one seed has no sd, so none of its differences is judged ("one seed").
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["SPREAD_RULE", "formatted", "has_seeds", "seed_summary", "spread_comparisons", "verdict"]

SPREAD_RULE = ("a difference between methods a and b is 'within spread' when |mean_a − mean_b| < sd_a + sd_b "
               "(sd: sample standard deviation over seeds, ddof 1); 'one seed' when either has a single seed")
WITHIN, BEYOND, ONE_SEED = "within spread", "beyond spread", "one seed"


def has_seeds(table, *, by: str = "method", seed: str = "seed") -> bool:
    """Whether some method of `table` was scored with two or more distinct seeds (then a per-method table
    means something)."""
    if by not in table.columns or seed not in table.columns:
        return False
    known = table[table[by].notna() & table[seed].notna()]
    return bool(len(known)) and int(known.groupby(by)[seed].nunique().max()) >= 2


def verdict(mean_a: float, sd_a: float, mean_b: float, sd_b: float) -> str:
    """The spread rule on two methods' mean and sd: "within spread", "beyond spread" or "one seed" (an sd is
    NaN) — or "one seed" too when a mean is NaN (nothing to compare)."""
    if any(math.isnan(value) for value in (mean_a, sd_a, mean_b, sd_b)):
        return ONE_SEED
    return WITHIN if abs(mean_a - mean_b) < sd_a + sd_b else BEYOND


def seed_summary(table, metrics: Sequence[str], *, by: Sequence[str] = ("method",), seed: str = "seed",
                 baseline: str | None = "none"):
    """One row per group of `by` (a method, or a method and occluder kind): for every metric its mean and sd
    over the group's rows (one per seed).

    Args:
        table: a pandas DataFrame with the `by` columns, `seed` and the metrics (one row per checkpoint and
            whatever else `by` names).
        metrics: the metric columns to aggregate (missing ones are skipped).
        by: grouping columns; the first must be the method. Rows whose method is unknown (None) are left out.
        seed: the seed column.
        baseline: a method to compare every other with (columns ``<metric>_vs_<baseline>`` holding the
            :data:`SPREAD_RULE` verdict, within the same other `by` values); None for no such columns.

    Returns a DataFrame with the `by` columns, ``seeds`` (how many rows), ``seed_list`` (the seeds, sorted, as
    text), ``<metric>_mean`` and ``<metric>_sd`` (NaN with one seed), and the verdict columns; methods in order
    of first appearance.
    """
    import pandas as pd

    by = list(by)
    missing = [column for column in [*by, seed] if column not in table.columns]
    if missing:
        raise ValueError(f"table must have the columns {by + [seed]}, missing {missing}")
    metrics = [metric for metric in metrics if metric in table.columns]
    known = table[table[by[0]].notna()]
    rows = []
    for key, part in known.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        row = dict(zip(by, key))
        seeds = sorted(int(s) for s in part[seed].dropna())
        row["seeds"] = len(part)
        row["seed_list"] = " ".join(map(str, seeds))
        for metric in metrics:
            values = pd.to_numeric(part[metric], errors="coerce").astype(float)
            row[f"{metric}_mean"] = float(values.mean())
            row[f"{metric}_sd"] = float(values.std(ddof=1)) if values.notna().sum() >= 2 else float("nan")
        rows.append(row)
    summary = pd.DataFrame(rows)
    if baseline is not None and len(summary) and baseline in set(summary[by[0]]):
        for metric in metrics:
            column = []
            for _, row in summary.iterrows():
                base = summary[(summary[by[0]] == baseline)
                               & _same(summary, row, by[1:])].iloc[0]
                column.append(None if row[by[0]] == baseline else
                              verdict(row[f"{metric}_mean"], row[f"{metric}_sd"],
                                      base[f"{metric}_mean"], base[f"{metric}_sd"]))
            summary[f"{metric}_vs_{baseline}"] = column
    return summary


def spread_comparisons(summary, metrics: Sequence[str], *, by: Sequence[str] = ("method",)):
    """Every pair of methods (within the same other `by` values) for every metric: the difference of means, the
    summed sd and the :data:`SPREAD_RULE` verdict. A long DataFrame with the other `by` columns, ``metric``,
    ``method_a``, ``method_b``, ``difference`` (a − b), ``spread`` (sd_a + sd_b) and ``verdict``."""
    import pandas as pd

    by = list(by)
    rows = []
    groups = summary.groupby(by[1:], sort=False) if by[1:] else [((), summary)]
    for key, part in groups:
        key = key if isinstance(key, tuple) else (key,)
        records = part.to_dict("records")
        for metric in metrics:
            if f"{metric}_mean" not in part.columns:
                continue
            for i, a in enumerate(records):
                for b in records[i + 1:]:
                    mean_a, sd_a = a[f"{metric}_mean"], a[f"{metric}_sd"]
                    mean_b, sd_b = b[f"{metric}_mean"], b[f"{metric}_sd"]
                    rows.append({**dict(zip(by[1:], key)), "metric": metric, "method_a": a[by[0]],
                                 "method_b": b[by[0]], "difference": mean_a - mean_b, "spread": sd_a + sd_b,
                                 "verdict": verdict(mean_a, sd_a, mean_b, sd_b)})
    return pd.DataFrame(rows)


def _same(summary, row, columns: Sequence[str]):
    import pandas as pd

    mask = pd.Series(True, index=summary.index)
    for column in columns:
        mask &= summary[column] == row[column]
    return mask


def formatted(summary, metrics: Sequence[str], *, by: Sequence[str] = ("method",), digits: int = 3):
    """The per-method table for reading: ``mean ± sd`` text per metric (``mean`` alone with one seed), the
    verdict columns kept."""
    import pandas as pd

    out = summary[[*by, "seeds"]].copy()
    for metric in metrics:
        if f"{metric}_mean" not in summary.columns:
            continue
        out[metric] = [f"{m:.{digits}f}" + ("" if math.isnan(s) else f" ± {s:.{digits}f}")
                       for m, s in zip(summary[f"{metric}_mean"], summary[f"{metric}_sd"])]
        for column in summary.columns:
            if column.startswith(f"{metric}_vs_"):
                out[column] = summary[column].fillna("(baseline)")
    return pd.DataFrame(out)
