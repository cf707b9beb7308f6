"""Per-method verdicts of a study from its per-item outcomes: :func:`analysis.stats.compare` per metric, and
whether each verdict replicates on a second, independent test split.

Every study (clean accuracy, occlusion, robustness) keeps, per model, the outcome of every item
(:mod:`analysis.outcomes`) and hands them here grouped by method, one ``[seeds, items]`` array per method.
This module only arranges them and reads :func:`~analysis.stats.compare`'s table: it never decides "better" or
"worse" itself.

* :func:`by_method` stacks each method's models (its seeds, ordered by seed) into ``[seeds, items]``.
* :func:`verdict_table` runs :func:`~analysis.stats.compare` on one metric, first dropping every item that is
  undefined (NaN) for *any* model, so the comparison stays paired; the table says how many items it kept.
* :func:`with_replication` adds the replication split's difference, interval and verdict to the first split's
  table, and ``replicated``: the verdict is the same on both splits.
* :func:`vs_baseline` is the manifest's per-method record, ``{"method", "diff", "ci", "p", "verdict",
  "replicated"}``.

:data:`INTERVAL_NOTE` is the one line every page and report prints beside its intervals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from .stats import compare

__all__ = ["INTERVAL_NOTE", "by_method", "ci_text", "formatted", "method_table", "metrics_records", "per_item_mean",
           "verdict_table", "vs_baseline", "wants_method_table", "with_replication"]

INTERVAL_NOTE = ("Intervals are 95 % paired bootstrap intervals over seeds and test images (analysis.stats.compare); "
                 "a verdict against `none` is \"better\" or \"worse\" only when the difference's Holm-corrected "
                 "p ≤ 0.05 over the methods compared, else \"indistinguishable\".")
"""What an interval and a verdict mean, in one line, for the pages and reports."""

N_BOOT = 2000
"""Bootstrap replicates of every study's verdicts."""


def by_method(outcomes: Mapping[str, Tensor], methods: Mapping[str, str | None],
              seeds: Mapping[str, int | None] | None = None) -> dict[str, Tensor]:
    """method → float64 ``[seeds, items, ...]``: the per-item outcomes of each method's models stacked in seed
    order (models without a method are left out), methods in name order — the bootstrap draws each method's seed
    resamples in turn, so a table must not depend on the order its checkpoints were listed in.

    Args:
        outcomes: model name → ``[items, ...]`` outcomes (bool, integer or float), the same items for every model.
        methods: model name → its method (a checkpoint's metadata); None leaves the model out.
        seeds: model name → its seed, for the order of the rows (default: the order of `outcomes`).
    """
    grouped: dict[str, list[tuple[float, Tensor]]] = {}
    for position, (model, values) in enumerate(outcomes.items()):
        method = methods.get(model)
        if method is None:
            continue
        seed = (seeds or {}).get(model)
        order = position if seed is None else seed
        grouped.setdefault(method, []).append((order, torch.as_tensor(values).double()))
    return {method: torch.stack([values for _, values in sorted(grouped[method], key=lambda row: row[0])])
            for method in sorted(grouped)}


def verdict_table(per_method: Mapping[str, Tensor], *, baseline: str | None = "none",
                  higher_is_better: bool = True, n_boot: int = N_BOOT, seed: int = 0):
    """:func:`analysis.stats.compare` on one metric's ``[seeds, items]`` outcomes per method, after dropping the
    items that are NaN for any model (paired: every method keeps the same items).

    Returns compare's DataFrame (``mean``, ``ci_low``, ``ci_high``, ``diff``, ``diff_ci_low``, ``diff_ci_high``,
    ``p``, ``p_holm``, ``verdict``, ``seeds``, ``items``, …) with ``items_dropped`` added; a baseline missing
    from `per_method` compares nothing (intervals only). ValueError when no item is defined for every model.
    """
    if not per_method:
        raise ValueError("per_method must name at least one method with outcomes [seeds, items]")
    defined = None
    for values in per_method.values():
        finite = torch.isfinite(values).reshape(values.shape[0], values.shape[1], -1).all(2).all(0)
        defined = finite if defined is None else defined & finite
    kept = int(defined.sum())
    if kept < 2:
        raise ValueError(f"only {kept} item(s) are defined (not NaN) for every model; a comparison needs ≥ 2")
    values = {method: x[:, defined] for method, x in per_method.items()}
    table = compare(values, baseline=baseline if baseline in values else None, higher_is_better=higher_is_better,
                    n_boot=n_boot, generator=torch.Generator().manual_seed(seed))
    table["items_dropped"] = int(defined.numel()) - kept
    return table


