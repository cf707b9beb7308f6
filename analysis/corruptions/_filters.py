"""Linear filters shared by the corruptions: padding by index, separable Gaussian blur, FFT correlation
with one kernel or one kernel per sample, the ImageMagick-style motion-blur kernel and the centred zoom.

Border modes are named after what they repeat, for a row ``a b c d``:
``replicate`` ``a a | a b c d | d d`` (scipy/skimage "nearest"), ``symmetric`` ``b a | a b c d | d c``
(scipy "reflect") and ``reflect`` ``c b | a b c d | c b`` (OpenCV's default BORDER_REFLECT_101).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor


def fold_index(n: int, before: int, after: int, mode: str, device: torch.device) -> Tensor:
    """[before + n + after] int64 source index of every position of a padded axis (any pad width)."""
    pos = torch.arange(-before, n + after, device=device)
    if mode == "replicate" or n == 1:
        return pos.clamp(0, n - 1)
    if mode == "symmetric":
        period = 2 * n
        pos = pos.remainder(period)
        return torch.where(pos < n, pos, period - 1 - pos)
    period = 2 * (n - 1)  # reflect
    pos = pos.remainder(period)
    return torch.where(pos < n, pos, period - pos)


def pad(x: Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> Tensor:
    """Pad the last two dims of `x`; pads may exceed the image size (then rows and columns are gathered)."""
    height, width = x.shape[-2:]
    fits = mode == "replicate" or max(top, bottom) < height and max(left, right) < width
    if mode != "symmetric" and fits and x.ndim in (3, 4) and x.is_floating_point():
        return F.pad(x, (left, right, top, bottom), mode=mode)
    rows = fold_index(height, top, bottom, mode, x.device)
    cols = fold_index(width, left, right, mode, x.device)
    return x.index_select(-2, rows).index_select(-1, cols)


def gaussian_taps(sigma: float, truncate: float) -> Tensor:
    """scipy.ndimage's sampled Gaussian: radius ⌊truncate·σ + ½⌋, weights summing to 1 (float64, CPU)."""
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return weights / weights.sum()


@lru_cache(maxsize=64)
def _blur_matrix(n: int, sigma: float, truncate: float, mode: str, device: str) -> Tensor:
    weights = gaussian_taps(sigma, truncate)
    radius = (weights.numel() - 1) // 2
    rows = torch.arange(n).repeat_interleave(weights.numel())
    cols = fold_index(n, radius, radius, mode, torch.device("cpu")).unfold(0, weights.numel(), 1).reshape(-1)
    matrix = torch.zeros(n, n, dtype=torch.float64)
    matrix.index_put_((rows, cols), weights.repeat(n), accumulate=True)
    return matrix.float().to(device)


def blur_matrix(n: int, sigma: float, truncate: float, mode: str, device: torch.device) -> Tensor:
    """[n, n] matrix M with (M @ v) = v filtered by the sampled Gaussian, borders folded by `mode`.

    A dense matrix product handles any σ (ImageNet-C's elastic field uses σ ≈ 171 px on 224-px images, a
    kernel wider than the image) and any border mode exactly, and is one GEMM on every device.
    """
    return _blur_matrix(n, float(sigma), float(truncate), mode, str(device))


# Up to this many taps a blur is a sum of shifted slices; wider kernels use a dense matrix product.
_MAX_SLICE_TAPS = 13


def gaussian_blur(x: Tensor, sigma: float, *, truncate: float = 4.0, mode: str = "replicate") -> Tensor:
    """Separable Gaussian blur of the last two dims, as scipy.ndimage.gaussian_filter (σ in pixels)."""
    if sigma <= 0:
        return x
    height, width = x.shape[-2:]
    weights = gaussian_taps(sigma, truncate)
    radius = (weights.numel() - 1) // 2
    if weights.numel() <= _MAX_SLICE_TAPS and radius < min(height, width):
        padded = pad(x, radius, radius, radius, radius, mode)
        rows = _tap_sum(padded, weights, -2, height)
        return _tap_sum(rows, weights, -1, width)
    rows = blur_matrix(height, sigma, truncate, mode, x.device)
    cols = blur_matrix(width, sigma, truncate, mode, x.device)
    return torch.matmul(torch.matmul(rows, x), cols.T)


