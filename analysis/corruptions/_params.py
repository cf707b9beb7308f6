"""Per-severity parameters of the 19 corruptions and the choice of profile.

The values are those of Hendrycks & Dietterich's generators ("Benchmarking Neural Network Robustness to
Common Corruptions and Perturbations", ICLR 2019, arXiv:1903.12261): ``make_cifar_c.py`` (the "cifar"
profile, designed for 32×32 images) and ``make_imagenet_c.py`` (the "imagenet" profile, 224×224).

``profile="auto"`` takes the table whose design size is nearer (on a log scale) to the image's shorter side
and multiplies the parameters measured in pixels (blur widths, displacements, radii) by
``shorter side / design size``, so a 112-pixel image gets ImageNet-C's blurs at half their width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PROFILES = ("auto", "cifar", "imagenet")
DESIGN_SIZE = {"cifar": 32, "imagenet": 224}

# Shorter sides below this use the CIFAR table: the geometric mean of 32 and 224.
_AUTO_SPLIT = math.sqrt(32 * 224)


def _arange(step: float, count: int) -> tuple[float, ...]:
    """The zoom factors 1, 1 + step, … as the generators' ``np.arange(1, stop, step)`` yields them
    (their floating-point stops give one more factor than the stop suggests for some severities)."""
    return tuple(1 + step * k for k in range(count))


@dataclass(frozen=True)
class Table:
    """Five rows (severity 1–5) per profile; `pixel` lists the positions of entries measured in pixels."""

    cifar: tuple
    imagenet: tuple
    pixel: tuple[int, ...] = ()


_IMAGENET_ELASTIC = 244  # the ImageNet-C generator's constant (its comment: "should have been 224")

TABLES: dict[str, Table] = {
    # noise: σ of N(0, σ²); Poisson photons per unit; fraction of salt-and-pepper pixels; speckle σ
    "gaussian_noise": Table(((0.04,), (0.06,), (0.08,), (0.09,), (0.10,)),
                            ((0.08,), (0.12,), (0.18,), (0.26,), (0.38,))),
    "shot_noise": Table(((500,), (250,), (100,), (75,), (50,)),
                        ((60,), (25,), (12,), (5,), (3,))),
    "impulse_noise": Table(((0.01,), (0.02,), (0.03,), (0.05,), (0.07,)),
                           ((0.03,), (0.06,), (0.09,), (0.17,), (0.27,))),
    "speckle_noise": Table(((0.06,), (0.1,), (0.12,), (0.16,), (0.2,)),
                           ((0.15,), (0.2,), (0.35,), (0.45,), (0.6,))),
    # blur
    "defocus_blur": Table(  # (disk radius, σ of the anti-aliasing blur of the disk)
        ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
        ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5)), pixel=(0, 1)),
    "glass_blur": Table(  # (Gaussian σ, largest pixel displacement δ, iterations)
        ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)),
        ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2)), pixel=(0, 1)),
    "motion_blur": Table(  # (ImageMagick radius, σ) of a one-sided line kernel
        ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)),
        ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15)), pixel=(0, 1)),
    "zoom_blur": Table(  # the zoom factors averaged
        ((_arange(0.01, 7),), (_arange(0.01, 12),), (_arange(0.01, 16),), (_arange(0.01, 21),),
         (_arange(0.01, 26),)),
        ((_arange(0.01, 12),), (_arange(0.01, 16),), (_arange(0.02, 11),), (_arange(0.02, 13),),
         (_arange(0.03, 11),))),
    "gaussian_blur": Table(((0.4,), (0.6,), (0.7,), (0.8,), (1,)),
                           ((1,), (2,), (3,), (4,), (6,)), pixel=(0,)),
    # weather
    "snow": Table(  # (flake mean, flake σ, flake zoom, threshold, blur radius, blur σ, image weight)
        ((0.1, 0.2, 1, 0.6, 8, 3, 0.95), (0.1, 0.2, 1, 0.5, 10, 4, 0.9), (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
         (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85), (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)),
        ((0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
         (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)), pixel=(2, 4, 5)),
    "frost": Table(  # (image weight, frost weight)
        ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45)),
        ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))),
    "fog": Table(  # (fog strength, plasma roughness decay)
        ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75)),
        ((1.5, 2), (2, 2), (2.5, 1.7), (2.5, 1.5), (3, 1.4))),
    "brightness": Table(((0.05,), (0.1,), (0.15,), (0.2,), (0.3,)),
                        ((0.1,), (0.2,), (0.3,), (0.4,), (0.5,))),
    "spatter": Table(  # (mean, σ, blur σ, threshold, water intensity | mud blur σ, 0 water / 1 mud)
        ((0.62, 0.1, 0.7, 0.7, 0.5, 0), (0.65, 0.1, 0.8, 0.7, 0.5, 0), (0.65, 0.3, 1, 0.69, 0.5, 0),
         (0.65, 0.1, 0.7, 0.69, 0.6, 1), (0.65, 0.1, 0.5, 0.68, 0.6, 1)),
        ((0.65, 0.3, 4, 0.69, 0.6, 0), (0.65, 0.3, 3, 0.68, 0.6, 0), (0.65, 0.3, 2, 0.68, 0.5, 0),
         (0.65, 0.3, 1, 0.65, 1.5, 1), (0.67, 0.4, 1, 0.65, 1.5, 1)), pixel=(2,)),
    # digital
    "contrast": Table(((0.75,), (0.5,), (0.4,), (0.3,), (0.15,)),
                      ((0.4,), (0.3,), (0.2,), (0.1,), (0.05,))),
    "elastic_transform": Table(  # (displacement scale α, field σ, affine jitter), all in pixels
        tuple(tuple(32 * v for v in row) for row in
              ((0, 0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03))),
        tuple(tuple(_IMAGENET_ELASTIC * v for v in row) for row in
              ((2, 0.7, 0.1), (2, 0.08, 0.2), (0.05, 0.01, 0.02), (0.07, 0.01, 0.02), (0.12, 0.01, 0.02))),
        pixel=(0, 1, 2)),
    "pixelate": Table(((0.95,), (0.9,), (0.85,), (0.75,), (0.65,)),
                      ((0.6,), (0.5,), (0.4,), (0.3,), (0.25,))),
    "jpeg_compression": Table(((80,), (65,), (58,), (50,), (40,)),
                              ((25,), (18,), (15,), (10,), (7,))),
    "saturate": Table(  # (saturation factor, saturation offset)
        ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
        ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2))),
}


@dataclass(frozen=True)
class Setting:
    """What a corruption renders with: its row of parameters (pixel entries already scaled), the table it
    came from and the scale applied to pixel-size quantities."""

    params: tuple
    profile: str
    scale: float


def resolve_profile(profile: str, height: int, width: int) -> tuple[str, float]:
    """("cifar" | "imagenet", pixel scale). Explicit profiles use their table unscaled."""
    if profile != "auto":
        return profile, 1.0
    short = min(height, width)
    table = "cifar" if short < _AUTO_SPLIT else "imagenet"
    return table, short / DESIGN_SIZE[table]


def setting(name: str, severity: int, profile: str, height: int, width: int) -> Setting:
    table_name, scale = resolve_profile(profile, height, width)
    table = TABLES[name]
    row = getattr(table, table_name)[severity - 1]
    params = tuple(value * scale if index in table.pixel else value for index, value in enumerate(row))
    return Setting(params, table_name, scale)
