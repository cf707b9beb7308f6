"""Cutout: one square of the image is filled with a constant; the label is unchanged.

DeVries, Taylor. "Improved Regularization of Convolutional Neural Networks with Cutout", 2017.
arXiv:1708.04552.

The fill: the reference code cuts *after* ``Normalize``, so its zeros are the dataset's per-channel mean in
image space. This project fills with that effect by default: ``fill="batch_mean"`` writes each channel's mean
over the batch, and a caller that knows the dataset's mean passes it (``fill=(r, g, b)``, as ``msda.train``
does). ``fill=0.0`` gives the black square of [0, 1] images.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import torch
from torch import Tensor

from .._checks import describe

from .._render import box_indicator, integer_box
from ..distributions import Uniform
from ..registry import Batch, MaskMethod, MethodInfo, Mixed, Param, ParamReader, blend, mask_generator, register

def fill_values(fill, images: Tensor) -> Tensor:
    """The fill as a [C] float32 tensor on the images' device (no host sync for "batch_mean")."""
    channels = images.shape[1]
    if isinstance(fill, str):  # "batch_mean", checked by the Param
        return images.float().mean((0, 2, 3))
    if isinstance(fill, Tensor):
        values = fill.to(device=images.device, dtype=torch.float32).flatten()
    elif isinstance(fill, Real):
        values = torch.full((1,), float(fill), device=images.device)
    else:
        values = torch.tensor([float(v) for v in fill], device=images.device)
    if values.numel() not in (1, channels):
        raise ValueError(f"cutout: fill must be one number or {channels} (one per channel), got {describe(fill)}")
    return values.expand(channels)


def check_fill(label: str, value):
    """The ``fill`` Param's check: "batch_mean", a finite number, or finite numbers (one per channel)."""
    if isinstance(value, str):
        if value != "batch_mean":
            raise ValueError(f"{label} must be 'batch_mean', a number or one number per channel, got {value!r}")
        return value
    if isinstance(value, Tensor):
        if value.ndim > 1 or value.numel() == 0 or not value.is_floating_point() or not bool(value.isfinite().all()):
            raise ValueError(f"{label} must be a [C] float tensor of finite values, got {describe(value)}")
        return value
    if isinstance(value, Real) and not isinstance(value, bool):
        values = (value,)
    elif isinstance(value, Sequence) and len(value) > 0:
        values = tuple(value)
    else:
        raise ValueError(f"{label} must be 'batch_mean', a number or one number per channel, got {describe(value)}")
    if not all(isinstance(v, Real) and not isinstance(v, bool) and torch.isfinite(torch.tensor(float(v)))
               for v in values):
        raise ValueError(f"{label} must hold finite numbers, got {describe(value)}")
    return value


INFO = MethodInfo(
    name="cutout",
    title="Cutout",
    summary="Fills one square of the image with the mean colour and keeps the label unchanged.",
    formula=r"\tilde x = M\odot x + (1-M)\,c,\quad \tilde y = y",
    paper='DeVries, Taylor, "Improved Regularization of Convolutional Neural Networks with Cutout", 2017',
    arxiv="1708.04552",
    default_alpha=None,
    uses_lam=False,
    area_param="size",
    mask_only=False,
    mixes_labels=False,
    params=(
        Param("size", "side of the square, as a fraction of the shorter image side", default=0.5, low=0.0, high=1.0),
        Param("center_x", "square centre, as a fraction of the width", low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
        Param("center_y", "square centre, as a fraction of the height", low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
        Param("fill", "what the square is filled with: 'batch_mean' (each channel's mean over the batch), a "
              "number, or one number per channel (the dataset's mean)", default="batch_mean", kind="other",
              per_sample=False, validator=check_fill),
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
    x0, x1 = integer_box(read.tensor("center_x") * width, side, width)
    y0, y1 = integer_box(read.tensor("center_y") * height, side, height)
    return 1.0 - box_indicator(x0, x1, y0, y1, height, width)


class Cutout(MaskMethod):
    def pair(self, batch: Batch, *, generator, params) -> Tensor:
        return torch.arange(batch.size, device=batch.device)

    def mix(self, batch, partner, lam, *, alpha, generator, params):
        lam = self.draw_lam(lam, alpha, batch, generator)
        height, width = batch.images.shape[-2:]
        mask, read = self.render(lam, height, width, generator=generator, params=params)
        fill = read.record("fill", fill_values(read.value("fill"), batch.images))
        # One fused pass (torch.lerp, exact at mask 0 and 1), not three full-size temporaries.
        images = blend(batch.images, fill.to(batch.images.dtype)[None, :, None, None].expand_as(batch.images), mask)
        return Mixed(images=images, mask=mask, lam=torch.ones_like(lam), lam_requested=lam, params=read.used)


register(Cutout(INFO, cutout_mask))
