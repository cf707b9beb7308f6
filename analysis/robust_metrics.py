"""Robustness metrics: corrupted accuracy, Corruption Error (CE, mCE), relative mCE, and FGSM.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
ICLR 2019, arXiv:1903.12261, normalise a model's top-1 error E_{s,c} (severity s, corruption c) by
AlexNet's:

    CE_c = Σ_s E_{s,c} / Σ_s E^AlexNet_{s,c}                mCE = mean of CE_c over the 15 corruptions
    relative CE_c = Σ_s (E_{s,c} − E_clean) / Σ_s (E^AlexNet_{s,c} − E^AlexNet_clean)

FGSM is Goodfellow, Shlens & Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015,
arXiv:1412.6572, here on the [0, 1] pixel scale: x_adv = clamp(x + ε·sign(∇_x CE(f(x), y)), 0, 1).

A results table is either a dict ``corruption → 5 errors`` (severity 1 … 5; numbers, a list or a tensor)
or a tensor [n, 5] whose rows follow :data:`~analysis.corruptions.CORRUPTIONS` (n = 15 or 19). Errors are
fractions in [0, 1]. The metric functions return float64 tensors on the CPU.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from msda._checks import check_int, check_real, describe

from .corruptions import BENCHMARK_CORRUPTIONS, CORRUPTION_GROUPS, CORRUPTIONS, corrupt

# AlexNet's top-1 error on ImageNet-C: the table "AlexNet ImageNet-C Error — use these values to normalize
# raw corruption error to calculate mCE" of the README of github.com/hendrycks/robustness (2019 revisions;
# the current README links an mCE spreadsheet instead). The 15 averages are also the ALEXNET_ERR
# of google-research/augmix, imagenet.py. Per corruption: the average over severities, then severity 1 … 5.
_ALEXNET_TABLE = {
    "gaussian_noise": (0.886428, (0.69528, 0.82542, 0.93554, 0.98138, 0.99452)),
    "shot_noise": (0.894468, (0.71224, 0.85108, 0.93574, 0.98182, 0.99146)),
    "impulse_noise": (0.922640, (0.78374, 0.89808, 0.94870, 0.98720, 0.99548)),
    "defocus_blur": (0.819880, (0.65624, 0.73202, 0.85036, 0.91364, 0.94714)),
    "glass_blur": (0.826268, (0.64308, 0.75054, 0.88806, 0.91622, 0.93344)),
    "motion_blur": (0.785948, (0.58430, 0.70048, 0.82108, 0.89750, 0.92638)),
    "zoom_blur": (0.798360, (0.70008, 0.76992, 0.80784, 0.84198, 0.87198)),
    "snow": (0.866816, (0.71726, 0.88392, 0.86468, 0.91870, 0.94952)),
    "frost": (0.826572, (0.61390, 0.79734, 0.88790, 0.89942, 0.93430)),
    "fog": (0.819324, (0.67474, 0.76050, 0.84378, 0.87260, 0.94500)),
    "brightness": (0.564592, (0.45140, 0.48502, 0.54048, 0.62166, 0.72440)),
    "contrast": (0.853204, (0.64548, 0.76150, 0.88874, 0.97760, 0.99270)),
    "elastic_transform": (0.646056, (0.52596, 0.70116, 0.55686, 0.64076, 0.80554)),
    "pixelate": (0.717840, (0.52218, 0.54620, 0.73728, 0.87092, 0.91262)),
    "jpeg_compression": (0.606500, (0.51002, 0.54718, 0.57294, 0.65458, 0.74778)),
    "speckle_noise": (0.845388, (0.66192, 0.74440, 0.90246, 0.94548, 0.97268)),
    "gaussian_blur": (0.787108, (0.54732, 0.70444, 0.82574, 0.89864, 0.95940)),
    "spatter": (0.717512, (0.47196, 0.62194, 0.75052, 0.84132, 0.90182)),
    "saturate": (0.658248, (0.59342, 0.65514, 0.51174, 0.70834, 0.82260)),
}

ALEXNET_ERRORS: dict[str, float] = {name: mean for name, (mean, _) in _ALEXNET_TABLE.items()}
"""AlexNet's ImageNet-C top-1 error per corruption, averaged over the 5 severities (19 corruptions)."""

