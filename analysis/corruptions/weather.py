"""Weather corruptions: snow, frost, fog and brightness, after Hendrycks & Dietterich, "Benchmarking Neural
Network Robustness to Common Corruptions and Perturbations", ICLR 2019, arXiv:1903.12261.

Fog's plasma fractal is the generators' diamond-square algorithm, run for the whole batch at once: each
level fills the square and diamond midpoints of every sample with one tensor operation.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._filters import clipped_zoom, motion_blur
from ._frost import frost_layer
from ._params import Setting

_GREY = (0.299, 0.587, 0.114)  # OpenCV's RGB2GRAY weights


def snow(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """Zoomed, thresholded Gaussian flakes, motion-blurred at U(−135°, −45°) per sample, added twice (the
    layer and its 180° rotation) to an image lifted towards 1.5·grey + 0.5."""
    mean, std, zoom, threshold, radius, sigma, keep = setting.params
    batch, _, height, width = x.shape
    flakes = torch.randn((batch, 1, height, width), generator=generator, device=x.device).mul_(std).add_(mean)
    flakes = clipped_zoom(flakes, max(1.0, zoom))
    flakes = torch.where(flakes < threshold, torch.zeros_like(flakes), flakes).clamp_(0, 1)
    angle = torch.rand(batch, generator=generator, device=x.device) * 90 - 135
    flakes = motion_blur(flakes, radius, sigma, angle, (-135.0, -45.0))
    grey = (x * x.new_tensor(_GREY)[:, None, None]).sum(1, keepdim=True)
    lifted = keep * x + (1 - keep) * torch.maximum(x, grey * 1.5 + 0.5)
    return lifted + flakes + flakes.flip(-2, -1)


def frost(x: Tensor, setting: Setting, generator: torch.Generator | None, frost_dir=None) -> Tensor:
    """a·image + b·frost, the frost layer procedural or cropped from the images in `frost_dir`."""
    image_weight, frost_weight = setting.params
    layer = frost_layer(x.shape[0], x.shape[-2], x.shape[-1], setting, generator, x.device, frost_dir)
    return layer.mul_(frost_weight).add_(x, alpha=image_weight)


def fog(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """(x + s·plasma) · max(x) / (max(x) + s), max per image; the plasma fractal from diamond-square on the
    next power-of-two square (256 for 224-px images, as in ImageNet-C), cropped to the image."""
    strength, decay = setting.params
    batch, _, height, width = x.shape
    size = 1 << (max(height, width) - 1).bit_length()
    plasma = plasma_fractal(batch, size, decay, generator, x.device)[:, None, :height, :width]
    peak = x.amax((1, 2, 3), keepdim=True)
    return (x + strength * plasma) * (peak / (peak + strength))


def plasma_fractal(batch: int, size: int, decay: float, generator: torch.Generator | None,
                   device: torch.device) -> Tensor:
    """[B, size, size] diamond-square height maps scaled to [0, 1] (size a power of two).

    Each level sets the midpoints of the squares, then of the diamonds, to the mean of their four
    neighbours (wrapping around) plus w·U(−w, w); w starts at 100 and is divided by `decay` per level.
    """
    height_map = torch.zeros(batch, size, size, device=device)
    step, wibble = size, 100.0

    def jitter(shape) -> Tensor:
        u = torch.rand((batch, *shape), generator=generator, device=device)
        return (u * 2 - 1) * (wibble * wibble)

    while step >= 2:
        half = step // 2
        corners = height_map[:, 0::step, 0::step]
        square_sum = corners + corners.roll(-1, 1)
        square_sum = square_sum + square_sum.roll(-1, 2)
        height_map[:, half::step, half::step] = square_sum / 4 + jitter(square_sum.shape[1:])
        centres = height_map[:, half::step, half::step]
        corners = height_map[:, 0::step, 0::step]
        across = centres + centres.roll(1, 1) + corners + corners.roll(-1, 2)
        height_map[:, 0::step, half::step] = across / 4 + jitter(across.shape[1:])
        down = centres + centres.roll(1, 2) + corners + corners.roll(-1, 1)
        height_map[:, half::step, 0::step] = down / 4 + jitter(down.shape[1:])
        step = half
        wibble /= decay
    low = height_map.amin((1, 2), keepdim=True)
    high = height_map.amax((1, 2), keepdim=True)
    return (height_map - low) / (high - low).clamp_min(1e-12)


def brightness(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """HSV value + c, clipped to 1, hue and saturation kept.

    For fixed hue and saturation every RGB channel is proportional to the value V = max(R, G, B), so the
    HSV round trip is the rescaling x · V'/V (and V' grey where V = 0) — no trip through HSV needed.
    """
    (shift,) = setting.params
    value = x.amax(1, keepdim=True)
    new_value = (value + shift).clamp_(max=1.0)
    ratio = new_value / value.clamp_min(1e-12)
    black = torch.where(value > 0, torch.zeros_like(value), new_value)
    return torch.addcmul(black, x, ratio)