def _tap_sum(padded: Tensor, weights: Tensor, dim: int, size: int) -> Tensor:
    """Σ_t w_t · padded[t : t + size] along `dim` (a symmetric kernel: mirrored taps share a multiply)."""
    radius = (weights.numel() - 1) // 2
    out = padded.narrow(dim, radius, size) * float(weights[radius])
    for t in range(1, radius + 1):
        pair = padded.narrow(dim, radius - t, size) + padded.narrow(dim, radius + t, size)
        out.add_(pair, alpha=float(weights[radius + t]))
    return out


@lru_cache(maxsize=32)
def _coarse_blur_matrix(n: int, samples: int, sigma: float, truncate: float, mode: str, device: str) -> Tensor:
    centres = torch.linspace(0, n - 1, samples, dtype=torch.float64)
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius - 1, radius + 2, dtype=torch.float64)
    pixels = centres.floor()[:, None] + offsets[None, :]  # [samples, taps] integer pixel positions
    weights = torch.exp(-0.5 * ((pixels - centres[:, None]) / sigma) ** 2)
    weights = torch.where((pixels - centres[:, None]).abs() <= radius, weights, torch.zeros_like(weights))
    weights /= weights.sum(1, keepdim=True)
    folded = fold_index(n, radius + 1, radius + 2, mode, torch.device("cpu"))[(pixels + radius + 1).long()]
    matrix = torch.zeros(samples, n, dtype=torch.float64)
    matrix.scatter_add_(1, folded, weights)
    return matrix.float().to(device)


def smooth_noise_field(noise: Tensor, sigma: float, *, truncate: float, mode: str) -> Tensor:
    """Gaussian-filtered noise [..., H, W], evaluated exactly on a grid every ~σ/1.2 pixels and bilinearly
    interpolated in between. A field filtered with σ ≥ 2.4 px has almost no energy above a quarter cycle
    per pixel, so the interpolation changes it little; for smaller σ the field is filtered in full."""
    stride = max(1, min(16, int(sigma / 1.2)))
    if stride == 1:
        return gaussian_blur(noise, sigma, truncate=truncate, mode=mode)
    height, width = noise.shape[-2:]
    rows_out, cols_out = -(-(height - 1) // stride) + 1, -(-(width - 1) // stride) + 1
    rows = _coarse_blur_matrix(height, rows_out, float(sigma), float(truncate), mode, str(noise.device))
    cols = _coarse_blur_matrix(width, cols_out, float(sigma), float(truncate), mode, str(noise.device))
    coarse = torch.matmul(rows, torch.matmul(noise, cols.T))
    flat = coarse.reshape(-1, 1, rows_out, cols_out)
    fine = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=True)
    return fine.view(*noise.shape[:-2], height, width)


_SMOOTH = sorted(2**a * 3**b * 5**c for a in range(14) for b in range(9) for c in range(6)
                 if 2**a * 3**b * 5**c <= 16384)


def fft_size(n: int) -> int:
    """Smallest 2^a·3^b·5^c ≥ n: FFT lengths with large prime factors are several times slower."""
    for size in _SMOOTH:
        if size >= n:
            return size
    return n


def correlate(x: Tensor, kernels: Tensor, offsets_y: Tensor, offsets_x: Tensor,
              pads: tuple[int, int, int, int], mode: str) -> Tensor:
    """Sparse correlation via FFT: ``out[b, c, y, x] = Σ_t w[b, t] · x[b, c, y + oy[b, t], x + ox[b, t]]``.

    Args:
        x: [B, C, H, W] float32.
        kernels: [B, T] or [1, T] tap weights (one kernel per sample, or one for all).
        offsets_y, offsets_x: int64 tap offsets, same shape as `kernels`.
        pads: (top, bottom, left, right) ≥ the largest offsets upwards, downwards, left and right; the
            image is padded by them with border mode `mode`.

    Returns [B, C, H, W] float32.
    """
    height, width = x.shape[-2:]
    top, bottom, left, right = pads
    size_y, size_x = fft_size(height + top + bottom), fft_size(width + left + right)
    padded = pad(x, top, bottom, left, right, mode)
    # The FFT multiplies spectra, i.e. convolves; a tap at −offset turns that into the correlation above.
    flat = (-offsets_y).remainder(size_y) * size_x + (-offsets_x).remainder(size_x)
    grid = torch.zeros(kernels.shape[0], size_y * size_x, device=x.device, dtype=torch.float32)
    grid.scatter_add_(1, flat, kernels.float())
    spectrum = torch.fft.rfft2(grid.view(-1, 1, size_y, size_x))
    out = torch.fft.irfft2(torch.fft.rfft2(padded, s=(size_y, size_x)) * spectrum, s=(size_y, size_x))
    return out[..., top:top + height, left:left + width]


