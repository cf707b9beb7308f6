"""The calibration study: every model on a test split, a disjoint calibration split and corrupted test images.

Per model: logits on the calibration split → a temperature (:func:`~.metrics.fit_temperature`); on the test
split, per image, correctness, confidence, NLL and Brier score before and after temperature scaling; on the
first ``corrupted_n`` test images under each corruption × severity (rendered on the fly with the robustness
study's seeds, :func:`analysis.robustness.corruption_seed`, so with the same seed and batch size the images are
the robustness study's), correctness and confidence before and after. Then, per method over its seeds,
:func:`analysis.stats.compare` intervals and Holm-corrected verdicts against ``none`` (:func:`method_table`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from msda._checks import check_int, describe

from ..cam import evaluation_mode
from ..corruptions import corrupt
from ..stats import compare, ece_metric
from ..verdicts import N_BOOT, by_method
from .metrics import (N_BINS, calibration_error_metric, calibration_metrics, check_logits, fit_temperature,
                      item_outcomes, reliability_bins)

__all__ = ["CORRUPTED", "METRICS", "TEST", "calibration_study", "check_splits", "method_table", "model_logits",
           "severity_table"]

TEST, CORRUPTED = "test", "corrupted"

METRICS: dict[str, tuple[str, bool]] = {
    "accuracy": ("top-1 accuracy on the test split (temperature scaling never changes it)", True),
    "ece": ("expected calibration error, 15 equal-width bins (torchmetrics, norm l1)", False),
    "ece_ts": ("ECE after temperature scaling (T fitted on the calibration split)", False),
    "mce": ("maximum calibration error over the 15 bins (norm max)", False),
    "mce_ts": ("MCE after temperature scaling", False),
    "nll": ("mean negative log-likelihood of the true class", False),
    "nll_ts": ("NLL after temperature scaling", False),
    "brier": ("mean multi-class Brier score Σ_k (p_k − y_k)², in [0, 2]", False),
    "brier_ts": ("Brier score after temperature scaling", False),
    "confidence": ("mean top-label confidence on the test split", None),
    "corrupted_accuracy": ("accuracy over every corruption × severity (images resampled, cells pooled)", True),
    "corrupted_confidence": ("mean confidence over every corruption × severity", None),
    "corrupted_ece": ("ECE of the pooled corrupted images (every cell of an image weighs as the image)", False),
    "corrupted_ece_ts": ("corrupted ECE with the clean split's temperature", False),
}
"""metric → (what it is, higher is better: True / False / None = no verdict, a description only)."""


def check_splits(test_ids, calibration_ids) -> None:
    """The calibration split must hold images and share none with the test split (by item id)."""
    test_ids, calibration_ids = (np.asarray(ids).reshape(-1) for ids in (test_ids, calibration_ids))
    if calibration_ids.size == 0:
        raise ValueError("the calibration split is empty; temperature scaling needs held-out images (e.g. "
                         "--n-calibration 1000)")
    shared = np.intersect1d(test_ids, calibration_ids)
    if shared.size:
        raise ValueError(f"the calibration split shares {shared.size} images with the test split (ids "
                         f"{shared[:5].tolist()}…); it must be disjoint from it")


def model_logits(model: nn.Module, images: Tensor, *, num_classes: int, batch_size: int = 500) -> Tensor:
    """float32 logits [N, num_classes] of `model` on uint8 or [0, 1] images [N, 3, H, W], in eval mode (restored);
    ValueError naming the shape when the model's outputs are not logits of that width."""
    batch_size = check_int("batch_size", batch_size, low=1)
    out = []
    with torch.no_grad(), evaluation_mode(model):
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            batch = batch.float().div(255) if batch.dtype == torch.uint8 else batch.float()
            logits = model(batch)
            if not isinstance(logits, Tensor) or logits.shape != (len(batch), num_classes):
                raise ValueError(f"the model's outputs must be logits [batch, {num_classes}] (one per class), got "
                                 f"{describe(logits)} for a batch of {len(batch)}")
            out.append(logits.float())
    return check_logits(torch.cat(out), num_classes, what="the model's outputs")


