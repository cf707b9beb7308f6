"""SmoothMix (square): a CutMix-like box whose border blends linearly from one image to the other.

Lee, Zaheer, Astrid, Lee. "SmoothMix: a Simple Yet Effective Data Augmentation to Train Robust
Classifiers", CVPR Workshops 2020 (smoothmix.md §3.1–3.3, eq. 5–6).

Eq. (5) is garbled in the paper's text; this project renders the intended profile: along each axis the
patch weight is 1 in the middle, ½ at the nominal edge μ ± σ/2 and falls linearly to 0 over a ramp of
total width 2k centred on that edge, with k = ``border`` · σ (k = 0.2 of the patch by default):

    G_dim(x) = clip(½ − (|x − μ| − σ/2) / (2k), 0, 1),     G = G_w ⊗ G_h    (eq. 6)

so the blended area equals that of a hard box of side σ (the paper: "preserves the same amount of blended
pixel information"). G is the partner's patch; the own image's mask is 1 − G.
"""

from __future__ import annotations

from torch import Tensor

from .._render import outer, pixel_centers
from .._solve import bisect
from ..distributions import Uniform
from ..registry import MaskMethod, MethodInfo, Param, ParamReader, mask_generator, register

SMOOTHMIX_CENTER = (
    Param("center_x", "patch centre μ_w, as a fraction of the width", low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
    Param("center_y", "patch centre μ_h, as a fraction of the height", low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
)
MATCH_LAM = Param(
    "match_lam", "solve σ per sample so the mask's mean is the requested λ (the paper samples σ instead and "
    "takes λ from the mask)", default=False, kind="bool")

INFO = MethodInfo(
    name="smoothmix_s",
    title="SmoothMix (square)",
    summary="Pastes a square patch of the partner whose border fades linearly, so no hard edge is created.",
    formula=r"G_d(x) = \operatorname{clip}\!\Big(\tfrac12 - \tfrac{|x-\mu_d| - \sigma/2}{2k},0,1\Big),\ "
            r"M = 1 - G_w \otimes G_h,\ \lambda = \tfrac{1}{HW}\textstyle\sum M",
    paper='Lee et al., "SmoothMix: a Simple Yet Effective Data Augmentation to Train Robust Classifiers", '
          "CVPR Workshops 2020",
    arxiv=None,
    default_alpha=1.0,
    uses_lam=False,
    area_param="sigma",
    params=SMOOTHMIX_CENTER + (
        Param("sigma", "span σ of the patch, as a fraction of the image side (per axis)", low=0.0, high=4.0,
              sampled=Uniform(0.0, 1.0)),
        Param("border", "half-width k of the linear ramp, as a fraction of the span", default=0.2, low=0.0,
              high=1.0, low_open=True),
        MATCH_LAM,
    ),
    notes="By default σ is sampled as in the paper and λ is the mean of the mask; with match_lam=True σ is "
          "solved so that the mask's mean is the requested λ.",
)


def _ramp(coords: Tensor, center: Tensor, span: Tensor, border: Tensor) -> Tensor:
    """[B, N] linear-edged profile: 1 inside, ½ at |x − μ| = span/2, 0 beyond a ramp of half-width k."""
    k = (border * span).clamp_min(1e-3)[:, None]
    return (0.5 - ((coords[None] - center[:, None]).abs() - span[:, None] / 2) / (2 * k)).clamp(0.0, 1.0)


def _profiles(sigma: Tensor, cx: Tensor, cy: Tensor, border: Tensor, height: int, width: int):
    device = sigma.device
    gx = _ramp(pixel_centers(width, device), cx * width, sigma * width, border)
    gy = _ramp(pixel_centers(height, device), cy * height, sigma * height, border)
    return gy, gx


@mask_generator(INFO)
def smoothmix_s_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """SmoothMix-S mask 1 − G_w ⊗ G_h with linear ramps at the patch's border.

    Params: ``sigma`` (span, fraction of the side; U(0, 1)), ``border`` (ramp half-width as a fraction of
    the span, default 0.2), ``center_x``/``center_y`` U(0, 1), ``match_lam`` (solve σ from λ).
    Returns [B, 1, H, W] float32; λ is its mean.
    """
    cx = read.tensor("center_x")
    cy = read.tensor("center_y")
    border = read.tensor("border")
    if read.value("match_lam") and read.value("sigma") is None:
        def area(s):
            gy, gx = _profiles(s, cx, cy, border, height, width)
            return gy.mean(1) * gx.mean(1)
        # σ = 4 puts the ramp's inner end beyond the far border from any centre: the patch covers everything.
        sigma = read.derive("sigma", bisect(area, 1.0 - lam, 0.0, 4.0, iters=32))
    else:
        sigma = read.tensor("sigma")
    gy, gx = _profiles(sigma, cx, cy, border, height, width)
    return 1.0 - outer(gy, gx)


register(MaskMethod(INFO, smoothmix_s_mask))