def with_replication(table, replication):
    """`table` (the first split's :func:`verdict_table`) with the replication split's ``rep_mean``,
    ``rep_diff``, ``rep_diff_ci_low``, ``rep_diff_ci_high``, ``rep_p_holm``, ``rep_verdict`` and
    ``replicated`` (the same verdict on both splits; None on the baseline's row), matched by method."""
    out = table.copy()
    rep = replication.set_index("method")
    for column in ("mean", "diff", "diff_ci_low", "diff_ci_high", "p_holm", "verdict"):
        out[f"rep_{column}"] = [rep[column].get(method) if method in rep.index else None for method in out["method"]]
    out["replicated"] = [None if verdict in ("baseline", None) else
                         (rep_verdict is not None and verdict == rep_verdict)
                         for verdict, rep_verdict in zip(out["verdict"], out["rep_verdict"])]
    return out


def vs_baseline(row: Mapping, baseline: str = "none") -> dict | None:
    """The manifest's record of one method row of :func:`verdict_table` (or :func:`with_replication`):
    ``{"method": baseline, "diff", "ci": [low, high], "p" (Holm-adjusted), "verdict", "replicated"}``; None on
    the baseline's own row or without a baseline."""
    verdict = row.get("verdict")
    if verdict in (None, "baseline"):
        return None
    record = {"method": baseline, "diff": _number(row.get("diff")),
              "ci": [_number(row.get("diff_ci_low")), _number(row.get("diff_ci_high"))],
              "p": _number(row.get("p_holm")), "verdict": verdict}
    if "replicated" in row:
        replicated = row.get("replicated")
        record["replicated"] = None if replicated is None else bool(replicated)
    return record


def ci_text(mean: float, low: float, high: float, *, scale: float = 1.0, digits: int = 2, sign: bool = False) -> str:
    """``"94.30 [93.8, 94.8]"``: a value and its interval, scaled (100 for %), for tables and labels."""
    if any(value is None or (isinstance(value, float) and math.isnan(value)) for value in (mean, low, high)):
        return "–"
    head = f"{scale * mean:+.{digits}f}" if sign else f"{scale * mean:.{digits}f}"
    lo, hi = (f"{scale * v:+.{digits}f}" if sign else f"{scale * v:.{digits}f}" for v in (low, high))
    return f"{head} [{lo}, {hi}]"


def per_item_mean(values: Tensor, copies: int) -> Tensor:
    """[items, copies] (or [items·copies], item-major) → float64 [items]: each item's mean over its copies,
    NaN left out (an item whose copies are all NaN stays NaN). The occlusion study's items are images, each with
    several occluded copies that share the image's difficulty, so the bootstrap resamples images, not copies."""
    return values.double().reshape(-1, copies).nanmean(-1)