def calibration_study(models: Mapping[str, nn.Module], test: tuple[Tensor, Tensor], calibration: tuple[Tensor, Tensor],
                      *, num_classes: int, test_ids=None, calibration_ids=None,
                      corruptions: Sequence[str] = (), severities: Sequence[int] = (), corrupted_n: int = 0,
                      n_bins: int = N_BINS, batch_size: int = 256, seed: int = 0, profile: str = "auto",
                      progress: bool = False) -> dict:
    """Run the study; returns ``{"rows": [per-model dict], "outcomes": {model: {metric: array}}, "reliability":
    {model: {"before": bins, "after": bins}}, "corrupted": [per model, corruption, severity dict]}``.

    Args:
        models: name → classifier taking images in [0, 1] (on the images' device).
        test, calibration: (images [N, 3, H, W] uint8 or [0, 1], labels [N]) of each split.
        test_ids, calibration_ids: the splits' item ids (default 0…N−1 and N…N+M−1); checked disjoint.
        corruptions, severities, corrupted_n: corrupted cells on the first `corrupted_n` test images (0: none).
        batch_size, seed, profile: the corruption blocks and seeds, as :func:`analysis.evaluate_corruptions`.
    """
    from tqdm.auto import tqdm

    from ..robustness.evaluate import corruption_seed

    test_images, test_labels = test
    cal_images, cal_labels = calibration
    test_ids = np.arange(len(test_labels)) if test_ids is None else test_ids
    calibration_ids = (np.arange(len(test_labels), len(test_labels) + len(cal_labels)) if calibration_ids is None
                       else calibration_ids)
    check_splits(test_ids, calibration_ids)
    corrupted_n = check_int("corrupted_n", corrupted_n, low=0, high=len(test_labels))
    cells = [(c, s) for c in corruptions for s in severities] if corrupted_n else []
    blocks = list(range(0, corrupted_n, batch_size))
    bar = tqdm(total=len(models) * (2 + len(cells) * len(blocks)), unit="pass", desc="calibration",
               disable=not progress)
    rows, outcomes, reliability, temperatures, corrupted_logits = [], {}, {}, {}, {}
    try:
        for name, model in models.items():
            cal_logits = model_logits(model, cal_images, num_classes=num_classes, batch_size=batch_size)
            temperature = fit_temperature(cal_logits, cal_labels.to(cal_logits.device))
            bar.update(1)
            logits = model_logits(model, test_images, num_classes=num_classes, batch_size=batch_size)
            labels = test_labels.to(logits.device)
            bar.update(1)
            before, after = (item_outcomes(logits, labels, temperature=t) for t in (1.0, temperature))
            row = {"model": name, "temperature": temperature, "test_images": len(labels),
                   "calibration_images": len(cal_labels)}
            for suffix, t in (("", 1.0), ("_ts", temperature)):
                row.update({f"{key}{suffix}": value for key, value in
                            calibration_metrics(logits, labels, temperature=t, n_bins=n_bins).items()})
            row["calibration_nll"] = calibration_metrics(cal_logits, cal_labels.to(cal_logits.device))["nll"]
            row["calibration_nll_ts"] = calibration_metrics(cal_logits, cal_labels.to(cal_logits.device),
                                                            temperature=temperature)["nll"]
            del row["accuracy_ts"]
            rows.append(row)
            temperatures[name] = temperature
            outcomes[name] = {f"{TEST}/correct": before["correct"].cpu(), f"{TEST}/confidence": before["confidence"].cpu(),
                              f"{TEST}/confidence_ts": after["confidence"].cpu(), f"{TEST}/nll": before["nll"].cpu(),
                              f"{TEST}/nll_ts": after["nll"].cpu(), f"{TEST}/brier": before["brier"].cpu(),
                              f"{TEST}/brier_ts": after["brier"].cpu()}
            reliability[name] = {"before": reliability_bins(before["confidence"], before["correct"], n_bins=n_bins),
                                 "after": reliability_bins(after["confidence"], after["correct"], n_bins=n_bins)}
            corrupted_logits[name] = torch.empty(len(cells), corrupted_n, num_classes)
        if cells:
            device = test_images.device
            generator = torch.Generator(device=device)
            with torch.no_grad():
                for block, start in enumerate(blocks):
                    batch = test_images[start:min(corrupted_n, start + batch_size)]
                    batch = batch.float().div(255) if batch.dtype == torch.uint8 else batch.float()
                    for index, (corruption, severity) in enumerate(cells):
                        generator.manual_seed(corruption_seed(seed, corruption, severity, block))
                        corrupted = corrupt(batch, corruption, severity, profile=profile, generator=generator)
                        for name, model in models.items():
                            corrupted_logits[name][index, start:start + len(batch)] = model_logits(
                                model, corrupted, num_classes=num_classes, batch_size=len(batch)).cpu()
                            bar.update(1)
    finally:
        bar.close()
    corrupted_rows = []
    if cells:
        labels = test_labels[:corrupted_n].cpu().long()
        for name in models:
            flat = corrupted_logits[name].reshape(-1, num_classes)
            repeated = labels.repeat(len(cells))
            before = item_outcomes(flat, repeated)
            after = item_outcomes(flat, repeated, temperature=temperatures[name])
            shape = (len(cells), corrupted_n)
            outcomes[name].update({f"{CORRUPTED}/correct": before["correct"].view(shape),
                                   f"{CORRUPTED}/confidence": before["confidence"].view(shape),
                                   f"{CORRUPTED}/confidence_ts": after["confidence"].view(shape)})
            for index, (corruption, severity) in enumerate(cells):
                part = slice(index * corrupted_n, (index + 1) * corrupted_n)
                corrupted_rows.append({"model": name, "corruption": corruption, "severity": severity,
                                       "accuracy": float(before["correct"][part].double().mean()),
                                       "confidence": float(before["confidence"][part].double().mean()),
                                       "confidence_ts": float(after["confidence"][part].double().mean())})
    return {"rows": rows, "outcomes": outcomes, "reliability": reliability, "corrupted": corrupted_rows,
            "cells": cells}


