"""Deterministic rendering helpers shared by the mask generators.

Everything here takes per-sample parameter tensors of shape [B] and renders [B, 1, H, W] masks by
broadcasting coordinate vectors: no Python loop over the batch.
"""

from __future__ import annotations

import torch
from torch import Tensor


def pixel_centers(n: int, device: torch.device) -> Tensor:
    """Coordinates of the pixel centres along an axis of n pixels: 0.5, 1.5, …, n − 0.5."""
    return torch.arange(n, device=device, dtype=torch.float32) + 0.5


def integer_box(center: Tensor, extent: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Integer [start, stop) bounds of a segment of length round(extent) centred at `center`, clipped to [0, size]."""
    length = extent.round()
    start = (center - length / 2).round()
    stop = start + length
    return start.clamp(0, size), stop.clamp(0, size)


def _box_profiles(x0: Tensor, x1: Tensor, y0: Tensor, y1: Tensor, height: int, width: int
                  ) -> tuple[Tensor, Tensor]:
    """Row profile [B, H] and column profile [B, W], float32: 1 on y0 ≤ y < y1 and on x0 ≤ x < x1."""
    device = x0.device
    xs = torch.arange(width, device=device, dtype=torch.float32)
    ys = torch.arange(height, device=device, dtype=torch.float32)
    inside_x = (xs >= x0[:, None]) & (xs < x1[:, None])
    inside_y = (ys >= y0[:, None]) & (ys < y1[:, None])
    return inside_y.float(), inside_x.float()


def box_indicator(x0: Tensor, x1: Tensor, y0: Tensor, y1: Tensor, height: int, width: int) -> Tensor:
    """[B, 1, H, W] float32: 1 on the pixels with x0 ≤ x < x1 and y0 ≤ y < y1 (integer bounds), else 0."""
    return outer(*_box_profiles(x0, x1, y0, y1, height, width))


def box_complement(x0: Tensor, x1: Tensor, y0: Tensor, y1: Tensor, height: int, width: int) -> Tensor:
    """[B, 1, H, W] float32: 0 on the box of :func:`box_indicator`, 1 elsewhere (``1 − box_indicator``, exactly)."""
    return outer_complement(*_box_profiles(x0, x1, y0, y1, height, width))


def outer(rows: Tensor, cols: Tensor) -> Tensor:
    """[B, 1, H, W] from a per-sample row profile [B, H] and column profile [B, W]."""
    return (rows[:, :, None] * cols[:, None, :])[:, None]


def outer_complement(rows: Tensor, cols: Tensor) -> Tensor:
    """[B, 1, H, W] ``1 − outer(rows, cols)`` in one image-sized write instead of two (on a CPU a fresh
    image-sized buffer costs more than the arithmetic in it). Exact for 0/1 profiles (boxes, grids); for others
    within an ulp of ``1 − outer``, as the product may be fused into the subtraction."""
    one = torch.ones((), device=rows.device, dtype=rows.dtype)
    return torch.addcmul(one, rows[:, :, None], cols[:, None, :], value=-1.0)[:, None]


def constant(value: Tensor, height: int, width: int) -> Tensor:
    """[B, 1, H, W] view holding value[b] everywhere (no copy)."""
    return value.float()[:, None, None, None].expand(-1, 1, height, width)


def as_batch(value: Tensor | float, batch: int, device: torch.device) -> Tensor:
    """A number or a [] / [B] tensor as a float32 [B] tensor on `device`."""
    return torch.as_tensor(value, dtype=torch.float32, device=device).expand(batch)
