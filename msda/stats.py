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

Mixed labels
    :func:`object_visibility` — how much of each image's object survives in the mixed image.
    :func:`invisible_label_share` — the share of mixed samples whose label gives real weight to an object that
    can hardly be seen (the label noise box mixes add when objects are small; see the shapes dataset's design).

λ priors
    :func:`beta_density` — the Beta(a, b) density, for plotting λ ~ Beta(α, α).
    :func:`dirichlet_marginals` — the Beta marginals of a Dirichlet, for MiAMix's
    (λ_1, …, λ_k, λ_{k+1}) ~ Dir(α, …, α, k·α): λ_i ~ Beta(α, (2k − 1)·α), λ_{k+1} ~ Beta(k·α, k·α).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._checks import check_real, describe

__all__ = ["beta_density", "boundary_sharpness", "connected_regions", "dirichlet_marginals", "invisible_label_share",
           "mask_area", "object_visibility"]


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


def object_visibility(mask: Tensor, object_masks: Tensor, partner: Tensor) -> tuple[Tensor, Tensor]:
    """How much of the own and of the partner's object a mix keeps: ([B], [B]) float32 in [0, 1].

    Visibility is the object-mask pixels kept from that image divided by the object's area, with soft masks
    counted by their weight: own ``Σ mask·m_i / Σ m_i``, partner ``Σ (1 − mask)·m_p / Σ m_p`` with
    ``m_p = object_masks[partner]``. An image without object pixels counts as fully visible (nothing to lose).

    Args:
        mask: [B, 1, H, W] the weight of each sample's own image (``MixOutput.mask``).
        object_masks: [B, 1, H, W] each input image's object mask, values in [0, 1].
        partner: [B] int64 index of each sample's partner in the batch (``MixOutput.partner``).
    """
    mask = _check_mask(mask).float()
    if not isinstance(object_masks, Tensor) or object_masks.shape != mask.shape:
        raise ValueError(f"object_masks must have the mask's shape {tuple(mask.shape)}, got {describe(object_masks)}")
    if (not isinstance(partner, Tensor) or partner.shape != mask.shape[:1] or partner.is_floating_point()
            or partner.dtype == torch.bool):
        raise ValueError(f"partner must be an integer tensor of shape [{mask.shape[0]}], got {describe(partner)}")
    objects = object_masks.float()
    area = objects.sum((1, 2, 3))
    own_kept = (mask * objects).sum((1, 2, 3))
    partner_kept = ((1.0 - mask) * objects[partner]).sum((1, 2, 3))
    own = torch.where(area > 0, own_kept / area.clamp_min(1e-12), torch.ones_like(area))
    partner_area = area[partner]
    other = torch.where(partner_area > 0, partner_kept / partner_area.clamp_min(1e-12), torch.ones_like(area))
    return own, other


def invisible_label_share(out, object_masks: Tensor, *, weight: float = 0.25, visible: float = 0.1,
                          partner_visibility: Tensor | None = None, own_visibility: Tensor | None = None) -> Tensor:
    """The share of mixed samples that give at least `weight` of their label to an object less than `visible`
    visible: a float32 scalar in [0, 1].

    A sample counts when its own label has weight ``lam >= weight`` and its own object visibility is below
    `visible`, or when its partner's label has weight ``1 − lam >= weight`` and the partner's object visibility
    is below `visible` (:func:`object_visibility`). Only mixed samples (partner ≠ self, or a mask that is not all
    ones) are counted; cutout keeps its label (lam = 1) and so counts when the hole hides the object.

    Args:
        out: a :class:`msda.MixOutput` (its ``mask``, ``lam`` and ``partner``).
        object_masks: [B, 1, H, W] each input image's object mask (``Shapes(..., return_mask=True)``).
        weight: label-weight threshold in (0, 1].
        visible: visibility threshold in (0, 1].
        partner_visibility: [B] overrides the partner's visibility where the partner is not cut by the mask —
            ResizeMix pastes the whole (shrunk) partner, so pass ones for it; SnapMix pastes another box of it.
        own_visibility: [B] overrides the own object's visibility where the own image was rearranged before the
            mask (PuzzleMix's transport).
    """
    weight = check_real("weight", weight, low=0.0, high=1.0, low_open=True)
    visible = check_real("visible", visible, low=0.0, high=1.0, low_open=True)
    mask, lam, partner = out.mask, out.lam, out.partner
    own, other = object_visibility(mask, object_masks, partner)
    if partner_visibility is not None:
        if not isinstance(partner_visibility, Tensor) or partner_visibility.shape != own.shape:
            raise ValueError(f"partner_visibility must be a tensor of shape [{own.shape[0]}], "
                             f"got {describe(partner_visibility)}")
        other = partner_visibility.to(own)
    if own_visibility is not None:
        if not isinstance(own_visibility, Tensor) or own_visibility.shape != own.shape:
            raise ValueError(f"own_visibility must be a tensor of shape [{own.shape[0]}], got {describe(own_visibility)}")
        own = own_visibility.to(own)
    lam = lam.float()
    own_bad = (lam >= weight) & (own < visible)
    partner_bad = (1.0 - lam >= weight) & (other < visible)
    batch = torch.arange(partner.shape[0], device=partner.device)
    mixed = (partner != batch) | (mask < 1.0).flatten(1).any(1)
    return ((own_bad | partner_bad) & mixed).float().sum() / mixed.float().sum().clamp_min(1.0)


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
