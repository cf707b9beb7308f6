"""Digital corruptions: contrast, elastic transform, pixelate, JPEG compression and saturation, after
Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
ICLR 2019, arXiv:1903.12261."""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ._filters import smooth_noise_field
from ._params import Setting


def contrast(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """(x − m)·c + m with m the per-image, per-channel mean."""
    (factor,) = setting.params
    mean = x.mean((2, 3), keepdim=True)
    return (x - mean).mul_(factor).add_(mean)


def saturate(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """HSV saturation S' = clip(S·a + b, 0, 1), hue and value kept.

    With V = max and δ = max − min, each channel is V·(1 − S·g) with g = (V − x)/δ depending on the hue
    only, so the HSV round trip is x' = V − k·(V − x) with k = V·S'/δ (k·(V − x) ≤ V stays small even
    where δ is tiny and k huge).
    Grey pixels (δ = 0) have hue 0 (red) in skimage's rgb2hsv, i.e. g = (0, 1, 1); a positive offset b
    tints them red, as in the generators.
    """
    factor, offset = setting.params
    value = x.amax(1, keepdim=True)
    spread = value - x.amin(1, keepdim=True)
    saturation = spread / value.clamp_min(1e-12)
    new_saturation = (saturation * factor + offset).clamp_(0, 1)
    colored = spread > 0
    gain = torch.where(colored, value * new_saturation / spread.clamp_min(1e-12), torch.zeros_like(value))
    out = torch.addcmul(value, gain, value - x, value=-1)
    if offset > 0:
        grey_drop = torch.where(colored, torch.zeros_like(value), value * new_saturation)
        out -= grey_drop * x.new_tensor([0.0, 1.0, 1.0])[:, None, None]
    return out


def pixelate(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """PIL's BOX resize to ⌊c·size⌋, then back with nearest neighbour (the generators' upward BOX resize
    and imagecorruptions' NEAREST pick the same pixel)."""
    (factor,) = setting.params
    height, width = x.shape[-2:]
    small_h, small_w = max(1, int(height * factor)), max(1, int(width * factor))
    small = box_reduce_rows(x, small_h)
    # Reducing along rows is cheap (whole rows are copied), so the width is reduced as rows too.
    small = box_reduce_rows(small.transpose(2, 3).contiguous(), small_w).transpose(2, 3).contiguous()
    # Clamped here, on the small image, so that the full-size result needs no further pass.
    return F.interpolate(small.clamp_(0, 1), size=(height, width), mode="nearest-exact")


def box_reduce_rows(x: Tensor, out: int) -> Tensor:
    """PIL BOX reduction of dim −2 to `out` rows: output row i averages the input rows whose centres fall
    in its footprint (i·s, (i+1)·s], s = size/out, i.e. rows ⌊i·s + ½⌋ … ⌊(i+1)·s + ½⌋ − 1."""
    size = x.shape[-2]
    scale = size / out
    edges = [math.floor(i * scale + 0.5) for i in range(out + 1)]
    starts = torch.tensor(edges[:-1], device=x.device)
    counts = [stop - start for start, stop in itertools.pairwise(edges)]
    lengths = torch.tensor(counts, device=x.device, dtype=torch.float32)
    total = x.index_select(-2, starts)
    for offset in range(1, max(counts)):
        rows = x.index_select(-2, (starts + offset).clamp_(max=size - 1))
        if min(counts) > offset:
            total += rows
        else:
            total += rows * (lengths > offset).float()[:, None]
    return total / lengths[:, None]


def jpeg_compression(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """Encode and decode with libjpeg at the severity's quality, from the image rounded to 8 bits.

    libjpeg runs on the CPU for every device: the generators used PIL's libjpeg, and nvjpeg's encoder
    would give different artefacts. That round trip is the one host copy on a CUDA device.
    """
    from torchvision.io import decode_jpeg, encode_jpeg

    (quality,) = setting.params
    batch, _, height, width = x.shape
    # Channels-last 8-bit pixels are what libjpeg reads; one pass rounds (half up), converts and reorders.
    pixels = torch.empty((batch, height, width, 3), dtype=torch.uint8)
    pixels.copy_(x.mul(255).add_(0.5).clamp_(0, 255).permute(0, 2, 3, 1))
    decoded = torch.stack(decode_jpeg(encode_jpeg(list(pixels.permute(0, 3, 1, 2)), quality=int(quality))))
    return torch.div(decoded.to(x.device), 255, out=torch.empty(decoded.shape, device=x.device))


def elastic_transform(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """A random affine map (three points around the centre moved by U(−a, a) each), then a smooth random
    displacement field (U(−1, 1) noise, Gaussian-filtered with σ, truncated at 3σ, times α); both are
    composed into one bilinear resampling with mirrored borders."""
    alpha, sigma, jitter = setting.params
    batch, _, height, width = x.shape
    device = x.device
    inverse = _random_affine_inverse(batch, height, width, jitter, generator, device)
    # grid_sample's normalised coordinates (align_corners=True): n = pixel / s − 1, s = (size − 1)/2.
    sx, sy = max(width - 1, 1) / 2, max(height - 1, 1) / 2
    px = torch.arange(width, device=device, dtype=torch.float32)
    py = torch.arange(height, device=device, dtype=torch.float32)
    grid = torch.empty(batch, height, width, 2, device=device)
    for axis, unit in enumerate((sx, sy)):
        along_x, along_y, shift = (inverse[:, axis, k] / unit for k in range(3))
        row = (along_y[:, None] * py[None] + shift[:, None] - 1)[:, :, None]
        torch.add(row, along_x[:, None, None] * px[None, None], out=grid[..., axis])
    if alpha > 0 and sigma > 0:
        noise = torch.rand((batch, 2, height, width), generator=generator, device=device).mul_(2).sub_(1)
        field = smooth_noise_field(noise, sigma, truncate=3.0, mode="symmetric")
        # The displacement goes through the linear part of the affine map.
        for axis, unit in enumerate((sx, sy)):
            grid[..., axis].addcmul_(field[:, 0], (inverse[:, axis, 0] * alpha / unit)[:, None, None])
            grid[..., axis].addcmul_(field[:, 1], (inverse[:, axis, 1] * alpha / unit)[:, None, None])
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


def _random_affine_inverse(batch: int, height: int, width: int, jitter: float,
                           generator: torch.Generator | None, device: torch.device) -> Tensor:
    """[B, 2, 3] output-pixel → input-pixel maps: the inverse of the affine map that moves the three
    points (c + s, c + s), (c + s, c − s), (c − s, c − s) (c the centre, s a third of the shorter side) by
    independent U(−jitter, jitter) offsets (OpenCV getAffineTransform + warpAffine)."""
    cx, cy, side = width // 2, height // 2, min(height, width) // 3
    source = torch.tensor([[cx + side, cy + side], [cx + side, cy - side], [cx - side, cy - side]],
                          dtype=torch.float64)
    solve = torch.linalg.inv(torch.cat([source, torch.ones(3, 1, dtype=torch.float64)], 1)).float().to(device)
    offsets = torch.rand((batch, 3, 2), generator=generator, device=device) * 2 - 1
    forward = (solve @ (source.float().to(device) + offsets * jitter)).transpose(1, 2)  # [B, 2, 3]
    a, b, c = forward[:, 0, 0], forward[:, 0, 1], forward[:, 0, 2]
    d, e, f = forward[:, 1, 0], forward[:, 1, 1], forward[:, 1, 2]
    det = a * e - b * d
    inv = torch.stack([torch.stack([e, -b, b * f - c * e], -1), torch.stack([-d, a, c * d - a * f], -1)], 1)
    return inv / det[:, None, None]
