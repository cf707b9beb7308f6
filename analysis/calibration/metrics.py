"""Calibration metrics of a classifier's logits: ECE, MCE, NLL, Brier score, temperature scaling, reliability bins.

* ECE and MCE are torchmetrics' (``torchmetrics.functional.classification.binary_calibration_error`` on the
  top-label confidence and its correctness — exactly what ``MulticlassCalibrationError`` computes from the
  probabilities): 15 equal-width bins, ``norm="l1"`` = ECE = Σ_b (n_b / N) |acc_b − conf_b|, ``norm="max"`` =
  MCE = max_b |acc_b − conf_b| (Naeini et al., AAAI 2015; Guo et al., "On Calibration of Modern Neural
  Networks", ICML 2017, arXiv:1706.04599).
* NLL is ``F.cross_entropy``; the Brier score is the multi-class one of Brier (1950) as Guo et al. and
  Thulasidasan et al. ("On Mixup Training: Improved Calibration and Predictive Uncertainty for Deep Neural
  Networks", NeurIPS 2019, arXiv:1905.11001) use it: mean over items of Σ_k (p_k − 1[k = y])², in [0, 2].
* Temperature scaling (Guo et al. 2017, §4.2): one scalar T > 0 dividing every logit, fitted on a held-out
  split by minimising the NLL with L-BFGS; it never changes a prediction, only its confidence.

Bins. A softmax in float32 saturates: a confidence of exactly 1.0 happens (0.2 % of the test images of the
shipped ``none`` model). torchmetrics gives 1.0 a bin of its own, Guo et al.'s bins ((k−1)/B, k/B] and
:func:`analysis.stats.ece_metric` put it in the top bin; :func:`top_confidence` therefore caps confidences at
the largest float32 below 1, so every ECE here — torchmetrics', the bootstrap's and the reliability diagram's —
bins the same items the same way (the cap moves a confidence by 6e-8).

All functions take tensors and return tensors or Python floats; nothing leaves the inputs' device except the
scalars.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from msda._checks import check_int, describe

__all__ = ["N_BINS", "brier_scores", "calibration_error_metric", "calibration_metrics", "check_logits",
           "expected_calibration_error", "fit_temperature", "item_outcomes", "max_calibration_error",
           "reliability_bins", "top_confidence"]

N_BINS = 15
"""Equal-width confidence bins of every ECE, MCE and reliability diagram (Guo et al. 2017)."""

_BELOW_ONE = float(torch.nextafter(torch.tensor(1.0), torch.tensor(0.0)))


def check_logits(logits, num_classes: int | None = None, *, what: str = "logits") -> Tensor:
    """`logits` as a float tensor [N, K], checked: 2-D, K = `num_classes` when given (and ≥ 2), finite, and not
    already probabilities (rows in [0, 1] summing to 1 — a softmax of those would distort every metric)."""
    if not isinstance(logits, Tensor) or logits.ndim != 2 or not logits.is_floating_point():
        raise ValueError(f"{what} must be a float tensor [N, classes] of logits, got {describe(logits)}")
    if num_classes is not None and logits.shape[1] != num_classes:
        raise ValueError(f"{what} must have {num_classes} columns (one logit per class), got shape "
                         f"{tuple(logits.shape)}")
    if logits.shape[1] < 2:
        raise ValueError(f"{what} must have at least 2 classes, got shape {tuple(logits.shape)}")
    if not bool(torch.isfinite(logits).all()):
        raise ValueError(f"{what} must be finite; {int((~torch.isfinite(logits)).sum())} of {logits.numel()} "
                         "values are NaN or inf")
    if logits.shape[0] and bool(((logits >= 0) & (logits <= 1)).all()) and bool(
            torch.allclose(logits.double().sum(1), torch.ones(len(logits), dtype=torch.float64, device=logits.device),
                           atol=1e-4)):
        raise ValueError(f"{what} look like probabilities (every row in [0, 1], summing to 1); pass the model's "
                         "logits, before the softmax")
    return logits


def _check_labels(labels, n: int, num_classes: int) -> Tensor:
    if (not isinstance(labels, Tensor) or labels.shape != (n,) or labels.is_floating_point()
            or labels.dtype == torch.bool):
        raise ValueError(f"labels must be an integer tensor of shape [{n}], got {describe(labels)}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must be class indices in [0, {num_classes - 1}], got values from "
                         f"{int(labels.min())} to {int(labels.max())}")
    return labels.long()


def _check_temperature(temperature) -> float:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
            or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    return float(temperature)


def top_confidence(probabilities: Tensor) -> tuple[Tensor, Tensor]:
    """(confidence [N], predicted class [N]) of probabilities [N, K]; confidences capped below 1 (see the module
    docstring)."""
    confidence, predicted = probabilities.max(1)
    return confidence.clamp(max=_BELOW_ONE), predicted


def brier_scores(probabilities: Tensor, labels: Tensor) -> Tensor:
    """Per-item multi-class Brier score Σ_k (p_k − 1[k = y])², [N], in [0, 2]."""
    onehot = F.one_hot(labels, probabilities.shape[1]).to(probabilities.dtype)
    return (probabilities - onehot).square().sum(1)


def item_outcomes(logits: Tensor, labels: Tensor, *, temperature: float = 1.0) -> dict[str, Tensor]:
    """Per-item outcomes of logits [N, K] at `temperature`: ``correct`` (bool [N]), ``confidence`` (float32 [N],
    top-label probability), ``nll`` (−log p_y) and ``brier``. ValueError for bad logits, labels or temperature."""
    logits = check_logits(logits)
    labels = _check_labels(labels, logits.shape[0], logits.shape[1])
    temperature = _check_temperature(temperature)
    scaled = logits.float() / temperature
    probabilities = scaled.softmax(1)
    confidence, predicted = top_confidence(probabilities)
    return {"correct": predicted == labels, "confidence": confidence,
            "nll": F.cross_entropy(scaled, labels, reduction="none"), "brier": brier_scores(probabilities, labels)}


def expected_calibration_error(confidence: Tensor, correct: Tensor, *, n_bins: int = N_BINS) -> float:
    """ECE (torchmetrics, ``norm="l1"``) of top-label confidences [N] in [0, 1] and their correctness [N]."""
    return _torchmetrics_error(confidence, correct, n_bins, "l1")


def max_calibration_error(confidence: Tensor, correct: Tensor, *, n_bins: int = N_BINS) -> float:
    """MCE (torchmetrics, ``norm="max"``): the largest |accuracy − confidence| over the non-empty bins."""
    return _torchmetrics_error(confidence, correct, n_bins, "max")


def _torchmetrics_error(confidence: Tensor, correct: Tensor, n_bins: int, norm: str) -> float:
    from torchmetrics.functional.classification import binary_calibration_error

    n_bins = check_int("n_bins", n_bins, low=1)
    if confidence.numel() == 0:
        raise ValueError("a calibration error needs at least one item, got none")
    return float(binary_calibration_error(confidence.float(), correct.long(), n_bins=n_bins, norm=norm))


def calibration_metrics(logits: Tensor, labels: Tensor, *, temperature: float = 1.0,
                        n_bins: int = N_BINS) -> dict[str, float]:
    """``accuracy``, ``confidence`` (mean top-label probability), ``ece``, ``mce``, ``nll`` (mean) and ``brier``
    (mean) of logits [N, K] at `temperature`."""
    items = item_outcomes(logits, labels, temperature=temperature)
    if not len(labels):
        raise ValueError("calibration metrics need at least one item, got logits of shape "
                         f"{tuple(logits.shape)}")
    return {"accuracy": float(items["correct"].double().mean()), "confidence": float(items["confidence"].double().mean()),
            "ece": expected_calibration_error(items["confidence"], items["correct"], n_bins=n_bins),
            "mce": max_calibration_error(items["confidence"], items["correct"], n_bins=n_bins),
            "nll": float(items["nll"].double().mean()), "brier": float(items["brier"].double().mean())}


def fit_temperature(logits: Tensor, labels: Tensor, *, max_iter: int = 100) -> float:
    """The temperature T > 0 minimising the mean NLL of ``softmax(logits / T)`` on a held-out split (Guo et al.
    2017): L-BFGS with a strong-Wolfe line search on log T (so T stays positive), in float64, from T = 1.

    Args:
        logits: [N, K] logits of the calibration split (N ≥ 1), never of the test split.
        labels: [N] true classes.
    Returns T as a float. ValueError for an empty split, bad logits or labels.
    """
    logits = check_logits(logits, what="calibration logits")
    if logits.shape[0] == 0:
        raise ValueError("the calibration split is empty (logits of shape "
                         f"{tuple(logits.shape)}); temperature scaling needs held-out images")
    labels = _check_labels(labels, logits.shape[0], logits.shape[1])
    max_iter = check_int("max_iter", max_iter, low=1)
    data = logits.detach().double()
    log_t = torch.zeros((), dtype=torch.float64, device=data.device, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-10, tolerance_change=1e-12)

    def closure():
        optimiser.zero_grad()
        loss = F.cross_entropy(data / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    return float(log_t.detach().exp())


def reliability_bins(confidence: Tensor, correct: Tensor, *, n_bins: int = N_BINS) -> dict[str, list]:
    """The reliability diagram's data: per equal-width bin ((k−1)/B, k/B] its ``low``/``high`` edges, ``count``,
    ``confidence`` (mean) and ``accuracy`` (None for an empty bin) — lists of length B."""
    n_bins = check_int("n_bins", n_bins, low=1)
    bins = (torch.ceil(confidence.double() * n_bins).long() - 1).clamp(0, n_bins - 1)
    count = torch.bincount(bins, minlength=n_bins).double()
    conf = torch.bincount(bins, weights=confidence.double(), minlength=n_bins)
    hits = torch.bincount(bins, weights=correct.double(), minlength=n_bins)
    mean = lambda total: [None if c == 0 else float(t / c) for t, c in zip(total.tolist(), count.tolist())]
    return {"low": [k / n_bins for k in range(n_bins)], "high": [(k + 1) / n_bins for k in range(n_bins)],
            "count": [int(c) for c in count.tolist()], "confidence": mean(conf), "accuracy": mean(hits)}


def calibration_error_metric(n_bins: int = N_BINS, norm: str = "l1"):
    """A ``metric=`` for :func:`analysis.stats.compare`: the binned calibration error of one model under item
    weights, with the bins of :func:`analysis.stats.ece_metric`. ``norm="l1"`` is the ECE, ``"max"`` the MCE.

    The model's values are ``[items, 2]`` (confidence, correctness) or ``[items, cells, 2]`` — an item (an
    image) seen under several conditions (corruptions × severities), all pooled into one ECE with the image's
    weight on every cell, so the bootstrap resamples images, not cells."""
    n_bins = check_int("n_bins", n_bins, low=1)
    if norm not in ("l1", "max"):
        raise ValueError(f"norm must be 'l1' (ECE) or 'max' (MCE), got {norm!r}")

    def metric(values: Tensor, weights: Tensor) -> Tensor:
        if values.ndim == 2:
            values = values.unsqueeze(1)
        if values.ndim != 3 or values.shape[-1] != 2:
            raise ValueError(f"calibration_error_metric reads [items, 2] or [items, cells, 2] (confidence, "
                             f"correctness) per model, got {tuple(values.shape)}")
        confidence, correct = values[..., 0], values[..., 1]
        bins = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)
        one_hot = F.one_hot(bins, n_bins).to(weights.dtype)  # [N, cells, B]
        # per image and bin: its cells' summed (correct − confidence) and their count, so the replicates are
        # [R, N] @ [N, B] products whatever the number of cells
        gap_per_item = (one_hot * (correct - confidence).to(weights.dtype).unsqueeze(-1)).sum(1)
        gaps = weights @ gap_per_item  # [R, B]
        if norm == "l1":
            return gaps.abs().sum(1) / (weights.sum(1) * values.shape[1])
        counts = weights @ one_hot.sum(1)
        return torch.where(counts > 0, gaps.abs() / counts.clamp(min=1e-12), torch.zeros_like(gaps)).amax(1)

    return metric
