"""Mask statistics and λ-prior densities, for describing masks (the app's method cards, reports).

All functions are batched, pure torch, and follow the device of their inputs. Masks follow the project's λ
convention (:mod:`msda.mixing`): ``mask`` is [B, 1, H, W] in [0, 1], the weight of each sample's own image.

Mask statistics
    :func:`mask_area` — the own image's share, ``mask.mean``: the label weight λ of every mask-only method.
    :func:`boundary_sharpness` — how steep the transition between the two images is, in mask units per pixel:
    1 for a hard edge (CutMix), 1/w for a linear ramp w pixels wide (SmoothMix's soft border), 0 for no
    edge at all (Mixup). This is the "strong edge" SmoothMix argues against (Lee et al., "SmoothMix: a
    Simple Yet Effective Data Augmentation to Train Robust Classifiers", CVPR Workshops 2020, §1 and §3.3).
    :func:`connected_regions` — how many separate patches of the partner the mask shows.

λ priors
    :func:`beta_density` — the Beta(a, b) density, for plotting λ ~ Beta(α, α).
    :func:`dirichlet_marginals` — the Beta marginals of a Dirichlet, for MiAMix's
    (λ_1, …, λ_k, λ_{k+1}) ~ Dir(α, …, α, k·α): λ_i ~ Beta(α, (2k − 1)·α), λ_{k+1} ~ Beta(k·α, k·α).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import check_real, describe

__all__ = ["beta_density", "boundary_sharpness", "connected_regions", "dirichlet_marginals", "mask_area"]


def _check_mask(mask) -> Tensor:
    if not isinstance(mask, Tensor) or mask.ndim != 4 or mask.shape[1] != 1 or min(mask.shape) == 0:
        raise ValueError(f"mask must be a non-empty tensor of shape [B, 1, H, W], got {describe(mask)}")
    if not mask.is_floating_point():
        raise ValueError(f"mask must be floating point (values in [0, 1]), got dtype {mask.dtype}")
    return mask


def mask_area(mask: Tensor) -> Tensor:
    """[B] float32: the mean of each mask — the own image's share of the pixels (λ for mask-only methods).

    Args:
        mask: [B, 1, H, W] floating point, values in [0, 1].
    """
    return _check_mask(mask).float().mean((1, 2, 3))


def boundary_sharpness(mask: Tensor) -> Tensor:
    """[B] float32: the mean gradient magnitude of each mask over its boundary, in mask units per pixel.

    The gradient is taken by forward finite differences, ``g = √(∂x² + ∂y²)`` on the (H − 1) × (W − 1) grid
    where both are defined, and averaged with weights ``g`` itself: ``Σ g² / Σ g``. Weighting by ``g`` makes
    the average run over the boundary, where the mask changes, and counts each boundary pixel by the share of
    the transition it carries: a hard edge gives 1 (a jagged diagonal one up to √2), a linear
    ramp w pixels wide gives 1/w, a Gaussian blob of σ pixels about 0.4/σ, and a constant mask (no boundary)
    gives 0. An unweighted mean over all pixels would not do: it is the total variation per pixel, which a
    linear ramp leaves unchanged however wide it is, so it measures the boundary's length, not its steepness.

    Args:
        mask: [B, 1, H, W] floating point, values in [0, 1]; a 1-pixel-wide or -high mask has no gradient
            and gives 0.
    """
    mask = _check_mask(mask).float()[:, 0]
    dx = mask[:, :-1, 1:] - mask[:, :-1, :-1]
    dy = mask[:, 1:, :-1] - mask[:, :-1, :-1]
    magnitude = torch.sqrt(dx * dx + dy * dy).flatten(1)
    total = magnitude.sum(1)
    weighted = (magnitude * magnitude).sum(1)
    return torch.where(total > 0, weighted / total.clamp_min(torch.finfo(torch.float32).tiny),
                       torch.zeros_like(total))


def connected_regions(mask: Tensor, threshold: float = 0.5) -> Tensor:
    """[B] int64: the number of 4-connected regions where the partner dominates (``mask < threshold``).

    Batched connected-component labelling in torch, on runs rather than pixels: each row's maximal runs of
    partner pixels are the nodes (numbered over the whole batch by a cumulative sum of run starts), and two
    runs in neighbouring rows are linked once per stretch of columns where they touch. The runs are then
    merged union–find style: each round hooks, for every link, the root with the larger number under the
    smaller one (one ``scatter_reduce``) and flattens the trees by pointer jumping; when a round hooks
    nothing, the regions are counted as the runs that are their own root. Masks have a few runs per row, so
    after the pixel-wise run detection everything works on a few hundred numbers. Selecting the runs and
    testing for the fixed point read values back to the host — fine for describing masks, not meant for a
    training loop.

    Args:
        mask: [B, 1, H, W] floating point, values in [0, 1].
        threshold: a pixel belongs to the partner where ``mask < threshold``; in (0, 1].
    """
    mask = _check_mask(mask)
    threshold = check_real("threshold", threshold, low=0.0, high=1.0, low_open=True)
    batch = mask.shape[0]
    partner = mask[:, 0] < threshold  # [B, H, W]
    starts = partner.clone()
    starts[:, :, 1:] &= ~partner[:, :, :-1]  # a run starts where the pixel to the left is not partner
    run = starts.flatten().cumsum(0).view_as(partner) - 1  # run number of each partner pixel
    # Links between runs of neighbouring rows: one per stretch of columns where both rows are partner.
    touching = partner[:, :-1, :] & partner[:, 1:, :]
    link_starts = touching.clone()
    link_starts[:, :, 1:] &= ~touching[:, :, :-1]
    upper, lower = run[:, :-1, :][link_starts], run[:, 1:, :][link_starts]
    parent = torch.arange(int(starts.sum()), device=mask.device)
    while True:
        root_a, root_b = parent.index_select(0, upper), parent.index_select(0, lower)
        hooked = parent.scatter_reduce(0, torch.maximum(root_a, root_b), torch.minimum(root_a, root_b),
                                       reduce="amin")
        while True:
            jumped = hooked.index_select(0, hooked)
            if torch.equal(jumped, hooked):
                break
            hooked = jumped
        if torch.equal(hooked, parent):
            break
        parent = hooked
    is_root = parent == torch.arange(parent.numel(), device=mask.device)
    sample_of_run = torch.arange(batch, device=mask.device).view(batch, 1, 1).expand_as(starts)[starts]
    return torch.zeros(batch, dtype=torch.int64, device=mask.device).index_add_(0, sample_of_run, is_root.long())


def beta_density(x: Tensor, a, b) -> Tensor:
    """The Beta(a, b) density at ``x`` (any shape, values in (0, 1)); float32, x's shape and device.

    ``a``, ``b``: positive numbers or tensors broadcastable against ``x``. Where a or b < 1 the density is
    infinite at 0 or 1; evaluate it at interior points.
    """
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point tensor of values in (0, 1), got {describe(x)}")
    a, b = (torch.as_tensor(v, dtype=torch.float32, device=x.device) for v in (a, b))
    if not bool((a > 0).all()) or not bool((b > 0).all()):
        raise ValueError(f"Beta parameters must be positive, got a={describe(a)}, b={describe(b)}")
    x = x.float()
    log_norm = torch.lgamma(a + b) - torch.lgamma(a) - torch.lgamma(b)
    log_density = log_norm + (a - 1) * torch.log(x) + (b - 1) * torch.log1p(-x)
    return torch.exp(log_density)


def dirichlet_marginals(concentration: Tensor) -> tuple[Tensor, Tensor]:
    """The Beta marginals of Dir(c_1, …, c_n): component i ~ Beta(c_i, Σc − c_i).

    Args:
        concentration: [..., n] positive concentrations (float).

    Returns:
        (a, b), each of the concentration's shape (float32): the Beta parameters of every component.
    """
    if not isinstance(concentration, Tensor) or concentration.ndim == 0 or not bool((concentration > 0).all()):
        raise ValueError(f"concentration must be a tensor [..., n] of positive numbers, got {describe(concentration)}")
    concentration = concentration.float()
    return concentration, concentration.sum(-1, keepdim=True) - concentration
