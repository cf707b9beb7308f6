"""Spatter: water drops (severities 1–3) or mud (4–5) on the lens, after Hendrycks & Dietterich,
"Benchmarking Neural Network Robustness to Common Corruptions and Perturbations", ICLR 2019,
arXiv:1903.12261.

The water branch of the generators runs an OpenCV chain on the thresholded liquid layer: Canny edges, the
distance to the nearest edge (capped at 20 px), a 3×3 box blur, histogram equalisation, an emboss filter
and another box blur; the result, times the liquid, shades pale-turquoise drops. Every step is done here for
the whole batch: Canny as Sobel + non-maximum suppression + hysteresis grown by 3×3 dilations, the
distance as an exact Euclidean distance (row scans, then a capped column search), the equalisation from
per-image histograms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._filters import gaussian_blur, pad
from ._params import Setting

_WATER = (175 / 255, 238 / 255, 238 / 255)
_MUD = (63 / 255, 42 / 255, 20 / 255)
_CANNY_LOW, _CANNY_HIGH = 50.0, 150.0
_DISTANCE_CAP = 20
_HYSTERESIS_STEPS = 16


def spatter(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """A Gaussian liquid layer per sample, blurred and thresholded; mud (the last parameter 1) darkens the
    image under the blurred liquid mask towards brown, water adds pale-turquoise shading derived from the
    distance to the liquid's edges."""
    mean, std, blur_sigma, threshold, strength, mud = setting.params
    batch, _, height, width = x.shape
    liquid = torch.randn((batch, 1, height, width), generator=generator, device=x.device).mul_(std).add_(mean)
    liquid = gaussian_blur(liquid, blur_sigma)
    liquid = torch.where(liquid < threshold, torch.zeros_like(liquid), liquid)
    if mud:
        mask = gaussian_blur((liquid > threshold).float(), strength * setting.scale)
        mask = torch.where(mask < 0.8, torch.zeros_like(mask), mask)
        return x * (1 - mask) + mask * x.new_tensor(_MUD)[:, None, None]
    levels = (liquid * 255).floor_().clamp_(0, 255)  # the generators' uint8 liquid layer
    edges = canny(levels)
    distance = edge_distance(edges, _DISTANCE_CAP)
    distance = box3(distance).floor_()
    distance = equalize(distance)
    distance = emboss(distance)
    distance = box3(distance).round_()  # OpenCV's blur of a uint8 image rounds
    shade = levels * distance
    shade = shade / shade.amax((2, 3), keepdim=True).clamp_min(1e-12) * strength
    return x + shade * x.new_tensor(_WATER)[:, None, None]


def box3(x: Tensor) -> Tensor:
    """OpenCV blur(3×3), reflect-101 border (sums of shifted slices: faster than pooling on CPU)."""
    p = pad(x, 1, 1, 1, 1, "reflect")
    rows = p[..., :-2, :] + p[..., 1:-1, :] + p[..., 2:, :]
    return (rows[..., :-2] + rows[..., 1:-1] + rows[..., 2:]) / 9


def _sobel(levels: Tensor) -> tuple[Tensor, Tensor]:
    """3×3 Sobel derivatives (x, y) with replicated borders."""
    p = pad(levels, 1, 1, 1, 1, "replicate")
    dx = p[..., 2:] - p[..., :-2]
    dy = p[..., 2:, :] - p[..., :-2, :]
    gx = dx[..., :-2, :] + 2 * dx[..., 1:-1, :] + dx[..., 2:, :]
    gy = dy[..., :-2] + 2 * dy[..., 1:-1] + dy[..., 2:]
    return gx, gy


def _dilate(mask: Tensor) -> Tensor:
    """3×3 binary dilation of a bool mask (zero border)."""
    p = F.pad(mask, (1, 1, 1, 1))
    rows = p[..., :-2, :] | p[..., 1:-1, :] | p[..., 2:, :]
    return rows[..., :-2] | rows[..., 1:-1] | rows[..., 2:]


