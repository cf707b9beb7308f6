"""Standard training augmentation, batched on the device with a per-sample draw for every image.

torchvision's v2 transforms draw one set of parameters per call, so on a batch every image would get the
same crop; these draw per sample and render in one pass.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .._random import bernoulli, uniform
from .._warp import affine


def pad_crop_flip(images: Tensor, *, padding: int = 4, generator: torch.Generator | None = None) -> Tensor:
    """CIFAR-style augmentation: zero-pad by `padding`, random crop back to size, random horizontal flip.

    Args:
        images: [B, C, H, W]. Returns a new tensor of the same shape and dtype.
    """
    batch, _, height, width = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding))
    off_y = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=device)
    off_x = torch.randint(0, 2 * padding + 1, (batch,), generator=generator, device=device)
    flip = bernoulli(0.5, batch, generator=generator, device=device)
    cols = torch.arange(width, device=device)
    cols = torch.where(flip[:, None], width - 1 - cols, cols) + off_x[:, None]  # flipping = reading backwards
    rows = torch.arange(height, device=device)[None] + off_y[:, None]
    index_b = torch.arange(batch, device=device)[:, None, None, None]
    index_c = torch.arange(images.shape[1], device=device)[None, :, None, None]
    return padded[index_b, index_c, rows[:, None, :, None], cols[:, None, None, :]]


def random_resized_crop_flip(images: Tensor, size: int, *, scale: tuple[float, float] = (0.08, 1.0),
                             ratio: tuple[float, float] = (3 / 4, 4 / 3),
                             generator: torch.Generator | None = None) -> Tensor:
    """ImageNet-style augmentation: a crop of random area fraction and aspect, resized to size × size
    (bilinear), and a random horizontal flip — per sample, one batched warp.

    The crop's area fraction is U(scale) and its log-aspect U(log ratio); crops that would not fit are
    shrunk to fit (instead of torchvision's retry loop, which has no batched form).
    """
    batch, _, height, width = images.shape
    device = images.device
    area = uniform(scale[0], scale[1], batch, generator=generator, device=device)
    log_ratio = uniform(math.log(ratio[0]), math.log(ratio[1]), batch, generator=generator, device=device)
    aspect = log_ratio.exp() * height / width  # crop aspect in normalised units
    crop_w = (area * aspect).sqrt().clamp(max=1.0)
    crop_h = (area / aspect).sqrt().clamp(max=1.0)
    centre_x = uniform(-1.0, 1.0, batch, generator=generator, device=device) * (1 - crop_w)
    centre_y = uniform(-1.0, 1.0, batch, generator=generator, device=device) * (1 - crop_h)
    flip = torch.where(bernoulli(0.5, batch, generator=generator, device=device), -1.0, 1.0)
    zero = torch.zeros_like(crop_w)
    theta = torch.stack([torch.stack([crop_w * flip, zero, centre_x], -1),
                         torch.stack([zero, crop_h, centre_y], -1)], 1)
    return affine(images, theta, padding_mode="border", size=(size, size))
