"""GMix: the partner shows through an isotropic Gaussian blob.

Park, Yun, Ha, Ha, Hwang. "A Unified Analysis of Mixed Sample Data Augmentation: A Loss Function
Perspective", NeurIPS 2022. arXiv:2208.09913 (GMix as summarised in miamix.md §2, eq. 3–4).
"""

from __future__ import annotations

from torch import Tensor

from .._gaussian import gaussian_mask, sigma_in_pixels
from ..distributions import Derived, Uniform
from ..registry import MaskMethod, MethodInfo, Param, ParamReader, mask_generator, register

CENTER_PARAMS = (
    Param("center_x", "blob centre, as a fraction of the width", low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
    Param("center_y", "blob centre, as a fraction of the height", low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
    Param("sigma", "blob spread σ, as a fraction of the image side √(H·W); when not pinned, σ is solved per "
          "sample so the mask's mean is λ", low=0.0, high=10.0, low_open=True,
          sampled=Derived("solved per sample so that the mask's mean is λ")),
)

INFO = MethodInfo(
    name="gmix",
    title="GMix",
    summary="Lets the partner show through a soft Gaussian blob whose size is set so it covers 1 − λ of the image.",
    formula=r"M(p) = 1 - \exp\!\left(-\frac{\lVert p-c\rVert^2}{2\sigma^2}\right),\quad "
            r"\sigma:\ \tfrac{1}{HW}\textstyle\sum_p M(p) = \lambda",
    paper='Park et al., "A Unified Analysis of Mixed Sample Data Augmentation: A Loss Function Perspective", '
          "NeurIPS 2022",
    arxiv="2208.09913",
    default_alpha=1.0,
    exact_lam=True,
    area_param="sigma",
    params=CENTER_PARAMS,
    notes="σ is calibrated per sample by bisection so that the blob's area inside the image is 1 − λ, even "
          "when the border cuts the blob (the paper's σ = √(λN) ignores the border).",
)


@mask_generator(INFO)
def gmix_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """GMix mask 1 − exp(−|p − c|²/2σ²), σ calibrated so the mean is λ.

    Params: ``center_x``/``center_y`` (fractions, U(0, 1)), ``sigma`` (fraction of √(H·W); pins σ and
    ignores λ). Returns [B, 1, H, W] float32.
    """
    sigma = read.value("sigma")
    return gaussian_mask(
        lam,
        read.tensor("center_x") * width,
        read.tensor("center_y") * height,
        None, None,  # isotropic: computed separably
        None if sigma is None else sigma_in_pixels(read.tensor("sigma"), height, width),
        height, width, read,
    )


register(MaskMethod(INFO, gmix_mask))