def canny(levels: Tensor) -> Tensor:
    """[B, 1, H, W] bool edges of 0–255 images: Sobel (replicated border), L1 magnitude, non-maximum
    suppression in four directions, hysteresis between 50 and 150 (OpenCV Canny's defaults here)."""
    gx, gy = _sobel(levels)
    magnitude = gx.abs() + gy.abs()
    m = F.pad(magnitude, (1, 1, 1, 1))
    height, width = levels.shape[-2:]

    def at(dy: int, dx: int) -> Tensor:
        return m[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]

    ax, ay = gx.abs(), gy.abs()
    tan22 = 0.4142135623730951
    horizontal = ay < ax * tan22
    vertical = ay > ax / tan22
    same_sign = (gx * gy) >= 0
    keep_h = (magnitude > at(0, -1)) & (magnitude >= at(0, 1))
    keep_v = (magnitude > at(-1, 0)) & (magnitude >= at(1, 0))
    # Image rows grow downwards: equal signs mean the gradient points along the main diagonal.
    keep_d = torch.where(same_sign, (magnitude > at(-1, -1)) & (magnitude > at(1, 1)),
                         (magnitude > at(-1, 1)) & (magnitude > at(1, -1)))
    peak = torch.where(horizontal, keep_h, torch.where(vertical, keep_v, keep_d))
    candidate = peak & (magnitude > _CANNY_LOW)
    edges = candidate & (magnitude > _CANNY_HIGH)
    for _ in range(_HYSTERESIS_STEPS):
        grown = edges | (_dilate(edges) & candidate)
        # On CPU a converged mask ends the loop early; elsewhere the check would cost a device sync.
        if grown.device.type == "cpu" and torch.equal(grown, edges):
            break
        edges = grown
    return edges


def edge_distance(edges: Tensor, cap: int) -> Tensor:
    """[B, 1, H, W] Euclidean distance to the nearest edge pixel, capped at `cap` (0 on edges).

    Exact: the distance along each row from two running scans, then per pixel the minimum over rows
    within `cap` of (row distance² + row offset²), on small integers (int16 halves the memory traffic).
    """
    height, width = edges.shape[-2:]
    big = height + width + cap + 1
    small = torch.int16 if 2 * big < 2**15 else torch.int32  # scans on small integers are several times faster
    index = torch.arange(width, device=edges.device, dtype=small).expand_as(edges)
    last_left = torch.where(edges, index, torch.full_like(index, -big)).cummax(-1).values
    first_right = torch.where(edges, index, torch.full_like(index, 2 * big)).flip(-1).cummin(-1).values.flip(-1)
    along_row = torch.minimum(index - last_left, first_right - index).clamp_(max=cap + 1).to(torch.int16)
    squared = along_row * along_row
    padded = F.pad(squared, (0, 0, cap, cap), value=(cap + 1) ** 2)
    best = squared.clone()
    for dy in range(1, cap + 1):
        nearer = torch.minimum(padded[..., cap - dy:cap - dy + height, :], padded[..., cap + dy:cap + dy + height, :])
        nearer += dy * dy
        torch.minimum(best, nearer, out=best)
    return best.float().sqrt_().clamp_(max=cap)


def equalize(levels: Tensor) -> Tensor:
    """OpenCV equalizeHist per image on integer levels 0–255 (float tensor in, float tensor out)."""
    batch = levels.shape[0]
    flat = levels.reshape(batch, -1).long()
    total = flat.shape[1]
    offsets = torch.arange(batch, device=levels.device)[:, None] * 256
    hist = torch.bincount((flat + offsets).reshape(-1), minlength=batch * 256).view(batch, 256)
    first = (hist > 0).float().argmax(1, keepdim=True)
    first_count = hist.gather(1, first)
    cdf = hist.cumsum(1)
    lut = ((cdf - first_count).float() * (255.0 / (total - first_count).clamp_min(1).float())).round_()
    # An image of one level maps to itself.
    lut = torch.where(first_count == total, torch.arange(256, device=levels.device).float()[None], lut)
    return lut.gather(1, flat).view_as(levels)


def emboss(levels: Tensor) -> Tensor:
    """OpenCV filter2D with the generators' emboss kernel [[−2, −1, 0], [−1, 1, 1], [0, 1, 2]] into uint8
    (rounded, saturated), reflect-101 border."""
    p = pad(levels, 1, 1, 1, 1, "reflect")
    height, width = levels.shape[-2:]

    def at(dy: int, dx: int) -> Tensor:
        return p[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width]

    out = 2 * (at(1, 1) - at(-1, -1)) + at(0, 1) + at(1, 0) - at(-1, 0) - at(0, -1) + levels
    return out.round_().clamp_(0, 255)