def motion_taps(radius: float, sigma: float, angle_deg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """ImageMagick's MotionBlurImage kernel, one per sample.

    Width ``2⌈radius⌉ + 1`` taps ``i = 0 … width − 1`` weighted ``exp(−i²/2σ²)`` (normalised), tap i read
    at offset ``(⌈i·sin θ − ½⌉, ⌈i·cos θ − ½⌉)`` (rows, columns): a one-sided streak from each pixel.

    Returns weights [1, T] float32 and offsets_y, offsets_x [B, T] int64.
    """
    width = 2 * math.ceil(radius) + 1
    steps = torch.arange(width, device=angle_deg.device, dtype=torch.float32)
    weights = torch.exp(-(steps**2) / (2 * sigma**2))
    weights = (weights / weights.sum())[None]
    theta = torch.deg2rad(angle_deg.float())[:, None]
    offsets_y = torch.ceil(steps * torch.sin(theta) - 0.5).long()
    offsets_x = torch.ceil(steps * torch.cos(theta) - 0.5).long()
    return weights, offsets_y, offsets_x


def motion_blur(x: Tensor, radius: float, sigma: float, angle_deg: Tensor,
                angle_range: tuple[float, float]) -> Tensor:
    """[B, C, H, W] blurred along a per-sample direction (degrees, inside `angle_range`), borders replicated
    as ImageMagick's default virtual pixels; one batched FFT correlation, padded only where the streaks
    can reach."""
    weights, offsets_y, offsets_x = motion_taps(radius, sigma, angle_deg)
    return correlate(x, weights.expand_as(offsets_y), offsets_y, offsets_x,
                     _streak_pads(offsets_y.shape[1] - 1, angle_range), "replicate")


def _streak_pads(length: int, angle_range: tuple[float, float]) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) reach of streaks of `length` taps beyond the first at any angle of the
    range: the extremes of ⌈length·sin θ − ½⌉ and ⌈length·cos θ − ½⌉ lie at the ends of the range or at
    multiples of 90° inside it."""
    low, high = angle_range
    angles = [low, high] + [90.0 * k for k in range(math.ceil(low / 90), math.floor(high / 90) + 1)]
    ys = [math.ceil(length * math.sin(math.radians(a)) - 0.5) for a in angles] + [0]
    xs = [math.ceil(length * math.cos(math.radians(a)) - 0.5) for a in angles] + [0]
    return max(0, -min(ys)), max(0, max(ys)), max(0, -min(xs)), max(0, max(xs))


def clipped_zoom(x: Tensor, factor: float) -> Tensor:
    """Zoom into the centre by `factor` ≥ 1 keeping the size, as the generators' ``clipped_zoom``: crop
    ⌈n/factor⌉ centred pixels per axis, resize by `factor` with linear interpolation through the corner
    pixels (scipy.ndimage.zoom, order 1), trim back to n centred."""
    height, width = x.shape[-2:]
    if factor == 1:
        return x
    crop_h, crop_w = math.ceil(height / factor), math.ceil(width / factor)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    out_h, out_w = round(crop_h * factor), round(crop_w * factor)
    zoomed = F.interpolate(x[..., top:top + crop_h, left:left + crop_w], size=(out_h, out_w),
                           mode="bilinear", align_corners=True)
    trim_y, trim_x = (out_h - height) // 2, (out_w - width) // 2
    return zoomed[..., trim_y:trim_y + height, trim_x:trim_x + width]