ALEXNET_ERRORS_BY_SEVERITY: dict[str, tuple[float, ...]] = {name: rows for name, (_, rows) in
                                                             _ALEXNET_TABLE.items()}
"""The same per severity 1 … 5."""

ALEXNET_CLEAN_ERROR = 0.4348
"""AlexNet's clean ImageNet top-1 error (Hendrycks & Dietterich 2019)."""


def as_table(errors: Mapping[str, object] | Tensor) -> dict[str, Tensor]:
    """The results table as ``corruption → float64 tensor [5]``; ValueError on unknown names, a wrong
    number of severities or errors outside [0, 1]."""
    if isinstance(errors, Tensor):
        if errors.ndim != 2 or errors.shape[1] != 5 or errors.shape[0] not in (15, 19):
            raise ValueError(f"errors as a tensor must have shape [15, 5] or [19, 5] (rows in the order of "
                             f"CORRUPTIONS), got shape {tuple(errors.shape)}")
        errors = dict(zip(CORRUPTIONS[:errors.shape[0]], errors, strict=True))
    if not isinstance(errors, Mapping):
        raise ValueError(f"errors must be a dict corruption → 5 errors or a tensor [15 | 19, 5], "
                         f"got {type(errors).__name__}")
    table = {}
    for name, row in errors.items():
        if name not in CORRUPTIONS:
            raise ValueError(f"errors has an unknown corruption {name!r}; allowed: {', '.join(CORRUPTIONS)}")
        values = torch.as_tensor(row, dtype=torch.float64).detach().cpu().reshape(-1)
        if values.numel() != 5:
            raise ValueError(f"errors[{name!r}] must hold 5 errors (severity 1 … 5), got {describe(values)}")
        if bool(((values < 0) | (values > 1) | ~torch.isfinite(values)).any()):
            raise ValueError(f"errors[{name!r}] must be fractions in [0, 1], got {describe(values)}")
        table[name] = values
    return table


def _rows(table: dict[str, Tensor], names: Iterable[str], what: str) -> Tensor:
    names = tuple(names)
    missing = [name for name in names if name not in table]
    if missing:
        raise ValueError(f"{what} needs errors for {', '.join(missing)}; the table has {', '.join(table) or 'none'}")
    return torch.stack([table[name] for name in names])


def mean_corrupted_accuracy(errors, *, corruptions: Iterable[str] = BENCHMARK_CORRUPTIONS) -> Tensor:
    """Mean accuracy 1 − E over the corruptions (default the 15 benchmark ones; pass CORRUPTIONS for all 19)
    and the 5 severities. Returns a float64 scalar tensor."""
    return 1 - _rows(as_table(errors), corruptions, "mean_corrupted_accuracy").mean()


def group_accuracies(errors) -> dict[str, Tensor]:
    """Mean accuracy per group of :data:`CORRUPTION_GROUPS` (noise, blur, weather, digital, extra), for the
    groups whose corruptions are all in the table."""
    table = as_table(errors)
    return {group: 1 - torch.stack([table[name] for name in names]).mean()
            for group, names in CORRUPTION_GROUPS.items() if all(name in table for name in names)}


def corruption_errors(errors) -> dict[str, Tensor]:
    """CE_c = Σ_s E_{s,c} / Σ_s E^AlexNet_{s,c} for every corruption in the table (the AlexNet sums are the
    published severity averages × 5)."""
    return {name: row.sum() / (5 * ALEXNET_ERRORS[name]) for name, row in as_table(errors).items()}


def mce(errors) -> Tensor:
    """Mean Corruption Error over the 15 benchmark corruptions (float64 scalar; 1.0 = AlexNet)."""
    table = as_table(errors)
    _rows(table, BENCHMARK_CORRUPTIONS, "mce")
    ce = corruption_errors(table)
    return torch.stack([ce[name] for name in BENCHMARK_CORRUPTIONS]).mean()


def relative_corruption_errors(errors, clean_error: float) -> dict[str, Tensor]:
    """Relative CE_c = Σ_s (E_{s,c} − E_clean) / Σ_s (E^AlexNet_{s,c} − E^AlexNet_clean) per corruption."""
    clean_error = check_real("clean_error", clean_error, low=0.0, high=1.0)
    return {name: (row - clean_error).sum() / (5 * (ALEXNET_ERRORS[name] - ALEXNET_CLEAN_ERROR))
            for name, row in as_table(errors).items()}