def method_table(outcomes: Mapping[str, Mapping[str, Tensor]], *, methods: Mapping[str, str | None],
                 seeds: Mapping[str, int | None] | None = None, baseline: str = "none", n_boot: int = N_BOOT,
                 n_bins: int = N_BINS):
    """Per method (its models are its seeds): every metric of :data:`METRICS` with a 95 % interval and, where
    the metric has a direction, the paired difference to `baseline`, its interval, the Holm-adjusted p and
    :func:`analysis.stats.compare`'s verdict — columns ``<m>_mean``, ``<m>_ci_low``, ``<m>_ci_high``,
    ``<m>_diff``, ``<m>_diff_ci_low``, ``<m>_diff_ci_high``, ``<m>_p``, ``<m>_vs_<baseline>`` (the layout of
    :func:`analysis.verdicts.method_table`). Images are the resampled items (corrupted cells pooled per image).
    Each metric is its own family for Holm."""
    import pandas as pd

    def field(key: str) -> dict[str, Tensor]:
        return by_method({m: values[key] for m, values in outcomes.items() if key in values}, methods, seeds)

    def paired(confidence: str, correct: str) -> dict[str, Tensor]:
        conf, hits = field(confidence), field(correct)
        return {m: torch.stack([conf[m], hits[m]], dim=-1) for m in conf}

    corrupted = all(f"{CORRUPTED}/correct" in values for values in outcomes.values())
    specs = {
        "accuracy": (field(f"{TEST}/correct"), None),
        "ece": (paired(f"{TEST}/confidence", f"{TEST}/correct"), ece_metric(n_bins)),
        "ece_ts": (paired(f"{TEST}/confidence_ts", f"{TEST}/correct"), ece_metric(n_bins)),
        "mce": (paired(f"{TEST}/confidence", f"{TEST}/correct"), calibration_error_metric(n_bins, "max")),
        "mce_ts": (paired(f"{TEST}/confidence_ts", f"{TEST}/correct"), calibration_error_metric(n_bins, "max")),
        "nll": (field(f"{TEST}/nll"), None), "nll_ts": (field(f"{TEST}/nll_ts"), None),
        "brier": (field(f"{TEST}/brier"), None), "brier_ts": (field(f"{TEST}/brier_ts"), None),
        "confidence": (field(f"{TEST}/confidence"), None),
    }
    if corrupted:
        specs.update({
            "corrupted_accuracy": ({m: x.mean(1) for m, x in field(f"{CORRUPTED}/correct").items()}, None),
            "corrupted_confidence": ({m: x.mean(1) for m, x in field(f"{CORRUPTED}/confidence").items()}, None),
            # [seeds, cells, images, 2] → [seeds, images, cells, 2]: the images are the resampled items
            "corrupted_ece": ({m: x.permute(0, 2, 1, 3) for m, x in
                               paired(f"{CORRUPTED}/confidence", f"{CORRUPTED}/correct").items()},
                              calibration_error_metric(n_bins, "l1")),
            "corrupted_ece_ts": ({m: x.permute(0, 2, 1, 3) for m, x in
                                  paired(f"{CORRUPTED}/confidence_ts", f"{CORRUPTED}/correct").items()},
                                 calibration_error_metric(n_bins, "l1")),
        })
    order = list(dict.fromkeys(m for m in methods.values() if m is not None))
    rows = {method: {"method": method} for method in order}
    for metric, (values, statistic) in specs.items():
        direction = METRICS[metric][1]
        table = compare(values, baseline=baseline if direction is not None and baseline in values else None,
                        higher_is_better=bool(direction), n_boot=n_boot, metric=statistic,
                        generator=torch.Generator().manual_seed(0))
        for record in table.to_dict("records"):
            row = rows[record["method"]]
            row.setdefault("seeds", int(record["seeds"]))
            row.update({f"{metric}_mean": record["mean"], f"{metric}_ci_low": record["ci_low"],
                        f"{metric}_ci_high": record["ci_high"]})
            row[f"{metric}_vs_{baseline}"] = None  # no direction (confidence): described, never judged
            if direction is not None:
                row.update({f"{metric}_diff": record["diff"], f"{metric}_diff_ci_low": record["diff_ci_low"],
                            f"{metric}_diff_ci_high": record["diff_ci_high"], f"{metric}_p": record["p_holm"],
                            f"{metric}_vs_{baseline}": record["verdict"]})
    if seeds:
        for method, row in rows.items():
            row["seed_list"] = " ".join(str(seeds[m]) for m, x in methods.items()
                                        if x == method and seeds.get(m) is not None)
    return pd.DataFrame(list(rows.values()))


def severity_table(corrupted_rows: Sequence[Mapping], methods: Mapping[str, str | None]):
    """Per method and severity: accuracy and mean confidence (before and after temperature scaling) over the
    corruptions, averaged over the method's seeds — the "confidence against accuracy" curve."""
    import pandas as pd

    frame = pd.DataFrame(list(corrupted_rows))
    if frame.empty:
        return frame
    frame["method"] = [methods.get(model) or model for model in frame["model"]]
    per_model = frame.groupby(["method", "model", "severity"], sort=False)[["accuracy", "confidence",
                                                                            "confidence_ts"]].mean()
    out = per_model.groupby(["method", "severity"], sort=False).mean().reset_index()
    out["overconfidence"] = out["confidence"] - out["accuracy"]
    out["overconfidence_ts"] = out["confidence_ts"] - out["accuracy"]
    return out
