"""LMix: an FMix-style mask, and the mixed image high-boost sharpened in the Fourier domain.

Yan et al. "LMix: Regularization Strategy for Convolutional Neural Networks", Signal, Image and Video
Processing, 2023 (lmix.txt §3).

The paper's §3 is ambiguous about where the high-pass of eq. (5) is applied. This project reads it as: the
mask is FMix's (eq. 3 and 6, decay δ), and the *mixed image* is sharpened with the high-boost filter of the
same frequency grid,

    x̃ ← F⁻¹[(1 + k·H_δ) · F(x̃)],   H_δ = 1 − L_δ,   L_δ = (f_min / max(f, f_min))^δ,

where L_δ is the low-pass normalised so L_δ(0) = 1 (the mean intensity is kept) and k is the sharpening
strength (k = 0 turns it off). The sharpened image is not clipped: it keeps the input's value range only
approximately, as any high-boost filter does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._fourier import low_pass
from ..registry import MaskMethod, MethodInfo, Mixed, Param, ParamReader, blend_into, mask_generator, register
from .fmix import FOURIER_PARAMS, fourier_mask

INFO = MethodInfo(
    name="lmix",
    title="LMix",
    summary="Mixes with an FMix-style low-frequency mask, then sharpens the mixed image with a Fourier "
            "high-boost filter.",
    formula=r"\tilde x = \mathcal{F}^{-1}\big[(1 + k\,(1 - L_\delta))\,\mathcal{F}(M\odot x + (1-M)\odot x_p)\big]",
    paper='Yan et al., "LMix: Regularization Strategy for Convolutional Neural Networks", '
          "Signal, Image and Video Processing, 2023",
    arxiv=None,
    default_alpha=1.0,
    mask_only=False,
    params=FOURIER_PARAMS + (
        Param("sharpen", "high-boost strength k; 0 turns the sharpening off", default=1.0, low=0.0, high=10.0),
    ),
)


@mask_generator(INFO)
def lmix_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """LMix mask: the FMix mask (same ``decay``, ``max_soft``, ``noise`` params); ``sharpen`` acts on images only.

    Returns [B, 1, H, W] float32 with mean round(λ·H·W)/(H·W).
    """
    return fourier_mask(lam, height, width, read)


def high_boost(images: Tensor, decay: Tensor, strength: Tensor) -> Tensor:
    """F⁻¹[(1 + k·(1 − L_δ))·F(x)] per sample; computed in float32, returned in the images' dtype.

    Args:
        images: [B, C, H, W]. decay: [B] δ. strength: [B] k.
    """
    height, width = images.shape[-2:]
    gain = 1.0 + strength[:, None, None] * (1.0 - low_pass(decay, height, width))
    spectrum = torch.fft.rfft2(images.float()) * gain[:, None]
    sharpened = torch.fft.irfft2(spectrum, s=(height, width))
    # k = 0 must return the blend itself, not its FFT round trip.
    return torch.where(strength[:, None, None, None] > 0, sharpened, images.float()).to(images.dtype)


class LMix(MaskMethod):
    def mix(self, batch, partner, lam, *, alpha, generator, params):
        lam = self.draw_lam(lam, alpha, batch, generator)
        height, width = batch.images.shape[-2:]
        read = ParamReader(self.info, params, batch=batch.size, device=batch.device, generator=generator,
                           checked=True)
        mask = fourier_mask(lam, height, width, read)
        mixed = blend_into(batch.images[partner], batch.images, mask)
        images = high_boost(mixed, read.tensor("decay"), read.tensor("sharpen"))
        return Mixed(images=images, mask=mask, lam_requested=lam)


register(LMix(INFO, lmix_mask))