def relative_mce(errors, clean_error: float) -> Tensor:
    """Mean relative CE over the 15 benchmark corruptions (float64 scalar)."""
    table = as_table(errors)
    _rows(table, BENCHMARK_CORRUPTIONS, "relative_mce")
    relative = relative_corruption_errors(table, clean_error)
    return torch.stack([relative[name] for name in BENCHMARK_CORRUPTIONS]).mean()


def fgsm(model: nn.Module, images: Tensor, labels: Tensor, eps: float, *,
         normalize: nn.Module | None = None) -> Tensor:
    """Fast Gradient Sign Method on the [0, 1] pixel scale, one step for the whole batch.

    Args:
        model: maps [B, C, H, W] images to [B, K] logits (after `normalize`, when given). Run in eval mode
            during the attack; its mode and its parameters' requires_grad are restored afterwards.
        images: [B, C, H, W] float images in [0, 1].
        labels: [B] int64 class indices.
        eps: step size ε ≥ 0 in pixel units (8/255 is a common choice); 0 returns the images unchanged.
        normalize: optional callable applied to the images before the model (attack before normalisation).

    Returns:
        [B, C, H, W] clamp(x + ε·sign(∇_x CE), 0, 1), same dtype and device as `images`, detached.
    """
    eps = check_real("eps", eps, low=0.0)
    _check_batch(images, labels)
    if eps == 0:
        return images.detach().clone()
    was_training = model.training
    needs_grad = [p.requires_grad for p in model.parameters()]
    try:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        with torch.enable_grad():
            x = images.detach().float().requires_grad_(True)
            inputs = x if normalize is None else normalize(x)
            loss = F.cross_entropy(model(inputs).float(), labels.long(), reduction="sum")
            (grad,) = torch.autograd.grad(loss, x)
    finally:
        model.train(was_training)
        for p, flag in zip(model.parameters(), needs_grad, strict=True):
            p.requires_grad_(flag)
    return (x.detach() + eps * grad.sign()).clamp_(0, 1).to(images.dtype)


def evaluate_accuracy(model: nn.Module, batches: Iterable, *, device: torch.device | str,
                      corruption: str | None = None, severity: int | None = None,
                      generator: torch.Generator | None = None, profile: str = "auto",
                      fgsm_eps: float | None = None, normalize: nn.Module | None = None) -> tuple[Tensor, Tensor]:
    """Top-1 correct and total counts of `model` over (images, labels) batches (a DataLoader or any
    iterable), each batch moved to `device`, optionally corrupted there with
    :func:`analysis.corruptions.corrupt` (``corruption``, ``severity``, ``generator``, ``profile``) and then
    optionally attacked with :func:`fgsm` (``fgsm_eps``).

    Returns two int64 scalar tensors on `device`: (correct, total). The model runs in eval mode; its mode is
    restored.
    """
    device = torch.device(device)
    if (corruption is None) != (severity is None):
        raise ValueError(f"corruption and severity go together, got corruption={corruption!r}, "
                         f"severity={severity!r}")
    if severity is not None:
        check_int("severity", severity, low=1, high=5)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    total = torch.zeros((), dtype=torch.int64, device=device)
    was_training = model.training
    model.eval()
    try:
        for images, labels in batches:
            images = images.to(device, non_blocking=True)
            labels = torch.as_tensor(labels).to(device, non_blocking=True)
            if corruption is not None:
                images = corrupt(images, corruption, severity, profile=profile, generator=generator)
            if fgsm_eps:
                images = fgsm(model, images, labels, fgsm_eps, normalize=normalize)
            with torch.no_grad():
                logits = model(images if normalize is None else normalize(images))
            correct += (logits.argmax(1) == labels).sum()
            total += labels.numel()
    finally:
        model.train(was_training)
    return correct, total


def _check_batch(images, labels) -> None:
    if not isinstance(images, Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor [B, C, H, W] in [0, 1], got {describe(images)}")
    if (not isinstance(labels, Tensor) or labels.shape != images.shape[:1]
            or labels.dtype not in (torch.int64, torch.int32)):
        raise ValueError(f"labels must be an integer tensor of shape [{images.shape[0]}], got {describe(labels)}")
    if labels.device != images.device:
        raise ValueError(f"labels are on {labels.device} but images on {images.device}")
