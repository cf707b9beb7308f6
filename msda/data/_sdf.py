"""Signed distance functions of the shapes dataset's classes and distractors (negative inside).

Quílez, "2D distance functions" (iquilezles.org/articles/distfunctions2d) — the exact distances of the box,
equilateral triangle, 5-point star, hexagon and rhombus, and the ellipse approximation, re-derived here on
torch tensors. Each class shape is centred at the origin with circumradius ≈ 1, so one scale parameter sets
its size; coordinates are object-local (already rotated and scaled).

Only +, −, ×, ÷, √, |·|, min/max and comparisons are used: these are correctly rounded, so a pixel's value
does not depend on how the batch was vectorised, and a sample renders to the same bits in any batch.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def length(x: Tensor, y: Tensor) -> Tensor:
    return torch.sqrt(x * x + y * y)


def box(x: Tensor, y: Tensor, half_width: float, half_height: float) -> Tensor:
    qx, qy = x.abs() - half_width, y.abs() - half_height
    outside = length(qx.clamp_min(0), qy.clamp_min(0))
    return outside + torch.maximum(qx, qy).clamp_max(0)


def circle(x: Tensor, y: Tensor) -> Tensor:
    return length(x, y) - 1.0


def square(x: Tensor, y: Tensor) -> Tensor:
    half = 1.0 / math.sqrt(2.0)  # corners on the unit circle
    return box(x, y, half, half)


def triangle(x: Tensor, y: Tensor) -> Tensor:
    """Equilateral triangle with circumradius 1, centroid at the origin, apex up (+y)."""
    k = math.sqrt(3.0)
    half_side = k / 2.0
    x = x.abs() - half_side
    y = y + half_side / k
    fold = x + k * y > 0
    x, y = torch.where(fold, (x - k * y) / 2.0, x), torch.where(fold, (-k * x - y) / 2.0, y)
    x = x - x.clamp(-2.0 * half_side, 0.0)
    return -length(x, y) * torch.sign(y)


def star(x: Tensor, y: Tensor, inner: float = 0.45) -> Tensor:
    """Five-pointed star, outer radius 1, inner radius `inner`, a point up."""
    k1x, k1y = 0.809016994375, -0.587785252292  # (cos 36°, −sin 36°)
    k2x, k2y = -k1x, k1y
    x = x.abs()
    d = (k1x * x + k1y * y).clamp_min(0) * 2.0
    x, y = x - d * k1x, y - d * k1y
    d = (k2x * x + k2y * y).clamp_min(0) * 2.0
    x, y = x - d * k2x, y - d * k2y
    x = x.abs()
    y = y - 1.0
    bax, bay = inner * -k1y, inner * k1x - 1.0
    h = ((x * bax + y * bay) / (bax * bax + bay * bay)).clamp(0.0, 1.0)
    return length(x - bax * h, y - bay * h) * torch.sign(y * bax - x * bay)


def cross(x: Tensor, y: Tensor) -> Tensor:
    """Plus sign of two bars 0.6 wide; bar ends on the unit circle."""
    return torch.minimum(box(x, y, 0.95, 0.3), box(x, y, 0.3, 0.95))


def ring(x: Tensor, y: Tensor) -> Tensor:
    """Annulus between radii 0.5 and 1."""
    return (length(x, y) - 0.75).abs() - 0.25


def hexagon(x: Tensor, y: Tensor) -> Tensor:
    """Regular hexagon, circumradius 1."""
    kx, ky, kz = -0.866025404, 0.5, 0.577350269
    inradius = math.sqrt(3.0) / 2.0
    x, y = x.abs(), y.abs()
    d = (kx * x + ky * y).clamp_max(0) * 2.0
    x, y = x - d * kx, y - d * ky
    x = x - x.clamp(-kz * inradius, kz * inradius)
    y = y - inradius
    return length(x, y) * torch.sign(y)


def diamond(x: Tensor, y: Tensor, half_width: float = 0.6) -> Tensor:
    """Rhombus with half-diagonals 1 (vertical) and `half_width`: not a square under any rotation."""
    bx, by = half_width, 1.0
    x, y = x.abs(), y.abs()
    h = (((bx - 2.0 * x) * bx - (by - 2.0 * y) * by) / (bx * bx + by * by)).clamp(-1.0, 1.0)
    d = length(x - 0.5 * bx * (1.0 - h), y - 0.5 * by * (1.0 + h))
    return d * torch.sign(x * by + y * bx - bx * by)


def ellipse(x: Tensor, y: Tensor, half_width: float = 0.5) -> Tensor:
    """Ellipse with semi-axes `half_width` and 1 (Quílez's first-order distance estimate)."""
    ax, ay = half_width, 1.0
    k0 = length(x / ax, y / ay)
    k1 = length(x / (ax * ax), y / (ay * ay)).clamp_min(1e-6)
    return k0 * (k0 - 1.0) / k1


def crescent(x: Tensor, y: Tensor) -> Tensor:
    """Unit disc minus a disc of radius 0.8 centred 0.45 to the right (Quílez's exact "moon" distance)."""
    offset, outer, inner = 0.45, 1.0, 0.8
    a = (outer * outer - inner * inner + offset * offset) / (2.0 * offset)
    b = math.sqrt(outer * outer - a * a)  # (a, ±b): the horn tips
    y = y.abs()
    to_tip = length(x - a, y - b)
    body = torch.maximum(length(x, y) - outer, inner - length(x - offset, y))
    # Beyond the tips' line the nearest boundary point is the tip itself.
    return torch.where(x * b - y * a > offset * (b - y).clamp_min(0.0), to_tip, body)


def heart(x: Tensor, y: Tensor) -> Tensor:
    """Heart, tip down (−y), lobes up; Quílez's exact heart scaled by 1.45 and centred (circumradius ≈ 1)."""
    scale = 1.45
    x, y = x.abs() / scale, y / scale + 0.5
    in_lobe = y + x > 1.0
    lobe = length(x - 0.25, y - 0.75) - math.sqrt(2.0) / 4.0
    along = (x + y).clamp_min(0.0) * 0.5
    body = torch.sqrt(torch.minimum(x * x + (y - 1.0) * (y - 1.0), (x - along) ** 2 + (y - along) ** 2))
    return torch.where(in_lobe, lobe, body * torch.sign(x - y)) * scale


def trefoil(x: Tensor, y: Tensor) -> Tensor:
    """Three discs of radius 0.5 centred 0.5 from the origin, 120° apart, over a disc of radius 0.45 that fills
    the gap between them: a three-leaf clover with circumradius 1 (min of the discs' distances)."""
    lobes = length(x, y - 0.5)
    for cx, cy in ((0.4330127019, -0.25), (-0.4330127019, -0.25)):
        lobes = torch.minimum(lobes, length(x - cx, y - cy))
    return torch.minimum(lobes - 0.5, length(x, y) - 0.45)


def arrow(x: Tensor, y: Tensor) -> Tensor:
    """An arrow pointing up: an equilateral head (circumradius 0.55, apex at y = 1) on a shaft 0.4 wide down to
    y = −1 (union of the exact triangle and box distances)."""
    head = triangle(x / 0.55, (y - 0.45) / 0.55) * 0.55
    shaft = box(x, y + 0.4, 0.2, 0.6)
    return torch.minimum(head, shaft)


def thick_star(x: Tensor, y: Tensor) -> Tensor:
    """Five-pointed star with inner radius 0.5 (arms wide enough to stay visible at 32 px)."""
    return star(x, y, inner=0.5)


CLASS_SDFS_V1 = (circle, square, triangle, star, cross, ring, hexagon, diamond, ellipse, crescent)
"""The class shapes of dataset version 1, in the order of its classes."""

CLASS_SDFS_V2 = (circle, triangle, thick_star, cross, ring, arrow, heart, ellipse, crescent, trefoil)
"""The class shapes of dataset version 2: no square or rhombus, which a rectangle (an occluder, a mix box)
imitates, and no hexagon, which at 32 px is a circle (silhouette IoU 0.93); arrow, heart and trefoil instead."""


def segment(x: Tensor, y: Tensor, ax: Tensor, ay: Tensor, bx: Tensor, by: Tensor) -> Tensor:
    """Distance to the segment a–b (unsigned); endpoint tensors broadcast against x, y."""
    pax, pay = x - ax, y - ay
    bax, bay = bx - ax, by - ay
    h = ((pax * bax + pay * bay) / (bax * bax + bay * bay).clamp_min(1e-12)).clamp(0.0, 1.0)
    return length(pax - bax * h, pay - bay * h)


def half_plane(x: Tensor, y: Tensor, nx: Tensor, ny: Tensor, offset: Tensor) -> Tensor:
    """Signed distance to the half-plane n·p ≥ offset (negative inside; n is a unit vector)."""
    return offset - (nx * x + ny * y)
