"""One statistic for every comparison: paired two-level bootstrap intervals and Holm-corrected verdicts.

A study scores every method on **the same items** (test images, or images under corruption c at severity s)
with one model per seed, and hands :func:`compare` a ``[seeds, items]`` array of per-item outcomes per method
(correctness, confidence, occlusion score, …). :func:`compare` is the one place that says "better", "worse" or
"indistinguishable"; a study never decides that itself.

The bootstrap. Seeds and items are crossed factors (every seed's model sees every item), so each replicate
reweights both, independently — the pigeonhole bootstrap of Owen, "The pigeonhole bootstrap", Ann. Appl.
Stat. 1(2), 2007 (doi:10.1214/07-AOAS122), in the product-weight form of Owen & Eckles, "Bootstrapping data
arrays of arbitrary order", Ann. Appl. Stat. 6(3), 2012, arXiv:1106.2125:

* items: one multinomial count vector ``c_r`` (N draws over the N items) per replicate r, **shared by every
  method** — this is what makes the comparison paired: a replicate that happens to draw many hard images
  draws them for the baseline too, so item difficulty cancels out of the difference;
* seeds: per method and replicate, a multinomial count vector ``k_r`` over the method's own S seeds (seeds of
  different methods are different models, so they are drawn independently). With one seed only items are
  resampled, and the row's ``resampled`` column says so.

The replicate statistic of a method is ``T_r = Σ_s k_r[s] / S · stat(x[s], c_r)``, the seed-weighted average
of each model's item-weighted statistic. For the default statistic, the mean, ``stat(x[s], c_r) = c_r · x[s]
/ N``, so all replicates of all methods are one matrix product ``x @ c.T`` ([Σ seeds, N] × [N, R]); item
counts are drawn in chunks of replicates to bound memory. Replicates are float32 (the counts are exact
integers, and a float32 sum of 10⁴ terms errs by ~1e-7 of the mean, far below any interval's width); point
estimates are float64. What this bootstrap does not fix, stated so nobody is surprised: with S seeds the seed
level's variance comes out (S − 1)/S of the truth (2/3 with three seeds, as for any bootstrap of S values),
while the seed × item interaction (seeds disagreeing on single items) is counted a little more than once, so
intervals are mildly conservative when models disagree item by item (Owen 2007). Measured on simulated
studies (tests/test_analysis_stats.py: 3 seeds, 200 items, a seed effect on the ambiguous items): 94.5 %
coverage of the mean, 94 % of the difference, 97.5 % of identical pairs "indistinguishable". Where the
seed-to-seed spread dominates (seed SE 3× the item SE) coverage with 3 seeds fell to 80 %: no resampling of
three values can fix that; more seeds can.

Intervals are **percentile** intervals at ``level`` (Efron & Tibshirani, "An Introduction to the Bootstrap",
1993, ch. 13); BCa would need a jackknife over seeds and items per method and buys little at these sample
sizes. The difference against the baseline, ``diff = method − baseline``, uses the same replicates for both
(paired). Its two-sided bootstrap p-value is ``p = min(1, 2 · min(1 + #{d_r ≤ 0}, 1 + #{d_r ≥ 0}) / (R + 1))``
— the smallest level at which the percentile interval of the difference would exclude 0, with the usual +1 so
that p is never 0 (its least value is 2/(R + 1)). The verdicts use **Holm's step-down correction** (Holm, "A
simple sequentially rejective multiple test procedure", Scand. J. Statist. 6, 1979) over the family of
non-baseline methods compared in that call, at α = 1 − level: a method is "better" or "worse" (by the sign of
``diff`` and ``higher_is_better``) when its Holm-adjusted p ``p_holm ≤ α``, else "indistinguishable". The
intervals themselves are not adjusted, so a difference interval that just excludes 0 can still be
"indistinguishable" in a large family. Metrics compared in separate calls are separate families.

Statistics that are not means of per-item values (an ECE recomputes its binned statistic on every resample)
go through ``metric=`` (see :func:`compare` and :func:`ece_metric`).

Why not ready-made code. ``scipy.stats.bootstrap`` (vectorised, ``paired=True``, BCa) resamples one level
only: the observations of 1-D samples, so it can resample items but not seeds-within-method and items-across-
methods at once. ``rliable`` (Agarwal et al., "Deep RL at the Edge of the Statistical Precipice",
arXiv:2108.13264) has a stratified bootstrap over runs × tasks, built on the ``arch`` package, that resamples
runs within each task, one algorithm at a time with its own draws — not paired across algorithms, and a Python
loop over replicates. Neither fits, so the resampling here is ~40 lines of torch; the tests check the
one-seed case against ``scipy.stats.bootstrap``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import Tensor

from msda._checks import check_generator, check_int, check_real

__all__ = ["VERDICTS", "compare", "ece_metric", "holm_adjust"]

VERDICTS = ("better", "worse", "indistinguishable")
"""The verdicts of a non-baseline row; the baseline's own row says "baseline"."""

