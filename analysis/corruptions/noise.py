"""Noise corruptions: Gaussian, shot (Poisson), impulse (salt and pepper) and speckle noise, per pixel and
per channel, as in Hendrycks & Dietterich (ICLR 2019, arXiv:1903.12261)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._params import Setting


def gaussian_noise(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """x + N(0, σ²) per pixel and channel."""
    (sigma,) = setting.params
    noise = torch.randn(x.shape, generator=generator, device=x.device)
    return noise.mul_(sigma).add_(x)


def shot_noise(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """Poisson(x·c) / c: photon noise with c photons per unit of intensity."""
    (photons,) = setting.params
    return torch.poisson(x * photons, generator=generator).div_(photons)


def impulse_noise(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """Each value independently set to 0 with probability a/2 and to 1 with probability a/2
    (skimage.util.random_noise, mode "s&p")."""
    (amount,) = setting.params
    u = torch.rand(x.shape, generator=generator, device=x.device)
    out = torch.where(u < amount, (u >= amount / 2).float(), x)
    return out


def speckle_noise(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """x + x·N(0, σ²)."""
    (sigma,) = setting.params
    noise = torch.randn(x.shape, generator=generator, device=x.device)
    return noise.mul_(sigma).add_(1.0).mul_(x)
