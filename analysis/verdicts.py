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

import numpy as np
import torch
from torch import Tensor

from .stats import compare

__all__ = ["INTERVAL_NOTE", "by_method", "ci_text", "verdict_table", "vs_baseline", "with_replication"]

INTERVAL_NOTE = ("Intervals are 95 % paired bootstrap intervals over seeds and test images (analysis.stats.compare); "
                 "a verdict against `none` is \"better\" or \"worse\" only when the difference's Holm-corrected "
                 "p ≤ 0.05 over the methods compared, else \"indistinguishable\".")
"""What an interval and a verdict mean, in one line, for the pages and reports."""

N_BOOT = 2000
"""Bootstrap replicates of every study's verdicts."""


def by_method(outcomes: Mapping[str, Tensor], methods: Mapping[str, str | None],
              seeds: Mapping[str, int | None] | None = None) -> dict[str, Tensor]:
    """method → float64 ``[seeds, items, ...]``: the per-item outcomes of each method's models stacked in seed
    order (models without a method are left out), methods in order of first appearance.

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
    return {method: torch.stack([values for _, values in sorted(rows, key=lambda row: row[0])])
            for method, rows in grouped.items()}


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
    """[..., items·copies] → [..., items]: each item's mean over its `copies` consecutive values (NaN-aware:
    an item whose copies are all NaN stays NaN). The occlusion study's items are images, each with several
    occluded copies that share the image's difficulty, so the bootstrap resamples images, not copies."""
    values = values.double().reshape(*values.shape[:-1], -1, copies)
    return values.nanmean(-1)


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


def finite(array) -> np.ndarray:
    """float64 numpy copy of `array` with NaN where it was not finite (for JSON-safe tables)."""
    out = np.asarray(array, dtype=np.float64).copy()
    out[~np.isfinite(out)] = np.nan
    return out
