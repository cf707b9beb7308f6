"""CutMix: a box of the partner image is pasted over the image; labels mix by the box's area.

Yun, Han, Oh, Chun, Choe, Yoo. "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable
Features", ICCV 2019. arXiv:1905.04899.
"""

from __future__ import annotations

from torch import Tensor

from .._render import box_complement, integer_box
from ..distributions import Uniform
from ..registry import MaskMethod, MethodInfo, Param, ParamReader, mask_generator, register

INFO = MethodInfo(
    name="cutmix",
    title="CutMix",
    summary="Pastes a box of the partner image, of area (1 − λ) of the image, at a random place.",
    formula=r"\tilde x = M\odot x + (1-M)\odot x_p,\ M = 1 - \mathbb{1}_{\text{box}},"
            r"\ \lambda = \tfrac{1}{HW}\textstyle\sum M",
    paper='Yun et al., "CutMix: Regularization Strategy to Train Strong Classifiers with Localizable Features", '
          "ICCV 2019",
    arxiv="1905.04899",
    default_alpha=1.0,
    params=(
        Param("center_x", "box centre, as a fraction of the width", low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
        Param("center_y", "box centre, as a fraction of the height", low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
        Param("fit_inside", "keep the whole box inside the image (centres then span the free space), so the "
              "box's area is exactly 1 − λ", default=False, kind="bool"),
    ),
    notes="The box has sides W·√(1 − λ) × H·√(1 − λ) and is clipped at the border; λ is then the area kept. "
          "With fit_inside=True no clipping happens.",
)


@mask_generator(INFO)
def cutmix_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """CutMix mask: 0 on a box of sides (W·√(1 − λ), H·√(1 − λ)) clipped at the border, 1 elsewhere.

    Params: ``center_x``/``center_y`` (fractions of the width/height, U(0, 1) when not pinned);
    ``fit_inside`` (default False): the centre fractions then place the box within the free space, so it is
    never clipped. Returns [B, 1, H, W] float32; its mean is the effective λ.
    """
    side = (1.0 - lam).clamp_min(0).sqrt()
    box_w, box_h = side * width, side * height
    center_x = read.tensor("center_x")
    center_y = read.tensor("center_y")
    if read.value("fit_inside"):
        x_mid = box_w.round() / 2 + center_x * (width - box_w.round())
        y_mid = box_h.round() / 2 + center_y * (height - box_h.round())
    else:
        x_mid, y_mid = center_x * width, center_y * height
    x0, x1 = integer_box(x_mid, box_w, width)
    y0, y1 = integer_box(y_mid, box_h, height)
    return box_complement(x0, x1, y0, y1, height, width)


register(MaskMethod(INFO, cutmix_mask))
