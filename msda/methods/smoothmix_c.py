"""SmoothMix (circle): the partner shows through a separable Gaussian patch.

Lee, Zaheer, Astrid, Lee. "SmoothMix: a Simple Yet Effective Data Augmentation to Train Robust
Classifiers", CVPR Workshops 2020 (smoothmix.md §3.3, eq. 6–7).

G_w(x) = exp(−(x − μ_w)²/2σ_w²), G_h likewise, G = G_w ⊗ G_h is the partner's weight, and the own image's
mask is 1 − G. σ is drawn per sample as a fraction U(0.25, 0.5) of the side (per axis, so the patch keeps
its shape when the image is resized) and λ is the mask's mean (eq. 2).
"""

from __future__ import annotations

from torch import Tensor

from .._render import outer, pixel_centers
from .._solve import bisect
from ..distributions import Uniform
from ..registry import MaskMethod, MethodInfo, Param, ParamReader, mask_generator, register
from .smoothmix_s import MATCH_LAM, SMOOTHMIX_CENTER

INFO = MethodInfo(
    name="smoothmix_c",
    title="SmoothMix (circle)",
    summary="Blends in the partner through a soft Gaussian spot, so the two images meet without any edge.",
    formula=r"G = e^{-\frac{(x-\mu_w)^2}{2\sigma_w^2}} \otimes e^{-\frac{(y-\mu_h)^2}{2\sigma_h^2}},\ "
            r"M = 1 - G,\ \lambda = \tfrac{1}{HW}\textstyle\sum M",
    paper='Lee et al., "SmoothMix: a Simple Yet Effective Data Augmentation to Train Robust Classifiers", '
          "CVPR Workshops 2020",
    arxiv=None,
    default_alpha=1.0,
    uses_lam=False,
    area_param="sigma",
    params=SMOOTHMIX_CENTER + (
        Param("sigma", "spread σ of the Gaussian, as a fraction of the image side (per axis)", low=0.0,
              high=10.0, low_open=True, sampled=Uniform(0.25, 0.5)),
        MATCH_LAM,
    ),
    notes="By default σ is sampled as in the paper and λ is the mean of the mask; with match_lam=True σ is "
          "solved so that the mask's mean is the requested λ.",
)


def _profiles(sigma: Tensor, cx: Tensor, cy: Tensor, height: int, width: int):
    device = sigma.device
    gx = (-((pixel_centers(width, device)[None] - (cx * width)[:, None]) ** 2)
          / (2 * (sigma * width)[:, None] ** 2)).exp()
    gy = (-((pixel_centers(height, device)[None] - (cy * height)[:, None]) ** 2)
          / (2 * (sigma * height)[:, None] ** 2)).exp()
    return gy, gx


@mask_generator(INFO)
def smoothmix_c_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """SmoothMix-C mask 1 − G_w ⊗ G_h with Gaussian profiles.

    Params: ``sigma`` (fraction of the side; U(0.25, 0.5)), ``center_x``/``center_y`` U(0, 1),
    ``match_lam`` (solve σ from λ). Returns [B, 1, H, W] float32; λ is its mean.
    """
    cx = read.tensor("center_x")
    cy = read.tensor("center_y")
    if read.value("match_lam") and read.value("sigma") is None:
        def area(s):
            gy, gx = _profiles(s, cx, cy, height, width)
            return gy.mean(1) * gx.mean(1)
        sigma = read.derive("sigma", bisect(area, 1.0 - lam, 1e-4, 100.0, iters=40, log=True))
    else:
        sigma = read.tensor("sigma")
    gy, gx = _profiles(sigma.clamp_min(1e-6), cx, cy, height, width)
    return 1.0 - outer(gy, gx)


register(MaskMethod(INFO, smoothmix_c_mask))