def _number(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def metrics_records(tables: Mapping[str, object], methods: Sequence[str], baseline: str = "none") -> dict:
    """method → {metric → {"mean", "ci", "vs_baseline"}} from one :func:`verdict_table` (or
    :func:`with_replication`) per metric — the per-method block of a study report and of the manifest."""
    out: dict[str, dict] = {method: {} for method in methods}
    for metric, table in tables.items():
        for row in table.to_dict("records"):
            if row["method"] not in out:
                continue
            out[row["method"]][metric] = {"mean": _number(row["mean"]),
                                          "ci": [_number(row["ci_low"]), _number(row["ci_high"])],
                                          "vs_baseline": vs_baseline(row, baseline)}
    return out


def wants_method_table(methods: Mapping[str, str | None]) -> bool:
    """Whether a study's models (model → method, None when unknown) make a per-method table: two methods or more,
    or one method with several models (its seeds)."""
    known = [method for method in methods.values() if method is not None]
    return len(set(known)) >= 2 or len(known) > len(set(known))


def method_table(cells: Mapping[tuple[tuple, str], Mapping[str, Tensor]], *, methods: Mapping[str, str | None],
                 seeds: Mapping[str, int | None] | None = None, higher_is_better: Mapping[str, bool],
                 by: Sequence[str] = (), replication: Mapping[tuple[tuple, str], Mapping[str, Tensor]] | None = None,
                 baseline: str = "none", n_boot: int = N_BOOT):
    """The per-method table of a study: one row per method (and per value of the `by` columns, e.g. the
    occluder kind), for every metric its mean over seeds and items with a 95 % interval and, against
    `baseline`, the paired difference, its interval, the Holm-adjusted p and compare()'s verdict.

    Args:
        cells: (group, metric) → {model → per-item outcomes [items]}: `group` is a tuple of the `by` values
            (``()`` without `by`); every model of a cell on the same items.
        methods, seeds: model → method (None: left out) and seed (the row order within a method).
        higher_is_better: metric → direction of "better" (a metric missing here is compared as higher-is-better).
        by: names of the group columns.
        replication: the same cells on an independent test split; adds ``<m>_rep_diff``, ``<m>_rep_vs_<baseline>``
            and ``<m>_replicated`` (the same verdict on both splits).

    Returns a DataFrame with ``method``, the `by` columns, ``seeds``, ``seed_list`` and per metric ``<m>_mean``,
    ``<m>_ci_low``, ``<m>_ci_high``, ``<m>_diff``, ``<m>_diff_ci_low``, ``<m>_diff_ci_high``, ``<m>_p`` (Holm)
    and ``<m>_vs_<baseline>`` (the verdict; "baseline" on the baseline's row); a cell with fewer than two items
    defined for every model is left out. Methods in order of first appearance.
    """
    import pandas as pd

    rows: dict[tuple, dict] = {}
    order = list(dict.fromkeys(method for method in methods.values() if method is not None))
    for (group, metric), outcomes in cells.items():
        per_method = by_method(outcomes, methods, seeds)
        try:
            table = verdict_table(per_method, baseline=baseline, higher_is_better=higher_is_better.get(metric, True),
                                  n_boot=n_boot)
            if replication is not None and (group, metric) in replication:
                table = with_replication(table, verdict_table(by_method(replication[group, metric], methods, seeds),
                                                              baseline=baseline, n_boot=n_boot,
                                                              higher_is_better=higher_is_better.get(metric, True)))
        except ValueError:  # nothing defined for every model (e.g. localisation without object masks)
            continue
        for record in table.to_dict("records"):
            key = (record["method"], *group)
            row = rows.setdefault(key, {"method": record["method"], **dict(zip(by, group)),
                                        "seeds": int(record["seeds"]), "seed_list": _seed_list(
                                            [seeds.get(m) if seeds else None for m, x in methods.items()
                                             if x == record["method"] and m in outcomes])})
            row.update({f"{metric}_mean": record["mean"], f"{metric}_ci_low": record["ci_low"],
                        f"{metric}_ci_high": record["ci_high"], f"{metric}_diff": record["diff"],
                        f"{metric}_diff_ci_low": record["diff_ci_low"], f"{metric}_diff_ci_high": record["diff_ci_high"],
                        f"{metric}_p": record["p_holm"], f"{metric}_vs_{baseline}": record["verdict"]})
            if "replicated" in record:
                row.update({f"{metric}_rep_diff": record["rep_diff"],
                            f"{metric}_rep_vs_{baseline}": record["rep_verdict"],
                            f"{metric}_replicated": record["replicated"]})
    ordered = sorted(rows.values(), key=lambda row: (order.index(row["method"]),
                                                     *(str(row.get(column)) for column in by)))
    if by:  # keep the groups in the order the cells came in, within a method
        groups = list(dict.fromkeys(group for group, _ in cells))
        ordered.sort(key=lambda row: (order.index(row["method"]), groups.index(tuple(row[c] for c in by))))
    return pd.DataFrame(ordered)


def _seed_list(seeds: list) -> str:
    known = sorted(int(seed) for seed in seeds if seed is not None)
    return " ".join(map(str, known))


def formatted(table, metrics: Sequence[str], *, by: Sequence[str] = ("method",), digits: int = 3,
              scale: float = 1.0, baseline: str = "none"):
    """A per-method table of :func:`method_table` for reading: per metric ``mean [low, high]`` and its verdict
    against the baseline (``<m> vs none``), plus ``replicated`` columns when the table has them."""
    import pandas as pd

    out = table[[*by, "seeds"]].copy()
    for metric in metrics:
        if f"{metric}_mean" not in table.columns:
            continue
        out[metric] = [ci_text(m, lo, hi, scale=scale, digits=digits) for m, lo, hi in
                       zip(table[f"{metric}_mean"], table[f"{metric}_ci_low"], table[f"{metric}_ci_high"])]
        out[f"{metric} vs {baseline}"] = table[f"{metric}_vs_{baseline}"].fillna("")
        if f"{metric}_replicated" in table.columns:
            out[f"{metric} replicated"] = ["" if value is None or value != value else ("yes" if value else "no")
                                           for value in table[f"{metric}_replicated"]]
    return pd.DataFrame(out)