SEEDS_AND_ITEMS, ITEMS_ONLY = "seeds and items", "items only (one seed)"
_CHUNK_ELEMENTS = 1 << 22  # item-count matrix entries per chunk of replicates (16 MiB of float32)

Metric = Callable[[Tensor, Tensor], Tensor]


def compare(outcomes: Mapping[str, object], *, baseline: str | None = "none", higher_is_better: bool = True,
            level: float = 0.95, n_boot: int = 2000, generator=None, metric: Metric | None = None):
    """Per-method bootstrap intervals and paired, Holm-corrected verdicts against a baseline.

    Args:
        outcomes: method name → per-item outcomes, a torch tensor or numpy array (bool, int or float) of shape
            ``[seeds, items]`` (``[items]`` for one seed), **on the same items, in the same order, for every
            method**. Methods may have different seed counts. With ``metric``, ``[seeds, items, ...]``: the
            trailing dims are the fields the metric reads (e.g. confidence and correctness).
        baseline: the method every other is compared with; None for intervals only (diff columns NaN,
            verdict None).
        higher_is_better: False when lower outcomes are better (error, ECE): then a negative diff is "better".
        level: the confidence level of every interval, in (0, 1); the tests are at α = 1 − level.
        n_boot: bootstrap replicates, ≥ 100.
        generator: a ``torch.Generator`` on the outcomes' device or a ``numpy.random.Generator`` (a torch one
            is seeded from it); None means a torch generator seeded with 0, so a report is reproducible as is.
        metric: None for the mean of the per-item outcomes, or ``metric(values, weights) -> [R]`` computing one
            model's statistic under item weights: ``values`` is that model's ``[items, ...]`` slice (float32
            for the replicates, float64 for the point estimate), ``weights`` an ``[R, items]`` tensor of
            multinomial counts (each row sums to the number of items; a row of ones gives the statistic of the
            data as observed). It must be a weighted statistic — integer weights mean repeated items — and be
            vectorised over the R rows. The method's statistic is its seeds' average. See :func:`ece_metric`.

    Returns a pandas DataFrame, one row per method in the input order (the baseline in place), with ``method``,
    ``mean`` (the statistic, averaged over seeds), ``ci_low``, ``ci_high``, ``diff`` (method − baseline),
    ``diff_ci_low``, ``diff_ci_high``, ``p`` (two-sided bootstrap p of diff = 0), ``p_holm`` (Holm-adjusted
    over the non-baseline methods of this call), ``verdict`` (one of :data:`VERDICTS`; "baseline" on the
    baseline's row, whose diff columns are NaN), ``seeds``, ``items`` and ``resampled`` ("seeds and items", or
    "items only (one seed)"). ``DataFrame.attrs`` records level, n_boot, α, the interval and the correction.
    """
    import pandas as pd

    level = check_real("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    n_boot = check_int("n_boot", n_boot, low=100)
    if metric is not None and not callable(metric):
        raise ValueError(f"metric must be None or a callable metric(values, weights) -> [R], got {metric!r}")
    values = _check_outcomes(outcomes, with_fields=metric is not None)
    names = list(values)
    if baseline is not None and baseline not in values:
        raise ValueError(f"baseline {baseline!r} is not among the methods {names}; pass one of them or None")
    device = next(iter(values.values())).device
    generator = _torch_generator(generator, device)
    items = next(iter(values.values())).shape[1]

    point = torch.stack([_point(x, metric) for x in values.values()]).cpu().numpy()
    replicates = _replicates(list(values.values()), n_boot, generator, metric).cpu().double().numpy()  # [M, R]
    alpha = 1.0 - level
    ci = np.quantile(replicates, [alpha / 2, 1 - alpha / 2], axis=1)

    nan = np.full(len(names), np.nan)
    columns = {"diff": nan, "diff_ci_low": nan, "diff_ci_high": nan, "p": nan, "p_holm": nan}
    verdicts = [None] * len(names)
    if baseline is not None:
        base = names.index(baseline)
        others = np.array([m for m in range(len(names)) if m != base], dtype=np.int64)
        diffs = replicates[others] - replicates[base]  # paired: the same replicates for both
        diff_ci = np.quantile(diffs, [alpha / 2, 1 - alpha / 2], axis=1)
        below, above = (diffs <= 0).sum(1), (diffs >= 0).sum(1)
        p = np.minimum(1.0, 2 * (1 + np.minimum(below, above)) / (n_boot + 1))
        p_holm = holm_adjust(p)
        diff = point[others] - point[base]
        for column, value in zip(columns, (diff, diff_ci[0], diff_ci[1], p, p_holm)):
            columns[column] = nan.copy()
            columns[column][others] = value
        good = diff > 0 if higher_is_better else diff < 0
        for m, significant, is_good in zip(others, p_holm <= alpha, good):
            verdicts[m] = ("better" if is_good else "worse") if significant else "indistinguishable"
        verdicts[base] = "baseline"
    table = pd.DataFrame({"method": names, "mean": point, "ci_low": ci[0], "ci_high": ci[1], **columns,
                          "verdict": verdicts})
    table["seeds"] = [x.shape[0] for x in values.values()]
    table["items"] = items
    table["resampled"] = [SEEDS_AND_ITEMS if x.shape[0] > 1 else ITEMS_ONLY for x in values.values()]
    table.attrs.update(level=level, n_boot=n_boot, alpha=alpha, baseline=baseline,
                       higher_is_better=higher_is_better, interval="percentile",
                       correction="holm over the non-baseline methods of the call")
    return table


def holm_adjust(p) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm 1979): sort ascending, multiply the j-th smallest by
    (m − j + 1), carry the running maximum, cap at 1. Rejecting where the adjusted p ≤ α is Holm's test at
    family-wise level α. Returns float64 numpy, in the input order."""
    p = np.asarray(p, dtype=np.float64).reshape(-1)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (len(p) - np.arange(len(p)))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return adjusted


def ece_metric(n_bins: int = 15) -> Metric:
    """Expected calibration error as a ``metric=`` for :func:`compare` (Guo et al., "On Calibration of Modern
    Neural Networks", ICML 2017, arXiv:1706.04599): equal-width confidence bins ((k−1)/B, k/B], ECE =
    Σ_b |Σ_{i∈b} w_i (correct_i − confidence_i)| / Σ_i w_i.

    The outcomes are ``[seeds, items, 2]``: field 0 the confidence of the predicted class in [0, 1], field 1
    whether the prediction was right (0/1). Each resample recomputes the binned statistic; lower is better
    (``higher_is_better=False``)."""
    n_bins = check_int("n_bins", n_bins, low=1)

    def ece(values: Tensor, weights: Tensor) -> Tensor:
        if values.ndim != 2 or values.shape[1] != 2:
            raise ValueError(f"ece_metric reads outcomes [seeds, items, 2] (confidence, correctness); one model's "
                             f"slice has shape {tuple(values.shape)}, expected [items, 2]")
        confidence, correct = values[:, 0], values[:, 1]
        bins = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)
        one_hot = torch.nn.functional.one_hot(bins, n_bins).to(weights.dtype)  # [N, B]
        gaps = weights @ (one_hot * (correct - confidence).to(weights.dtype).unsqueeze(1))  # [R, B]
        return gaps.abs().sum(1) / weights.sum(1)

    return ece


def _replicates(values: list[Tensor], n_boot: int, generator: torch.Generator, metric: Metric | None) -> Tensor:
    """[M, n_boot] replicate statistics: per chunk of replicates one shared item-count matrix, then each
    method's per-seed statistics weighted by its own seed counts."""
    items, device = values[0].shape[1], values[0].device
    data = [x.float() for x in values]
    stacked = torch.cat(data) if metric is None else None  # [Σ seeds, N]: every method in one matmul
    splits = [x.shape[0] for x in data]
    chunk = max(1, min(n_boot, _CHUNK_ELEMENTS // items))
    out = []
    for start in range(0, n_boot, chunk):
        rows = min(chunk, n_boot - start)
        counts = _multinomial_counts(rows, items, generator, device)  # [R, N]
        if metric is None:
            per_seed = (stacked @ counts.T).div_(items).split(splits)  # [S_m, R] each
        else:
            per_seed = [torch.stack([_call(metric, x[s], counts) for s in range(x.shape[0])]) for x in data]
        out.append(torch.stack([_seed_average(y, generator) for y in per_seed]))
    return torch.cat(out, dim=1)


def _seed_average(per_seed: Tensor, generator: torch.Generator) -> Tensor:
    """[S, R] per-seed replicates → [R], each replicate averaging its own multinomial draw of the S seeds."""
    seeds, rows = per_seed.shape
    if seeds == 1:
        return per_seed[0]
    weights = _multinomial_counts(rows, seeds, generator, per_seed.device)  # [R, S]
    return (weights * per_seed.T).sum(1) / seeds


def _multinomial_counts(rows: int, size: int, generator: torch.Generator, device) -> Tensor:
    """[rows, size] float32 counts: each row the histogram of `size` uniform draws with replacement."""
    draws = torch.randint(size, (rows, size), generator=generator, device=device)
    counts = torch.zeros(rows, size, device=device)
    return counts.scatter_add_(1, draws, torch.ones((), device=device).expand(rows, size))


def _point(values: Tensor, metric: Metric | None) -> Tensor:
    """The statistic of the data as observed: per seed, then averaged over seeds (float64)."""
    values = values.double()
    if metric is None:
        return values.mean()
    ones = torch.ones(1, values.shape[1], dtype=torch.float64, device=values.device)
    return torch.cat([_call(metric, x, ones) for x in values]).double().mean()


def _call(metric: Metric, values: Tensor, weights: Tensor) -> Tensor:
    result = metric(values, weights)
    if not isinstance(result, Tensor) or tuple(result.shape) != (weights.shape[0],):
        shape = tuple(result.shape) if isinstance(result, Tensor) else type(result).__name__
        raise ValueError(f"metric must return a tensor of shape [{weights.shape[0]}] (one value per weight row), "
                         f"got {shape}")
    return result


def _check_outcomes(outcomes, *, with_fields: bool) -> dict[str, Tensor]:
    """Every method's outcomes as a floating [S, N, ...] tensor on the first one's device, checked."""
    if not isinstance(outcomes, Mapping) or not outcomes:
        shown = "an empty mapping" if isinstance(outcomes, Mapping) else type(outcomes).__name__
        raise ValueError(f"outcomes must be a non-empty mapping method → [seeds, items] outcomes, got {shown}")
    shape_text = "[seeds, items, ...]" if with_fields else "[seeds, items] or [items]"
    values, device = {}, None
    for name, value in outcomes.items():
        try:
            tensor = value.detach() if isinstance(value, Tensor) else torch.as_tensor(np.asarray(value))
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"outcomes[{name!r}] must be a numeric {shape_text} tensor or array, got "
                             f"{type(value).__name__}") from None
        if tensor.dtype == torch.bool or not (tensor.is_floating_point() or tensor.dtype.is_complex):
            tensor = tensor.to(torch.float64)
        if tensor.dtype.is_complex:
            raise ValueError(f"outcomes[{name!r}] must be real, got dtype {tensor.dtype}")
        if not with_fields and tensor.ndim == 1:
            tensor = tensor.unsqueeze(0)
        if (tensor.ndim != 2) if not with_fields else (tensor.ndim < 2):
            raise ValueError(f"outcomes[{name!r}] must have shape {shape_text}, got shape {tuple(tensor.shape)}")
        if tensor.numel() == 0:
            raise ValueError(f"outcomes[{name!r}] is empty (shape {tuple(tensor.shape)}); every method needs at "
                             f"least 1 seed and 2 items")
        if tensor.shape[1] < 2:
            raise ValueError(f"outcomes[{name!r}] has {tensor.shape[1]} item; at least 2 items are needed")
        bad = ~torch.isfinite(tensor)
        if bool(bad.any()):
            where = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(f"outcomes[{name!r}] has a non-finite value at index {where}; outcomes must be "
                             f"finite (no NaN or inf)")
        device = tensor.device if device is None else device
        values[name] = tensor.to(device)
    first = next(iter(values))
    for name, tensor in values.items():
        if tensor.shape[1:] != values[first].shape[1:]:
            raise ValueError(f"outcomes must score every method on the same items (paired): {name!r} has shape "
                             f"{tuple(tensor.shape)} (items {tensor.shape[1]}), {first!r} has "
                             f"{tuple(values[first].shape)} (items {values[first].shape[1]})")
    return values


def _torch_generator(generator, device) -> torch.Generator:
    if isinstance(generator, np.random.Generator):
        seed = int(generator.integers(0, 2**63 - 1))
        return torch.Generator(device=device).manual_seed(seed)
    if generator is None:
        return torch.Generator(device=device).manual_seed(0)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, a numpy.random.Generator or None, got "
                         f"{type(generator).__name__}")
    return check_generator(generator, device)
