"""FMix: the partner fills the lowest-valued region of a random low-frequency image.

Harris, Marcu, Painter, Niranjan, Prügel-Bennett, Hare. "FMix: Enhancing Mixed Sample Data Augmentation",
2020. arXiv:2002.12047.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._checks import describe
from .._fourier import keep_top, low_frequency_image, spectrum_shape
from ..distributions import Drawn
from ..registry import MaskMethod, MethodInfo, Param, ParamReader, mask_generator, register

FOURIER_PARAMS = (
    Param("decay", "decay power δ of the 1/f^δ spectrum; larger means smoother, blobbier masks",
          default=3.0, low=0.0, high=8.0),
    Param("max_soft", "half-width of the soft ramp at the mask's edge, as a fraction of the pixels "
          "(FMix's max_soft); 0 gives a binary mask", default=0.0, low=0.0, high=0.5),
    Param("noise", "the complex Gaussian spectrum, real and imaginary parts, shape [B, 2, H, W//2 + 1]",
          kind="tensor", sampled=Drawn("N(0, 1) per frequency bin")),
)

INFO = MethodInfo(
    name="fmix",
    title="FMix",
    summary="Thresholds a random low-frequency image so that the partner fills irregular blobs covering 1 − λ.",
    formula=r"g = \mathcal{F}^{-1}\!\left[\frac{z}{f^{\delta}}\right],\ z\sim\mathcal{CN}(0,I),\ "
            r"M = \mathbb{1}\big[g \in \operatorname{top}_{\lambda HW}(g)\big]",
    paper='Harris et al., "FMix: Enhancing Mixed Sample Data Augmentation", 2020',
    arxiv="2002.12047",
    default_alpha=1.0,
    exact_lam=True,
    params=FOURIER_PARAMS,
    notes="Exactly round(λ·H·W) pixels keep the own image; the rest take the partner.",
)


def sample_noise(read: ParamReader, height: int, width: int) -> Tensor:
    """The pinned spectrum noise, else standard-normal draws: [B, 2, H, W//2 + 1] float32."""
    shape = (read.batch, 2, *spectrum_shape(height, width))
    noise = read.value("noise")
    if noise is None:
        return read.record("noise", torch.randn(shape, generator=read.generator, device=read.device))
    if tuple(noise.shape) != shape:
        raise ValueError(f"{read.info.name}: noise must have shape {list(shape)}, got {describe(noise)}")
    return noise.to(device=read.device, dtype=torch.float32)


def fourier_mask(lam: Tensor, height: int, width: int, read: ParamReader, boost: Tensor | None = None) -> Tensor:
    """The FMix mask for any method whose parameters include FOURIER_PARAMS (FMix, LMix).

    ``boost``: LMix's high-boost strength k per sample (None for FMix), see :func:`low_frequency_image`.
    """
    grey = low_frequency_image(sample_noise(read, height, width), read.tensor("decay"), height, width, boost)
    pixels = height * width
    count = (lam * pixels).round()
    max_soft = read.tensor("max_soft")
    if isinstance(read.value("max_soft"), (int, float)) and read.value("max_soft") == 0:
        soft = None  # a binary mask (the default): keep_top needs no ranking beyond the threshold
    else:
        # FMix limits the ramp so it never runs past either end of the ranking.
        soft = (torch.minimum(max_soft, torch.minimum(lam, 1.0 - lam)) * pixels).floor()
    return keep_top(grey.reshape(read.batch, pixels), count, soft).reshape(read.batch, 1, height, width)


@mask_generator(INFO)
def fmix_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """FMix mask: 1 on the round(λ·H·W) highest pixels of a 1/f^δ low-frequency image, 0 elsewhere.

    Params: ``decay`` δ (default 3), ``max_soft`` (default 0: binary), ``noise`` ([B, 2, H, W//2 + 1]
    spectrum, N(0, 1) when not pinned). Returns [B, 1, H, W] float32 with mean round(λ·H·W)/(H·W).
    """
    return fourier_mask(lam, height, width, read)


register(MaskMethod(INFO, fmix_mask))
