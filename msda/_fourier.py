"""Fourier-domain helpers for FMix- and LMix-style masks and the optional LMix image sharpening.

The frequency grid and the 1/f^δ decay follow FMix (Harris et al., arXiv:2002.12047): a complex Gaussian
spectrum scaled by ``1 / max(f, 1/max(H, W))^δ`` and taken back to the image domain with an inverse real FFT.
"""

from __future__ import annotations

import torch
from torch import Tensor


def frequency_radius(height: int, width: int, device: torch.device) -> Tensor:
    """[H, W//2 + 1] radial frequency of every bin of a real 2-D FFT (cycles per pixel)."""
    fy = torch.fft.fftfreq(height, device=device)[:, None]
    fx = torch.fft.rfftfreq(width, device=device)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


def spectrum_shape(height: int, width: int) -> tuple[int, int]:
    return height, width // 2 + 1


def decay_scale(decay: Tensor, height: int, width: int) -> Tensor:
    """[B, H, W//2 + 1] amplitude 1 / max(f, f_min)^δ with f_min = 1 / max(H, W), δ per sample."""
    freqs = frequency_radius(height, width, decay.device).clamp_min(1.0 / max(height, width))
    return freqs[None].pow(-decay[:, None, None])


def low_pass(decay: Tensor, height: int, width: int) -> Tensor:
    """[B, H, W//2 + 1] the normalised low-pass L_δ = (f_min / max(f, f_min))^δ, so L_δ(0) = 1."""
    freqs = frequency_radius(height, width, decay.device)
    f_min = 1.0 / max(height, width)
    return (f_min / freqs.clamp_min(f_min))[None].pow(decay[:, None, None])


def low_frequency_image(noise: Tensor, decay: Tensor, height: int, width: int,
                        boost: Tensor | None = None) -> Tensor:
    """[B, H, W] grey image: inverse real FFT of the noise spectrum scaled by 1/f^δ.

    Args:
        noise: [B, 2, H, W//2 + 1] standard-normal real and imaginary parts.
        decay: [B] δ per sample.
        boost: optional [B] k: the scaled spectrum is further multiplied by the high-boost gain
            1 + k·(1 − L_δ) (LMix eq. 5). Where k = 0 the gain is exactly 1, so the image is FMix's, bit for bit.
    """
    if noise.shape[0] == 0:  # the FFT back ends reject empty batches
        return noise.new_zeros(0, height, width)
    scale = decay_scale(decay, height, width)
    if boost is not None:
        scale = scale * (1.0 + boost[:, None, None] * (1.0 - low_pass(decay, height, width)))
    spectrum = torch.complex(noise[:, 0] * scale, noise[:, 1] * scale)
    return torch.fft.irfft2(spectrum, s=(height, width))


def high_pass(cutoff: Tensor, height: int, width: int) -> Tensor:
    """[B, H, W//2 + 1] Gaussian high-pass 1 − exp(−f²/2f_c²): 0 at DC, rising monotonically with the radial
    frequency f toward 1; f_c (cycles per pixel) per sample."""
    freqs = frequency_radius(height, width, cutoff.device)[None]
    return 1.0 - torch.exp(-(freqs**2) / (2 * cutoff[:, None, None] ** 2))


def sharpen(images: Tensor, gain: Tensor, cutoff: Tensor) -> Tensor:
    """High-boost sharpening F⁻¹[(1 + g·HP_fc)·F(x)] per sample, clamped to each image's own value range.

    The gain is 1 at DC (the mean is kept before clamping), rises with frequency and is bounded by 1 + g.
    Computed in float32, returned in the images' dtype.

    Args:
        images: [B, C, H, W]. gain: [B] g ≥ 0. cutoff: [B] f_c in cycles per pixel.
    """
    if images.shape[0] == 0:
        return images
    height, width = images.shape[-2:]
    x = images.float()
    response = 1.0 + gain[:, None, None] * high_pass(cutoff, height, width)
    sharpened = torch.fft.irfft2(torch.fft.rfft2(x) * response[:, None], s=(height, width))
    low = x.amin((1, 2, 3), keepdim=True)
    high = x.amax((1, 2, 3), keepdim=True)
    return torch.minimum(torch.maximum(sharpened, low), high).to(images.dtype)


def keep_top(values: Tensor, count: Tensor, soft: Tensor | None = None) -> Tensor:
    """Binarise each row: 1 on its `count` largest values, 0 elsewhere.

    Args:
        values: [B, N] scores.
        count: [B] number of ones per row (integer-valued float or int).
        soft: optional [B] half-width of a linear ramp between 1 and 0 around rank `count`, in pixels;
            the ramp is symmetric, so the row still sums to exactly `count`.

    Returns [B, N] float32.
    """
    order = values.argsort(dim=1, descending=True)
    rank = torch.arange(values.shape[1], device=values.device, dtype=torch.float32)[None]
    count = count.float()[:, None]
    ranked = (rank < count).float()
    if soft is not None:
        soft = soft.float()[:, None]
        ramp = ((count + soft - rank - 0.5) / (2 * soft).clamp_min(1.0)).clamp(0.0, 1.0)
        ranked = torch.where(soft > 0, ramp, ranked)
    return torch.empty_like(ranked).scatter_(1, order, ranked)
