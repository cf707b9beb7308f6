"""Cutout: one square of the image is filled with a constant; the label is unchanged.

DeVries, Taylor. "Improved Regularization of Convolutional Neural Networks with Cutout", 2017.
arXiv:1708.04552.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._render import box_indicator, integer_box
from ..registry import Batch, MaskMethod, MethodInfo, Mixed, Param, ParamReader, mask_generator, register

INFO = MethodInfo(
    name="cutout",
    title="Cutout",
    summary="Fills one square of the image with a constant (zero) and keeps the label unchanged.",
    formula=r"\tilde x = M\odot x + (1-M)\,c,\quad \tilde y = y",
    paper='DeVries, Taylor, "Improved Regularization of Convolutional Neural Networks with Cutout", 2017',
    arxiv="1708.04552",
    default_alpha=None,
    uses_lam=False,
    mask_only=False,
    mixes_labels=False,
    params=(
        Param("size", "side of the square, as a fraction of the shorter image side", default=0.5, low=0.0, high=1.0),
        Param("center_x", "square centre, as a fraction of the width", low=0.0, high=1.0, sampled="U(0, 1)"),
        Param("center_y", "square centre, as a fraction of the height", low=0.0, high=1.0, sampled="U(0, 1)"),
        Param("fill", "value written into the square", default=0.0, per_sample=False),
    ),
    notes="The square is clipped at the border, so near an edge less than size² is cut. λ is not used.",
)


@mask_generator(INFO)
def cutout_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """Cutout mask: 0 inside one square, 1 elsewhere; ``lam`` only sets the batch size and device.

    Params: ``size`` (fraction of the shorter side, default ½), ``center_x``/``center_y`` (fractions of the
    width/height, U(0, 1) when not pinned). Returns [B, 1, H, W] float32.
    """
    side = read.tensor("size") * min(height, width)
    x0, x1 = integer_box(read.sample_uniform("center_x", 0.0, 1.0) * width, side, width)
    y0, y1 = integer_box(read.sample_uniform("center_y", 0.0, 1.0) * height, side, height)
    return 1.0 - box_indicator(x0, x1, y0, y1, height, width)


class Cutout(MaskMethod):
    def pair(self, batch: Batch, *, generator, params) -> Tensor:
        return torch.arange(batch.size, device=batch.device)

    def mix(self, batch, partner, lam, *, alpha, generator, params):
        lam = self.draw_lam(lam, alpha, batch, generator)
        height, width = batch.images.shape[-2:]
        mask = self.render_mask(lam, height, width, generator=generator, params=params)
        fill = float(params.get("fill", 0.0))
        images = batch.images * mask.to(batch.images.dtype) + (1.0 - mask.to(batch.images.dtype)) * fill
        return Mixed(images=images, mask=mask, lam=torch.ones_like(lam), lam_requested=lam)


register(Cutout(INFO, cutout_mask))
