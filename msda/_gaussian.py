"""Gaussian blob masks (GMix, AGMix) with their area calibrated to λ inside the image.

The blob is ``exp(−½ dᵀ Σ⁻¹ d)`` with ``Σ = σ² · R(θ) [[1, q], [q, 1]] R(θ)ᵀ`` (q = θ = 0 gives GMix's
isotropic blob). The mask, the weight of the own image, is ``1 − blob``. σ is solved per sample so that
the mask's mean over the image is λ *including* the part of the blob cut off by the border — GMix's closed
form σ = √(λN) ignores the border and overshoots λ when the centre is near an edge.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._render import pixel_centers
from ._solve import bisect

# The bisection runs on a grid subsampled to at most this many points along each axis (never fewer than
# one); Newton steps on the full grid then remove the subsampling error.
_COARSE_SIDE = 32
_NEWTON_STEPS = 2


def quadratic_form(cx: Tensor, cy: Tensor, q: Tensor, theta: Tensor, height: int, width: int) -> Tensor:
    """[B, H, W] dᵀ (R Σ₀ Rᵀ)⁻¹ d for d = pixel centre − (cx, cy), in pixels², Σ₀ = [[1, q], [q, 1]]."""
    device = cx.device
    dx = pixel_centers(width, device)[None, None, :] - cx[:, None, None]
    dy = pixel_centers(height, device)[None, :, None] - cy[:, None, None]
    cos, sin = theta.cos()[:, None, None], theta.sin()[:, None, None]
    e1 = cos * dx + sin * dy  # coordinates in the rotated frame: Rᵀ d
    e2 = -sin * dx + cos * dy
    q = q[:, None, None]
    return (e1 * e1 - 2 * q * e1 * e2 + e2 * e2) / (1 - q * q)


def blob_area(form: Tensor, sigma: Tensor) -> Tensor:
    """[B] mean over the image of exp(−form / 2σ²)."""
    return torch.exp(-form / (2 * sigma[:, None, None] ** 2)).mean((1, 2))


def solve_sigma(form: Tensor, cover: Tensor, det: Tensor) -> Tensor:
    """[B] σ (pixels) such that the blob covers `cover` of the image (mean of exp(−form/2σ²) = cover).

    `det` is det(Σ₀) = 1 − q². A blob wholly inside the image covers 2πσ²√det / (H·W); the border only
    removes area, so that closed form's σ (halved, for the pixel grid's discreteness) brackets the root from
    below.
    """
    height, width = form.shape[-2:]
    # One stride per axis: a single stride from the longer side skipped past the whole shorter side of an
    # elongated image (8×1000: rows from 16 on), leaving an empty grid whose NaN mean froze the bisection.
    stride_y = max(1, math.ceil(height / _COARSE_SIDE))
    stride_x = max(1, math.ceil(width / _COARSE_SIDE))
    coarse = form[:, stride_y // 2::stride_y, stride_x // 2::stride_x]
    inside = (cover * height * width / (2 * math.pi * det.sqrt())).sqrt()
    low = (0.5 * inside).clamp_min(1e-3)
    sigma = bisect(lambda s: blob_area(coarse, s), cover, low, 50.0 * max(height, width), iters=24, log=True)
    for _ in range(_NEWTON_STEPS):
        # d/dσ mean(e^{−f/2σ²}) = mean(e^{−f/2σ²} · f/σ³)
        weight = torch.exp(-form / (2 * sigma[:, None, None] ** 2))
        area = weight.mean((1, 2))
        slope = (weight * form).mean((1, 2)) / sigma**3
        step = ((area - cover) / slope.clamp_min(1e-12)).clamp(-sigma / 2, sigma / 2)
        sigma = torch.where(slope > 1e-12, sigma - step, sigma)
    return sigma


def gaussian_mask(lam: Tensor, cx: Tensor, cy: Tensor, q: Tensor, theta: Tensor, sigma: Tensor | None,
                  height: int, width: int, read=None) -> Tensor:
    """[B, 1, H, W] own-image weight 1 − blob; σ in pixels, or None to calibrate it to λ.

    With a ParamReader ``read``, a calibrated σ is reported as the derived ``sigma`` (a fraction of √(H·W),
    the unit of the ``sigma`` parameter).
    """
    form = quadratic_form(cx, cy, q, theta, height, width)
    if sigma is not None:
        return (1.0 - torch.exp(-form / (2 * sigma.clamp_min(1e-6)[:, None, None] ** 2)))[:, None]
    sigma = solve_sigma(form, 1.0 - lam, 1 - q * q)
    if read is not None:
        read.derive("sigma", sigma / math.sqrt(height * width))
    mask = 1.0 - torch.exp(-form / (2 * sigma[:, None, None] ** 2))
    # λ = 1 asks for no blob and λ = 0 for an all-partner image; the Gaussian only reaches these in the limit.
    mask = torch.where(lam[:, None, None] >= 1, torch.ones_like(mask), mask)
    mask = torch.where(lam[:, None, None] <= 0, torch.zeros_like(mask), mask)
    return mask[:, None]


def sigma_in_pixels(sigma_fraction: Tensor, height: int, width: int) -> Tensor:
    """σ given as a fraction of the image side √(H·W), in pixels."""
    return sigma_fraction * math.sqrt(height * width)
