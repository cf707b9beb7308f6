"""Gaussian blob masks (GMix, AGMix) with their area calibrated to λ inside the image.

The blob is ``exp(−½ dᵀ Σ⁻¹ d)`` with ``Σ = σ² · R(θ) [[1, q], [q, 1]] R(θ)ᵀ`` (q = θ = 0 gives GMix's
isotropic blob). The mask, the weight of the own image, is ``1 − blob``. σ is solved per sample so that
the mask's mean over the image is λ *including* the part of the blob cut off by the border — GMix's closed
form σ = √(λN) ignores the border and overshoots λ when the centre is near an edge.

σ is found by bisection in log σ on a coarse subgrid (at most 32 points per axis), then Newton steps on the
full grid remove the subsampling error.

Cost. The isotropic blob on a rectangle is separable, ``exp(−dx²/2σ²) · exp(−dy²/2σ²)``, so its mean over
the image is the product of two 1-D means and GMix solves σ in O(H + W) per step; only the final mask touches
the H·W pixels, once. The anisotropic blob is not separable (its cross term couples the axes): AGMix evaluates
it on the full grid, in place in three image-sized buffers (the last becomes the mask), and gets the same σ
and mask, bit for bit, as fresh temporaries for every operation gave. Both bisect four halvings per evaluation
(:func:`msda._solve.bisect`'s ``levels``): on a CPU every operation on more than a few thousand values wakes
the worker threads, and on a loaded machine that wake-up, not the arithmetic, is what a small operation costs.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._render import pixel_centers
from ._solve import bisect

_COARSE_SIDE = 32
_NEWTON_STEPS = 2
_BISECT_ITERS = 24
_BISECT_LEVELS = 4  # halvings per evaluation: 15 candidates per sample, 6 evaluations


def _offsets(centre: Tensor, size: int) -> Tensor:
    """[B, size] pixel centre − centre along one axis, in pixels."""
    return pixel_centers(size, centre.device)[None, :] - centre[:, None]


def _coarse_axis(size: int) -> slice:
    """The coarse grid's points along an axis of `size` pixels.

    One stride per axis: a single stride from the longer side skipped past the whole shorter side of an
    elongated image (8×1000: rows from 16 on), leaving an empty grid whose NaN mean froze the bisection.
    """
    stride = max(1, math.ceil(size / _COARSE_SIDE))
    return slice(stride // 2, None, stride)


def _bracket(cover: Tensor, det: Tensor, height: int, width: int) -> tuple[Tensor, float]:
    """(low, high) σ bracketing the root. A blob wholly inside the image covers 2πσ²√det / (H·W); the border
    only removes area, so that closed form's σ (halved, for the pixel grid's discreteness) is below the root."""
    inside = (cover * height * width / (2 * math.pi * det.sqrt())).sqrt()
    return (0.5 * inside).clamp_min(1e-3), 50.0 * max(height, width)


def _newton_step(sigma: Tensor, area: Tensor, weighted: Tensor, cover: Tensor) -> Tensor:
    """One Newton step on area(σ) = cover, from area = mean(e^{−f/2σ²}) and weighted = mean(e^{−f/2σ²}·f):
    d/dσ mean(e^{−f/2σ²}) = mean(e^{−f/2σ²} · f/σ³). The step is clamped to ±σ/2."""
    slope = weighted / sigma**3
    step = ((area - cover) / slope.clamp_min(1e-12)).clamp(-sigma / 2, sigma / 2)
    return torch.where(slope > 1e-12, sigma - step, sigma)


def _exponent_divisor(sigma: Tensor) -> Tensor:
    """−2σ²: the exponent is f / (−2σ²), the same number as −f / 2σ² (IEEE division is sign-symmetric)."""
    return -(2 * sigma**2)


def _blob_to_mask(blob: Tensor, lam: Tensor | None) -> Tensor:
    """1 − blob in place, as (−blob)·1 + 1 (the same number). With λ given, λ ≥ 1 gives exactly 1 (no blob) and
    λ ≤ 0 exactly 0 (all partner): the Gaussian reaches these only in the limit. Folded into the same two
    passes, as −b·blob + a with (a, b) = (1, 1), (1, 0) or (0, 0) per sample."""
    if lam is None:
        return blob.neg_().add_(1.0)
    drawn = ((lam > 0) & (lam < 1)).float()[:, None, None]
    return blob.mul_(-drawn).add_((lam > 0).float()[:, None, None])


# ----------------------------------------------------------------------------------------------------------
# Anisotropic blob (AGMix): on the full H × W grid.

def quadratic_form(cx: Tensor, cy: Tensor, q: Tensor, theta: Tensor, height: int, width: int) -> Tensor:
    """[B, H, W] dᵀ (R Σ₀ Rᵀ)⁻¹ d for d = pixel centre − (cx, cy), in pixels², Σ₀ = [[1, q], [q, 1]].

    (e1² − 2q·e1·e2 + e2²) / (1 − q²) in the rotated frame (e1, e2) = Rᵀd, operation for operation, in place.
    """
    return _quadratic_form(cx, cy, q, theta, height, width)[0]


def _quadratic_form(cx: Tensor, cy: Tensor, q: Tensor, theta: Tensor, height: int, width: int
                    ) -> tuple[Tensor, Tensor]:
    """(:func:`quadratic_form`, a spent [B, H, W] buffer of the same shape for the caller to reuse)."""
    dx = _offsets(cx, width)[:, None, :]
    dy = _offsets(cy, height)[:, :, None]
    cos, sin = theta.cos()[:, None, None], theta.sin()[:, None, None]
    e1 = cos * dx + sin * dy  # coordinates in the rotated frame: Rᵀ d
    e2 = -sin * dx + cos * dy
    q = q[:, None, None]
    form = e1 * e1
    form.sub_(e1.mul_(2 * q).mul_(e2))  # (2q·e1)·e2: products commute exactly
    form.add_(e2.mul_(e2))
    return form.div_(1 - q * q), e1


def blob_area(form: Tensor, sigma: Tensor) -> Tensor:
    """[B] mean over the image of exp(−form / 2σ²)."""
    return torch.exp(form / _exponent_divisor(sigma[:, None, None])).mean((1, 2))


def solve_sigma(form: Tensor, cover: Tensor, det: Tensor, scratch: Tensor | None = None) -> Tensor:
    """[B] σ (pixels) such that the blob covers `cover` of the image (mean of exp(−form/2σ²) = cover).

    `det` is det(Σ₀) = 1 − q². The Newton steps work in one image-sized buffer (`scratch`, if given); each mean
    is taken over a [B, H, W] tensor, as a separate reduction, so that it sums in the same order as ever (a CPU
    splits the sum of a single image's pixels across its threads, but not the sums of two).
    """
    height, width = form.shape[-2:]
    coarse = form[:, _coarse_axis(height), _coarse_axis(width)][:, None]  # [B, 1, h, w] view

    def coarse_area(sigma: Tensor) -> Tensor:  # [B, K] candidates → [B, K]
        return torch.div(coarse, _exponent_divisor(sigma)[:, :, None, None]).exp_().mean((2, 3))

    low, high = _bracket(cover, det, height, width)
    sigma = bisect(coarse_area, cover, low, high, iters=_BISECT_ITERS, log=True, levels=_BISECT_LEVELS)
    weight = torch.empty_like(form) if scratch is None else scratch
    for _ in range(_NEWTON_STEPS):
        area = torch.div(form, _exponent_divisor(sigma)[:, None, None], out=weight).exp_().mean((1, 2))
        sigma = _newton_step(sigma, area, weight.mul_(form).mean((1, 2)), cover)
    return sigma


def _anisotropic_mask(lam: Tensor, cx: Tensor, cy: Tensor, q: Tensor, theta: Tensor, sigma: Tensor | None,
                      height: int, width: int) -> tuple[Tensor, Tensor | None]:
    """([B, H, W] own-image weight 1 − blob, the solved σ or None)."""
    form, scratch = _quadratic_form(cx, cy, q, theta, height, width)
    if sigma is None:
        solved = solve_sigma(form, 1.0 - lam, 1 - q * q, scratch)
        blob = form.div_(_exponent_divisor(solved)[:, None, None]).exp_()
        return _blob_to_mask(blob, lam), solved
    blob = form.div_(_exponent_divisor(sigma.clamp_min(1e-6))[:, None, None]).exp_()
    return _blob_to_mask(blob, None), None


# ----------------------------------------------------------------------------------------------------------
# Isotropic blob (GMix): separable, every mean over the grid a product of two 1-D means.

def solve_sigma_isotropic(dx: Tensor, dy: Tensor, cover: Tensor) -> Tensor:
    """[B] σ (pixels) such that the isotropic blob covers `cover` of the image, from the offsets of the pixel
    centres along each axis, dx [B, W] and dy [B, H]: the bisection on the coarse subgrid and the Newton steps
    of :func:`solve_sigma`, in O(H + W) per step.

    With f = dx² + dy² and e^{−f/2σ²} = gx·gy: mean(e^{−f/2σ²}) = mean(gx)·mean(gy) and
    mean(e^{−f/2σ²}·f) = mean(gx·dx²)·mean(gy) + mean(gx)·mean(gy·dy²).
    """
    height, width = dy.shape[1], dx.shape[1]
    # Only O(H + W) values: float64 costs nothing here and removes the rounding of mean(e^{−f/2σ²}) ≈ 1 − λ,
    # which at λ ≈ 10⁻⁴ leaves a float32 σ uncertain by half a percent (MPS has no float64).
    work = torch.float32 if dx.device.type == "mps" else torch.float64
    dx, dy, cover = dx.to(work), dy.to(work), cover.to(work)
    squares = torch.cat([dx * dx, dy * dy], 1)  # [B, W + H]: fx then fy
    coarse = torch.cat([squares[:, :width][:, _coarse_axis(width)], squares[:, width:][:, _coarse_axis(height)]], 1)
    coarse_width = len(range(width)[_coarse_axis(width)])

    def coarse_area(sigma: Tensor) -> Tensor:  # [B, K] candidates → [B, K]
        g = torch.div(coarse[:, None, :], _exponent_divisor(sigma)[:, :, None]).exp_()
        return g[..., :coarse_width].mean(-1) * g[..., coarse_width:].mean(-1)

    low, high = _bracket(cover, torch.ones_like(cover), height, width)
    sigma = bisect(coarse_area, cover, low, high, iters=_BISECT_ITERS, log=True, levels=_BISECT_LEVELS)
    for _ in range(_NEWTON_STEPS):
        g = torch.div(squares, _exponent_divisor(sigma)[:, None]).exp_()
        g_squares = g * squares
        mean_x, mean_y = g[:, :width].mean(1), g[:, width:].mean(1)
        weighted = g_squares[:, :width].mean(1) * mean_y + mean_x * g_squares[:, width:].mean(1)
        sigma = _newton_step(sigma, mean_x * mean_y, weighted, cover)
    return sigma.float()


def _isotropic_mask(lam: Tensor, cx: Tensor, cy: Tensor, sigma: Tensor | None, height: int, width: int
                    ) -> tuple[Tensor, Tensor | None]:
    """([B, H, W] own-image weight 1 − gy ⊗ gx, the solved σ or None): one image-sized write."""
    dx, dy = _offsets(cx, width), _offsets(cy, height)
    solved = solve_sigma_isotropic(dx, dy, 1.0 - lam) if sigma is None else None
    sigma = solved if sigma is None else sigma.clamp_min(1e-6)
    g = torch.cat([dx * dx, dy * dy], 1).div_(_exponent_divisor(sigma)[:, None]).exp_()
    gx, gy = g[:, :width], g[:, width:]
    if solved is not None:
        # λ ≥ 1: gx = 0 makes the mask exactly 1 (no blob); λ ≤ 0: gx = gy = 1 make it exactly 0.
        gx = torch.where(lam[:, None] >= 1, 0.0, gx)
        empty = lam[:, None] <= 0
        gx, gy = torch.where(empty, 1.0, gx), torch.where(empty, 1.0, gy)
    mask = torch.addcmul(torch.ones((), device=lam.device), gy[:, :, None], gx[:, None, :], value=-1.0)
    return mask, solved


def gaussian_mask(lam: Tensor, cx: Tensor, cy: Tensor, q: Tensor | None, theta: Tensor | None,
                  sigma: Tensor | None, height: int, width: int, read=None) -> Tensor:
    """[B, 1, H, W] own-image weight 1 − blob; σ in pixels, or None to calibrate it to λ.

    ``q`` and ``theta`` None give the isotropic blob (GMix), computed separably. With a ParamReader ``read``, a
    calibrated σ is reported as the derived ``sigma`` (a fraction of √(H·W), the unit of the ``sigma``
    parameter).
    """
    if q is None and theta is None:
        mask, solved = _isotropic_mask(lam, cx, cy, sigma, height, width)
    else:
        zeros = torch.zeros_like(cx)
        mask, solved = _anisotropic_mask(lam, cx, cy, zeros if q is None else q, zeros if theta is None else theta,
                                         sigma, height, width)
    if solved is not None and read is not None:
        read.derive("sigma", solved / math.sqrt(height * width))
    return mask[:, None]


def sigma_in_pixels(sigma_fraction: Tensor, height: int, width: int) -> Tensor:
    """σ given as a fraction of the image side √(H·W), in pixels."""
    return sigma_fraction * math.sqrt(height * width)
