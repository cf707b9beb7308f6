"""Tables of robustness results: one row per model (the summary), one row per count (the long table), and
the AlexNet-normalised Corruption Errors of ImageNet-C.

Metrics of Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019, arXiv:1903.12261 (CE, mCE and relative mCE are computed by
:mod:`analysis.robust_metrics`, which cites the AlexNet errors it normalises by); FGSM of Goodfellow et al.,
ICLR 2015, arXiv:1412.6572.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from ..corruptions import BENCHMARK_CORRUPTIONS, CORRUPTION_GROUPS, CORRUPTIONS
from ..robust_metrics import corruption_errors, mce, relative_corruption_errors, relative_mce
from .evaluate import FGSMCurve, RobustnessResults

GROUP_OF: dict[str, str] = {name: group for group, names in CORRUPTION_GROUPS.items() for name in names}
"""Corruption → its group in :data:`analysis.CORRUPTION_GROUPS`."""

SUMMARY_COLUMNS: dict[str, str] = {
    "clean_error": "top-1 error on the clean images",
    "corrupted_accuracy": "mean accuracy over every corruption × severity evaluated",
    "mean_corrupted_accuracy_15": "mean accuracy over the 15 benchmark corruptions × the severities evaluated "
                                  "(empty unless all 15 were evaluated)",
    "mean_corrupted_accuracy_19": "the same over all 19 corruptions",
    **{f"accuracy_{group}": f"mean accuracy over the {group} group ({', '.join(names)})"
       for group, names in CORRUPTION_GROUPS.items()},
    "mce": "mean Corruption Error over the 15 benchmark corruptions, each CE_c = Σ_s E_{s,c} / Σ_s E^AlexNet_{s,c} "
           "(1.0 = AlexNet; ImageNet-C only, all 5 severities needed)",
    "relative_mce": "mean relative CE, Σ_s (E_{s,c} − E_clean) / Σ_s (E^AlexNet_{s,c} − E^AlexNet_clean) "
                    "(ImageNet-C only; needs the clean error)",
}
"""Column → meaning, for the summary table."""


def summarise(results: RobustnessResults, *, alexnet: bool = False):
    """One row per model: clean error, mean corrupted accuracies and group accuracies; with `alexnet`
    (ImageNet-C) also mCE and relative mCE.

    Means are over the (corruption, severity) cells evaluated, each cell weighted equally — with all five
    severities these are :func:`analysis.robust_metrics.mean_corrupted_accuracy` and
    :func:`~analysis.robust_metrics.group_accuracies`. A mean whose corruptions were not all evaluated is
    NaN, as are mCE (needs the 15 benchmark corruptions at all 5 severities) and relative mCE (also needs
    the clean error).

    Returns a pandas DataFrame with columns ``model`` and those of :data:`SUMMARY_COLUMNS` (``mce`` and
    ``relative_mce`` only with `alexnet`).
    """
    import pandas as pd

    accuracy = results.accuracies()  # [M, C, S]
    clean = results.clean_errors()
    index = {name: i for i, name in enumerate(results.corruptions)}

    def mean_over(names) -> torch.Tensor | None:
        if not all(name in index for name in names):
            return None
        return accuracy[:, [index[name] for name in names]].mean((1, 2))

    columns = {"clean_error": clean, "corrupted_accuracy": accuracy.mean((1, 2)),
               "mean_corrupted_accuracy_15": mean_over(BENCHMARK_CORRUPTIONS),
               "mean_corrupted_accuracy_19": mean_over(CORRUPTIONS)}
    columns.update({f"accuracy_{group}": mean_over(names) for group, names in CORRUPTION_GROUPS.items()})
    if alexnet:
        details = alexnet_normalised(results)
        columns["mce"] = [details[name]["mce"] for name in results.models]
        columns["relative_mce"] = [details[name]["relative_mce"] for name in results.models]
    table = {"model": list(results.models)}
    for column, values in columns.items():
        if values is None:
            table[column] = [math.nan] * len(results.models)
        else:
            table[column] = [math.nan if value is None else float(value) for value in values]
    return pd.DataFrame(table)


def alexnet_normalised(results: RobustnessResults) -> dict[str, dict]:
    """Per model: ``ce`` and ``relative_ce`` (corruption → value, for the corruptions evaluated at all 5
    severities; relative only with a clean error), ``mce`` and ``relative_mce`` (None unless defined)."""
    errors = results.errors()
    clean = results.clean_errors()
    complete = results.severities == (1, 2, 3, 4, 5)
    out = {}
    for mi, name in enumerate(results.models):
        table = {corruption: errors[mi, ci] for ci, corruption in enumerate(results.corruptions)} if complete else {}
        has_benchmark = all(corruption in table for corruption in BENCHMARK_CORRUPTIONS)
        entry = {"ce": {key: float(value) for key, value in corruption_errors(table).items()} if table else {},
                 "relative_ce": {}, "mce": float(mce(table)) if has_benchmark else None, "relative_mce": None}
        if clean is not None and table:
            entry["relative_ce"] = {key: float(value) for key, value in
                                    relative_corruption_errors(table, float(clean[mi])).items()}
            entry["relative_mce"] = float(relative_mce(table, float(clean[mi]))) if has_benchmark else None
        out[name] = entry
    return out


def long_table(results: RobustnessResults | None, fgsm: Mapping[str, FGSMCurve] | None = None):
    """Every count as a row: ``model``, ``kind`` ("clean", "corruption" or "fgsm"), ``corruption`` ("clean",
    the corruption's name, or "fgsm"), ``group`` (the corruption's group; "clean"; "adversarial"),
    ``severity`` (1 … 5; 0 for clean and FGSM rows), ``eps`` (the FGSM step on the [0, 1] scale; 0 for the
    others), ``correct``, ``total``, ``accuracy`` and ``error``.

    Returns a pandas DataFrame: per model, the clean row, the corruption rows (corruption by corruption,
    severity by severity), then the FGSM rows by ε.
    """
    import pandas as pd

    rows = []
    models = list(results.models) if results is not None else list(fgsm or {})
    for mi, name in enumerate(models):
        if results is not None and int(results.clean_total) > 0:
            rows.append(_row(name, "clean", "clean", "clean", 0, 0.0, int(results.clean_correct[mi]),
                             int(results.clean_total)))
        if results is not None:
            for ci, corruption in enumerate(results.corruptions):
                for si, severity in enumerate(results.severities):
                    rows.append(_row(name, "corruption", corruption, GROUP_OF[corruption], severity, 0.0,
                                     int(results.correct[mi, ci, si]), int(results.total[ci, si])))
        if fgsm is not None and name in fgsm:
            curve = fgsm[name]
            for ei, step in enumerate(curve.eps):
                rows.append(_row(name, "fgsm", "fgsm", "adversarial", 0, step, int(curve.correct[ei]),
                                 int(curve.total)))
    columns = ["model", "kind", "corruption", "group", "severity", "eps", "correct", "total", "accuracy", "error"]
    return pd.DataFrame(rows, columns=columns)


def fgsm_table(curves: Mapping[str, FGSMCurve]):
    """One row per model and ε: ``model``, ``eps``, ``eps_255`` (ε·255), ``accuracy``, ``correct``, ``total``."""
    import pandas as pd

    rows = [{"model": name, "eps": step, "eps_255": step * 255, "accuracy": float(curve.accuracy[ei]),
             "correct": int(curve.correct[ei]), "total": int(curve.total)}
            for name, curve in curves.items() for ei, step in enumerate(curve.eps)]
    return pd.DataFrame(rows, columns=["model", "eps", "eps_255", "accuracy", "correct", "total"])


def _row(model, kind, corruption, group, severity, eps, correct, total) -> dict:
    accuracy, error = (correct / total, (total - correct) / total) if total else (math.nan, math.nan)
    return {"model": model, "kind": kind, "corruption": corruption, "group": group, "severity": severity,
            "eps": eps, "correct": correct, "total": total, "accuracy": accuracy, "error": error}


# ----------------------------------------------------------------------------------------------- per-item outcomes


def item_outcomes(results: RobustnessResults | None, curves: Mapping[str, FGSMCurve] | None = None) -> dict:
    """model → its per-item outcomes, for :func:`analysis.outcomes.save_outcomes`: ``clean/correct`` bool [N],
    ``corruptions/correct`` bool [C, S, N] (the results' corruptions and severities, in order) and
    ``fgsm/correct`` bool [E, N] (the curve's ε, in order) — whichever the run kept (``keep_items``)."""
    out: dict[str, dict] = {}
    if results is not None:
        for mi, name in enumerate(results.models):
            if results.clean_items is not None:
                out.setdefault(name, {})["clean/correct"] = results.clean_items[mi].cpu()
            if results.items is not None:
                out.setdefault(name, {})["corruptions/correct"] = results.items[mi].cpu()
    for name, curve in (curves or {}).items():
        if curve.items is not None:
            out.setdefault(name, {})["fgsm/correct"] = curve.items.cpu()
    return out


def metric_cells(outcomes: Mapping[str, Mapping[str, torch.Tensor]], corruptions, severities=(),
                 eps=()) -> dict:
    """((), metric) → {model → per-image outcome [N]} for :func:`analysis.verdicts.method_table`, the summary's
    metrics per image: ``clean_error`` (1 − clean hit), ``corrupted_accuracy`` and the means over the 15 / 19
    corruptions and each group (the image's share of (corruption, severity) cells classified right; a mean is
    left out unless all its corruptions were run), ``accuracy_<corruption>`` (its severities) and
    ``fgsm_<ε·255>_255`` (hit at that ε), and ``accuracy_drop_15`` (clean hit − the image's mean over the 15
    benchmark corruptions: what corruption costs, paired per image). Each metric's mean over images is the
    summary's figure (the drop's is clean accuracy − mean corrupted accuracy (15))."""
    index = {name: i for i, name in enumerate(corruptions)}
    groups = {"corrupted_accuracy": list(corruptions), "mean_corrupted_accuracy_15": BENCHMARK_CORRUPTIONS,
              "mean_corrupted_accuracy_19": CORRUPTIONS,
              **{f"accuracy_{group}": names for group, names in CORRUPTION_GROUPS.items()},
              **{f"accuracy_{name}": [name] for name in corruptions}}
    cells: dict = {}
    for name, values in outcomes.items():
        if "clean/correct" in values:
            cells.setdefault(((), "clean_error"), {})[name] = 1.0 - values["clean/correct"].double()
        grid = values.get("corruptions/correct")
        if grid is not None and grid.shape[0] == len(corruptions):
            for metric, names in groups.items():
                if names and all(c in index for c in names):
                    rows = grid[[index[c] for c in names]].double()  # [c, S, N]
                    cells.setdefault(((), metric), {})[name] = rows.mean((0, 1))
        if grid is not None and "clean/correct" in values and all(c in index for c in BENCHMARK_CORRUPTIONS):
            corrupted = grid[[index[c] for c in BENCHMARK_CORRUPTIONS]].double().mean((0, 1))
            cells.setdefault(((), "accuracy_drop_15"), {})[name] = values["clean/correct"].double() - corrupted
        hits = values.get("fgsm/correct")
        if hits is not None:
            for ei, step in enumerate(eps):
                cells.setdefault(((), f"fgsm_{step * 255:g}_255"), {})[name] = hits[ei].double()
    return cells


HIGHER_IS_BETTER = {"clean_error": False, "accuracy_drop_15": False}
"""Verdict directions of the robustness metrics: every accuracy is better higher, the clean error and the
accuracy lost to corruption lower."""
