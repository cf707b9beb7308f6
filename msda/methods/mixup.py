"""Mixup: a constant mask — every pixel is the same convex combination of the two images.

Zhang, Cisse, Dauphin, Lopez-Paz. "mixup: Beyond Empirical Risk Minimization", ICLR 2018. arXiv:1710.09412.
"""

from __future__ import annotations

from torch import Tensor

from .._render import constant
from ..registry import MaskMethod, MethodInfo, ParamReader, mask_generator, register

INFO = MethodInfo(
    name="mixup",
    title="Mixup",
    summary="Blends the two images pixel by pixel with one global weight λ and mixes the labels the same way.",
    formula=r"\tilde x = \lambda x + (1-\lambda)\,x_p,\quad \tilde y = \lambda y + (1-\lambda)\,y_p",
    paper='Zhang, Cisse, Dauphin, Lopez-Paz, "mixup: Beyond Empirical Risk Minimization", ICLR 2018',
    arxiv="1710.09412",
    default_alpha=1.0,
    exact_lam=True,
)


@mask_generator(INFO)
def mixup_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """Mixup mask: λ everywhere.

    Returns a [B, 1, H, W] float32 view of ``lam`` (no copy); it takes no parameters.
    """
    return constant(lam, height, width)


register(MaskMethod(INFO, mixup_mask))
