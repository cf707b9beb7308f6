"""ResizeMix: the whole partner image, shrunk, is pasted into the image.

Qin, Fang, Zhao, Wang, Zhang, Xiao, Liu, Wang. "ResizeMix: Mixing Data with Preserved Object Information
and True Labels", 2020. arXiv:2012.11101.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._render import box_complement
from .._warp import paste_resized
from ..distributions import Uniform
from ..registry import MaskMethod, MethodInfo, Mixed, Param, ParamReader, mask_generator, register

INFO = MethodInfo(
    name="resizemix",
    title="ResizeMix",
    summary="Shrinks the whole partner image by a factor τ and pastes it at a random place inside the image.",
    formula=r"\tilde x = M\odot x + (1-M)\odot \operatorname{paste}(\operatorname{resize}_\tau(x_p)),\ "
            r"\lambda = 1 - \tau^2",
    paper='Qin et al., "ResizeMix: Mixing Data with Preserved Object Information and True Labels", 2020',
    arxiv="2012.11101",
    default_alpha=1.0,
    uses_lam=False,
    area_param="tau",
    mask_only=False,
    params=(
        Param("tau", "scale of the pasted partner, per side", low=0.0, high=1.0, low_open=True,
              sampled=Uniform(0.1, 0.8)),
        Param("offset_x", "horizontal position of the paste within the free space (0 left, 1 right)",
              low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
        Param("offset_y", "vertical position of the paste within the free space (0 top, 1 bottom)",
              low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
        Param("match_lam", "take τ = √(1 − λ) from the requested λ instead of sampling it", default=False,
              kind="bool"),
    ),
    notes="The paste lies fully inside the image; its pixel box is rounded, and λ is 1 − (box area)/(H·W). "
          "The partner is resampled with a mip pyramid, so strong shrinking does not alias.",
)


def _box(lam: Tensor, height: int, width: int, read: ParamReader):
    if read.value("match_lam") and not read.pinned("tau"):
        tau = read.derive("tau", (1.0 - lam).clamp_min(0).sqrt())
    else:
        tau = read.tensor("tau")
    box_w = (tau * width).round().clamp(0, width)
    box_h = (tau * height).round().clamp(0, height)
    x0 = (read.tensor("offset_x") * (width - box_w)).round()
    y0 = (read.tensor("offset_y") * (height - box_h)).round()
    return x0, y0, box_w, box_h


@mask_generator(INFO)
def resizemix_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """ResizeMix mask: 0 on the paste box of sides (τW, τH), fully inside the image; 1 elsewhere.

    Params: ``tau`` U(0.1, 0.8), ``offset_x``/``offset_y`` U(0, 1), ``match_lam`` (τ = √(1 − λ)).
    Returns [B, 1, H, W] float32; λ = its mean ≈ 1 − τ².
    """
    x0, y0, box_w, box_h = _box(lam, height, width, read)
    return box_complement(x0, x0 + box_w, y0, y0 + box_h, height, width)


class ResizeMix(MaskMethod):
    def mix(self, batch, partner, lam, *, alpha, generator, params):
        lam = self.draw_lam(lam, alpha, batch, generator)
        height, width = batch.images.shape[-2:]
        read = self.reader(batch, generator, params)
        x0, y0, box_w, box_h = _box(lam, height, width, read)
        mask = box_complement(x0, x0 + box_w, y0, y0 + box_h, height, width)
        partner_images = batch.images[partner]  # a fresh gather, owned here: pasted into, then blended into
        pasted = paste_resized(partner_images, x0, y0, box_w.clamp_min(1), box_h.clamp_min(1),
                               out=partner_images if partner_images.dtype == torch.float32 else None)
        # A 0/1 mask: the lerp is exact, the own image where it is 1 and the paste where it is 0.
        images = pasted.lerp_(batch.images, mask.to(pasted.dtype))
        return Mixed(images=images, mask=mask, lam_requested=lam, params=read.used,
                     details={"box": torch.stack([x0, y0, box_w, box_h], 1), **read.derived})


register(ResizeMix(INFO, resizemix_mask))
