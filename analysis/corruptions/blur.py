"""Blur corruptions: defocus (disk), glass, motion, zoom and Gaussian blur, after Hendrycks & Dietterich,
"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations", ICLR 2019,
arXiv:1903.12261."""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from ._filters import clipped_zoom, correlate
from ._filters import gaussian_blur as _gaussian
from ._filters import motion_blur as _motion
from ._params import Setting


@lru_cache(maxsize=32)
def disk_kernel(radius: float, alias_sigma: float) -> Tensor:
    """The generators' ``disk``: a normalised aliased disk of the given radius on a grid of half-size
    max(8, ⌈radius⌉), smoothed by OpenCV's GaussianBlur (3×3 up to radius 8, 5×5 beyond, reflect-101
    border). Returned float64 on CPU with its all-zero outer rings trimmed (odd square)."""
    half = 8 if radius <= 8 else math.ceil(radius)
    axis = torch.arange(-half, half + 1, dtype=torch.float64)
    disk = ((axis[:, None] ** 2 + axis[None, :] ** 2) <= radius**2).double()
    disk /= disk.sum()
    ksize = 3 if radius <= 8 else 5
    taps = torch.exp(-((torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2) ** 2) / (2 * alias_sigma**2))
    taps /= taps.sum()
    r = ksize // 2
    smoothed = F.pad(disk[None, None], (r, r, r, r), mode="reflect")
    smoothed = F.conv2d(F.conv2d(smoothed, taps.view(1, 1, 1, -1)), taps.view(1, 1, -1, 1))[0, 0]
    nonzero = smoothed.abs().amax(0).nonzero()
    keep = int(half - min(nonzero.min().item(), 2 * half - nonzero.max().item()))
    return smoothed[half - keep:half + keep + 1, half - keep:half + keep + 1].contiguous()


def defocus_blur(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """Correlation with the anti-aliased disk, borders reflected (OpenCV filter2D)."""
    radius, alias_sigma = setting.params
    kernel = disk_kernel(float(radius), float(alias_sigma))
    reach = (kernel.shape[0] - 1) // 2
    offsets = torch.arange(-reach, reach + 1, device=x.device)
    offsets_y = offsets[:, None].expand(-1, offsets.numel()).reshape(1, -1)
    offsets_x = offsets[None, :].expand(offsets.numel(), -1).reshape(1, -1)
    return correlate(x, kernel.to(x.device, torch.float32).reshape(1, -1), offsets_y, offsets_x,
                     (reach, reach, reach, reach), "reflect")


def gaussian_blur(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """skimage.filters.gaussian: truncated at 4σ, borders replicated."""
    (sigma,) = setting.params
    return _gaussian(x, sigma)


def motion_blur(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """ImageMagick motion blur at an angle drawn per sample from U(−45°, 45°)."""
    radius, sigma = setting.params
    angle = torch.rand(x.shape[0], generator=generator, device=x.device) * 90 - 45
    return _motion(x, radius, sigma, angle, (-45.0, 45.0))


def zoom_blur(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """Mean of the image and its centre zooms by each factor (the factors start at 1, so the image itself
    counts twice, as in the generators). One batched resize per factor."""
    (factors,) = setting.params
    # Channels-last makes the bilinear resize about twice as fast on CPU; the sum stays in that layout.
    source = x.contiguous(memory_format=torch.channels_last) if x.device.type == "cpu" else x
    out = source.clone()
    for factor in factors:
        out += clipped_zoom(source, factor)
    return out.div_(len(factors) + 1)


def glass_blur(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """Gaussian blur, local pixel swaps within ±δ, Gaussian blur again."""
    sigma, delta, iterations = setting.params
    delta = max(1, round(delta))
    blurred = _gaussian(x, sigma)
    shuffled = local_shuffle(blurred, delta, int(iterations), generator)
    return _gaussian(shuffled, sigma)


def local_shuffle(x: Tensor, delta: int, iterations: int, generator: torch.Generator | None) -> Tensor:
    """Swap each interior pixel (rows and columns δ+1 … n−δ) with the one at a random offset in
    [−δ, δ−1]², per sample, `iterations` times.

    The generators swap pixel after pixel in reverse raster order. Here the pixels are split into (2δ)²
    classes by (row mod 2δ, column mod 2δ): two pixels of one class are 2δ apart along some axis and
    their partners are less than 2δ apart, so a whole class swaps at once without conflicts. Every round is
    a permutation, as in the original; classes go in reverse raster order of their residues.
    """
    batch, channels, height, width = x.shape
    device = x.device
    rows = torch.arange(delta + 1, height - delta + 1, device=device)
    cols = torch.arange(delta + 1, width - delta + 1, device=device)
    if rows.numel() == 0 or cols.numel() == 0:
        return x
    # One row of C values per pixel of the batch: swaps move whole rows (fast row gathers and copies).
    pixels = x.permute(0, 2, 3, 1).reshape(batch * height * width, channels).clone()
    image_start = (torch.arange(batch, device=device) * (height * width))[:, None]
    period = 2 * delta
    for _ in range(iterations):
        for residue_y in reversed(range(period)):
            class_rows = rows[rows % period == residue_y]
            for residue_x in reversed(range(period)):
                class_cols = cols[cols % period == residue_x]
                if class_rows.numel() == 0 or class_cols.numel() == 0:
                    continue
                own = (class_rows[:, None] * width + class_cols[None, :]).reshape(1, -1)
                shift = torch.randint(-delta, delta, (2, batch, own.shape[1]), generator=generator, device=device)
                partner = (image_start + own + shift[0] * width + shift[1]).reshape(-1)
                own = (image_start + own).reshape(-1)
                mine = pixels.index_select(0, own)
                theirs = pixels.index_select(0, partner)
                pixels.index_copy_(0, own, theirs)
                pixels.index_copy_(0, partner, mine)
    return pixels.view(batch, height, width, channels).permute(0, 3, 1, 2)
