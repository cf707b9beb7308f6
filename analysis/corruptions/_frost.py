"""Frost layers for the frost corruption: random crops of frost images, procedural or the user's.

Hendrycks & Dietterich (ICLR 2019, arXiv:1903.12261) overlay a random crop of one of the frost photographs
that ship with their generator (ImageNet-C crops them at their own resolution, about 300–900 px, for
224-px images; CIFAR-10-C shrinks them to 20 % first). Those photographs are not part of this project.
By default the crops come from a bank of six procedural frost textures instead, 384 px square, generated
once per process from a fixed seed and matched to the photographs' statistics (mean 0.3–0.8, standard
deviation 0.06–0.19, blue ≥ green ≥ red, power spectrum ∝ f^−1.5 … f^−2):

* ice needles: ridged noise ``exp(−(n/w)²)`` of noise fields band-limited across six fixed directions, so
  their zero crossings become thin bright streaks; at every pixel the six directions are weighted by a von
  Mises weight around a smoothly varying crystal orientation, and finer branches at ±60° from it are
  added the same way;
* a smooth density field that thins the crystals out in places, and a domain warp that bends them;
* a cloudy 1/f base.

With ``frost_dir`` the user's images take the bank's place. Which image and which crop a sample gets is
drawn from the caller's generator.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._params import Setting

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
BANK_SIZE = 384
BANK_COUNT = 6
_BANK_SEED = 20190328  # the date of arXiv:1903.12261


def frost_layer(batch: int, height: int, width: int, setting: Setting, generator: torch.Generator | None,
                device: torch.device, frost_dir: Path | None = None) -> Tensor:
    """[B, 3, H, W] float32 frost in [0, 1]: per sample a random image of the bank (or of `frost_dir`) and a
    random crop of it, at the generators' scale (ImageNet-C: the image's own pixels; CIFAR-10-C: shrunk to
    20 %), enlarged where it would not cover the image."""
    source = "" if frost_dir is None else str(frost_dir.resolve())
    stack, sizes = _prepared(source, setting.profile, setting.scale, height, width, str(device))
    count = stack.shape[0]
    draws = torch.rand((3, batch), generator=generator, device=device)
    index = (draws[0] * count).long().clamp_(max=count - 1)
    room = sizes[index] - torch.tensor([height, width], device=device) + 1
    top = torch.minimum((draws[1] * room[:, 0]).long(), room[:, 0] - 1)
    left = torch.minimum((draws[2] * room[:, 1]).long(), room[:, 1] - 1)
    rows = (top[:, None] + torch.arange(height, device=device))[:, None, :, None]
    cols = (left[:, None] + torch.arange(width, device=device))[:, None, None, :]
    channels = torch.arange(3, device=device)[None, :, None, None]
    return stack[index[:, None, None, None], channels, rows, cols]


def check_frost_dir(frost_dir) -> Path | None:
    """The directory as a Path, or None; ValueError when it is not a directory holding images."""
    if frost_dir is None:
        return None
    path = Path(frost_dir)
    if not path.is_dir():
        raise ValueError(f"frost_dir must be a directory of frost images, got {str(frost_dir)!r} "
                         f"(not a directory)")
    if not _image_files(path):
        raise ValueError(f"frost_dir {str(path)!r} holds no images; allowed suffixes: "
                         f"{', '.join(IMAGE_SUFFIXES)}")
    return path


def _image_files(path: Path) -> list[Path]:
    return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _load_images(source: str) -> list[Tensor]:
    """[3, h, w] float32 images in [0, 1]: the procedural bank for "", else the files of a directory."""
    if not source:
        return list(frost_bank())
    return [read_rgb(path) for path in _image_files(Path(source))]


def read_rgb(path) -> Tensor:
    """An image file as float32 [3, H, W] RGB in [0, 1] (PIL: torchvision.io's decoders are deprecated
    from torchvision 0.29 on)."""
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.array(image.convert("RGB"))
    return torch.from_numpy(pixels).permute(2, 0, 1).float().div_(255)


@lru_cache(maxsize=16)
def _prepared(source: str, profile: str, scale: float, height: int, width: int,
              device: str) -> tuple[Tensor, Tensor]:
    """The frost images resized for this profile and image size, zero-padded into one [K, 3, Hmax, Wmax]
    float32 stack on `device`, with their sizes [K, 2]."""
    factor = scale * (0.2 if profile == "cifar" else 1.0)
    resized = []
    for image in _load_images(source):
        h, w = image.shape[-2:]
        # Enough to cover the image, with the 10 % margin imagecorruptions uses when it has to enlarge.
        need = max(height / (h * factor), width / (w * factor))
        grow = factor * (1.1 * need if need > 1 else 1.0)
        size = (max(height, math.ceil(h * grow)), max(width, math.ceil(w * grow)))
        if size != (h, w):
            image = F.interpolate(image[None], size=size, mode="bilinear", antialias=True,
                                  align_corners=False)[0].clamp_(0, 1)
        resized.append(image)
    sizes = torch.tensor([image.shape[-2:] for image in resized])
    stack = torch.zeros(len(resized), 3, int(sizes[:, 0].max()), int(sizes[:, 1].max()))
    for k, image in enumerate(resized):
        stack[k, :, :image.shape[1], :image.shape[2]] = image
    return stack.to(device), sizes.to(device)


@lru_cache(maxsize=1)
def frost_bank() -> Tensor:
    """[6, 3, 384, 384] procedural frost textures in [0, 1] (CPU, float32; the same in every process)."""
    generator = torch.Generator().manual_seed(_BANK_SEED)
    count, size = BANK_COUNT, BANK_SIZE
    fy = torch.fft.fftfreq(size)[:, None] * size  # cycles per texture side
    fx = torch.fft.rfftfreq(size)[None, :] * size
    radius = torch.sqrt(fx * fx + fy * fy)

    def fields(amplitude: Tensor, layers: int) -> Tensor:
        """[count, layers, size, size] Gaussian fields with this amplitude spectrum, unit variance."""
        noise = torch.randn((2, count, layers, size, size // 2 + 1), generator=generator)
        amplitude = amplitude.clone()
        amplitude[..., 0, 0] = 0
        out = torch.fft.irfft2(torch.complex(noise[0], noise[1]) * amplitude, s=(size, size))
        return out / out.std((-2, -1), keepdim=True)

    def band(centre: float, width: float) -> Tensor:
        return torch.exp(-0.5 * (torch.log(radius.clamp_min(1e-3) / centre) / width) ** 2)

    directions = torch.arange(6) * math.pi / 6
    along = fx * torch.cos(directions)[:, None, None] + fy * torch.sin(directions)[:, None, None]
    across = torch.exp(-0.5 * (along / 2.5) ** 2)  # little frequency along the direction: long streaks
    needles = torch.exp(-(fields(across * band(24.0, 0.5), 6) / 0.3) ** 2)
    branches = torch.exp(-(fields(across * band(55.0, 0.45), 6) / 0.2) ** 2)
    smooth = (radius < 4).float()
    orientation = fields(smooth, 2)
    angle = torch.atan2(orientation[:, 1], orientation[:, 0]) / 2  # a crystal orientation per pixel

    def toward(target: Tensor) -> Tensor:
        weight = torch.exp(3.0 * torch.cos(2 * (target[:, None] - directions[None, :, None, None])))
        return weight / weight.sum(1, keepdim=True)

    crystals = (toward(angle) * needles).sum(1) + 0.35 * (
        (toward(angle + math.pi / 3) + toward(angle - math.pi / 3)) * branches).sum(1)
    density = torch.sigmoid((fields(smooth, 1)[:, 0] + 0.5) / 0.4)
    crystals = crystals * density
    # Bend the streaks with a smooth displacement of about 1.5 % of the side.
    warp = fields((radius < 6).float(), 2) * (2 * 6.0 / size)
    axis = torch.linspace(-1, 1, size)
    grid = torch.stack([axis[None, :] + warp[:, 0], axis[:, None] + warp[:, 1]], -1)
    crystals = F.grid_sample(crystals[:, None], grid, mode="bilinear", padding_mode="reflection",
                             align_corners=True)[:, 0]
    texture = 0.3 * fields(radius.clamp_min(1.0).reciprocal(), 1)[:, 0] + crystals
    texture = (texture - texture.mean((1, 2), keepdim=True)) / texture.std((1, 2), keepdim=True)
    look = torch.rand((4, count), generator=generator)
    intensity = (0.45 + 0.35 * look[0])[:, None, None] + (0.09 + 0.08 * look[1])[:, None, None] * texture
    green = 0.88 + 0.10 * look[3]
    tint = torch.stack([green * (0.75 + 0.25 * look[2]), green, torch.ones(count)], 1)  # red ≤ green ≤ blue
    tint = tint / tint.mean(1, keepdim=True)
    return (intensity[:, None] * tint[:, :, None, None]).clamp_(0, 1)
