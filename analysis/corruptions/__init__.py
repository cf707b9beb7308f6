"""The 19 common corruptions of Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations", ICLR 2019, arXiv:1903.12261 — batched, in torch, on the images' device.

``corrupt(images, name, severity)`` renders one corruption at one severity for a whole batch: float images
in [0, 1] of shape [B, 3, H, W] (any size from 8×8, square or not), computed in float32, returned in the
input's dtype and clamped to [0, 1]. All randomness comes from the ``generator`` argument. The parameters
per severity are those of the authors' generators (``make_cifar_c.py`` for 32-px images,
``make_imagenet_c.py`` for 224-px images; see :mod:`._params` for ``profile`` and the scaling of other
sizes).

Deviations from the generators (everything not listed follows their definitions):

* General: float32 throughout, no rounding to 8 bits between steps or at the end, and no final save as
  JPEG (the published ImageNet-C files are JPEGs of quality 85, so they carry extra JPEG artefacts; the
  CIFAR-C files are uint8). Randomness from a torch.Generator: the same distributions as the generators'
  numpy draws, different streams. Sizes other than 32 and 224 and non-square images are supported by
  applying each definition per axis.
* defocus_blur: the disk kernel is built as the generators build it, in float64, and applied by FFT;
  identical up to rounding.
* glass_blur: the generators swap pixels one after another in reverse raster order; here pixels of the same
  residue class (row mod 2δ, column mod 2δ) swap simultaneously (no two such swaps touch the same pixel),
  class after class. Each pass is still a permutation made of swaps within ±δ, but a pixel's content is
  carried on from swap to swap less often, so the image does not drift up and left by a few pixels as the
  generators' order makes it. The 8-bit truncation between the two blurs is left out.
* motion_blur and snow's flake streaks: ImageMagick's MotionBlurImage kernel (taps, weights and offsets) is
  re-implemented as a per-sample sparse correlation computed by FFT, with replicated borders; no
  8-bit PNG round trip through ImageMagick.
* zoom_blur: as the generators (centred trim); the imagecorruptions package trims non-square zooms at
  the top left instead.
* frost: the generators crop one of six frost photographs, which are not distributed with this project.
  By default the crops come from six procedural frost textures generated once from a fixed seed (see
  :mod:`._frost`); with ``frost_dir`` from the user's images, chosen among all of them (the generators draw
  from the first five of six). Frost images are resized with antialiased bilinear interpolation (for the
  CIFAR profile's 20 % shrink) and enlarged by 10 % beyond the image when smaller than it.
* fog: the same diamond-square plasma fractal, for the whole batch at once, on a square of the next power
  of two of the longer side (256 for 224 px, 32 for 32 px, as the generators).
* brightness and saturate: closed forms equal to the generators' RGB → HSV → RGB round trip.
* elastic_transform: the random affine warp and the displacement field are composed into one bilinear
  resampling with mirrored (reflect-101) borders; the generators resample twice (OpenCV warpAffine with
  reflect-101, then scipy map_coordinates with half-sample symmetric borders). For field widths σ ≥ 2.4 px
  the filtered noise is evaluated exactly every ⌊σ/1.2⌋ pixels and interpolated bilinearly in between
  (such a field has almost no energy above a quarter cycle per pixel). The affine's three points sit
  around (W//2, H//2) as (x, y) (the generators use (H//2, W//2), which only differs for non-square images).
  With the same random draws the result is within 26–37 dB PSNR of the generators' two-step warp.
* pixelate: PIL's BOX reduction (each output pixel the mean of the input pixels whose centres fall in its
  footprint) without PIL's 8-bit rounding after each pass; the way back up is nearest neighbour, the
  pixels PIL's BOX enlargement picks as well.
* jpeg_compression: libjpeg through torchvision.io (encode_jpeg/decode_jpeg, the calls behind
  torchvision.transforms.v2.functional.jpeg) instead of PIL, on the image rounded to 8 bits; on CUDA the
  8-bit image goes through the CPU.
* spatter: OpenCV's Canny, distance transform, equalizeHist, emboss and box blurs are re-implemented
  batched; the distance is the exact Euclidean one (OpenCV's 5×5 mask approximates it) and Canny's
  hysteresis grows edges by at most 16 pixels from a strong edge.
* profile="auto" (new): sizes other than 32 and 224 px scale the parameters measured in pixels.

On CPU, the corruptions built from long chains of passes over the pixels run on tiles of the batch of
about 2^18 pixels (5 images of 224 px, 256 of 32 px), each tile one batched call, so that intermediates stay
in cache. Random draws then follow tile by tile: results are reproducible for a given generator state and
batch, and depend on the device as torch's random streams do.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

import torch
from torch import Tensor

from msda._checks import check_choice, check_generator, check_int, describe

from . import blur, digital, noise, spatter, weather
from ._frost import check_frost_dir
from ._params import PROFILES, setting

Renderer = Callable[..., Tensor]

_RENDERERS: dict[str, Renderer] = {
    "gaussian_noise": noise.gaussian_noise,
    "shot_noise": noise.shot_noise,
    "impulse_noise": noise.impulse_noise,
    "defocus_blur": blur.defocus_blur,
    "glass_blur": blur.glass_blur,
    "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur,
    "snow": weather.snow,
    "frost": weather.frost,
    "fog": weather.fog,
    "brightness": weather.brightness,
    "contrast": digital.contrast,
    "elastic_transform": digital.elastic_transform,
    "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
    "speckle_noise": noise.speckle_noise,
    "gaussian_blur": blur.gaussian_blur,
    "spatter": spatter.spatter,
    "saturate": digital.saturate,
}

CORRUPTIONS: tuple[str, ...] = tuple(_RENDERERS)
"""The 19 corruption names in the paper's order: the 15 benchmark corruptions, then the 4 extra ones."""

BENCHMARK_CORRUPTIONS: tuple[str, ...] = CORRUPTIONS[:15]
"""The 15 corruptions that ImageNet-C's mCE averages over."""

CORRUPTION_GROUPS: MappingProxyType = MappingProxyType({
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur"),
    "weather": ("snow", "frost", "fog", "brightness"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression"),
    "extra": ("speckle_noise", "gaussian_blur", "spatter", "saturate"),
})
"""Group → corruption names, the paper's four groups plus the four extra corruptions."""

RANDOM_CORRUPTIONS: frozenset[str] = frozenset({
    "gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "glass_blur", "motion_blur", "snow",
    "frost", "fog", "elastic_transform", "spatter",
})
"""The corruptions that draw random numbers; the others are deterministic functions of the image."""

DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MIN_SIZE = 8

# On CPU these renderers run on tiles of the batch of about this many pixels, so that their chains of
# passes over the pixels (FFTs, index copies, long elementwise chains) stay in cache: 2–3× faster for
# 224-px images on one core. Each tile is one batched call; on other devices the batch is one call.
_CPU_TILE_PIXELS = 1 << 18
_CPU_TILED = frozenset({"impulse_noise", "speckle_noise", "defocus_blur", "glass_blur", "motion_blur",
                        "zoom_blur", "snow", "pixelate", "spatter", "saturate", "jpeg_compression"})
# Renderers whose output is already in [0, 1]: the final clamp, a full pass over the pixels, is skipped.
_IN_RANGE = frozenset({"pixelate", "jpeg_compression"})


def corrupt(images: Tensor, name: str, severity: int, *, profile: str = "auto",
            generator: torch.Generator | None = None, frost_dir: str | Path | None = None) -> Tensor:
    """Corrupt a batch of images.

    Args:
        images: [B, 3, H, W] float32/float16/bfloat16 in [0, 1], H, W ≥ 8, on any device. Not modified.
            NaN, infinite or out-of-range values are refused with a ValueError.
        name: one of :data:`CORRUPTIONS`.
        severity: 1 … 5.
        profile: "cifar" (CIFAR-10-C parameters), "imagenet" (ImageNet-C parameters) or "auto" (the table
            nearer to the image size, pixel-size parameters scaled by shorter side / 32 or / 224).
        generator: torch.Generator on the images' device for every random draw (None: torch's default).
        frost_dir: for "frost", a directory of frost images to crop from instead of procedural textures;
            ignored by the other corruptions.

    Returns:
        [B, 3, H, W] corrupted images, same dtype and device, clamped to [0, 1]. Computed without autograd.
    """
    _check_images(images)
    name = check_choice("name", name, CORRUPTIONS)
    if isinstance(severity, bool):
        raise ValueError(f"severity must be an integer in [1, 5], got {severity!r}")
    severity = check_int("severity", severity, low=1, high=5)
    profile = check_choice("profile", profile, PROFILES)
    generator = check_generator(generator, images.device)
    height, width = images.shape[-2:]
    chosen = setting(name, severity, profile, height, width)
    source = images.detach().float()
    frost = check_frost_dir(frost_dir) if name == "frost" else None
    with torch.no_grad():
        if name == "frost":
            out = weather.frost(source, chosen, generator, frost)
        elif source.device.type == "cpu" and name in _CPU_TILED:
            tile = max(1, _CPU_TILE_PIXELS // (height * width))
            out = torch.cat([_RENDERERS[name](part, chosen, generator) for part in source.split(tile)])
        else:
            out = _RENDERERS[name](source, chosen, generator)
        if name not in _IN_RANGE:
            out = out.clamp(0, 1) if out.data_ptr() == source.data_ptr() else out.clamp_(0, 1)
        return out.to(dtype=images.dtype, memory_format=torch.contiguous_format)


def _check_images(images) -> None:
    if not isinstance(images, Tensor):
        raise ValueError(f"images must be a torch.Tensor of shape [B, 3, H, W], got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] < 1:
        raise ValueError(f"images must have shape [B, 3, H, W] with B ≥ 1, got shape {tuple(images.shape)}")
    if min(images.shape[-2:]) < MIN_SIZE:
        raise ValueError(f"images must be at least {MIN_SIZE}×{MIN_SIZE} pixels, got shape "
                         f"{tuple(images.shape)}")
    if images.dtype not in DTYPES:
        raise ValueError(f"images must have dtype {', '.join(map(str, DTYPES))}; got {images.dtype} "
                         f"({describe(images)})")
    # Every corruption assumes [0, 1]: one NaN pixel spreads over a whole image through the blurs' FFTs and
    # the global means of fog and contrast, shot noise cannot draw a Poisson count for a negative or NaN rate,
    # and JPEG quietly turns NaN into some byte. One fused reduction and one host sync per call.
    low, high = torch.aminmax(images.detach())
    if not (bool(low >= 0) and bool(high <= 1)):  # NaN fails both comparisons
        bad = images.detach()[~((images >= 0) & (images <= 1))].flatten()[0].item()
        raise ValueError(f"images must hold finite values in [0, 1], got a value of {bad!r} ({describe(images)}); "
                         f"clamp or rescale them first")


__all__ = ["BENCHMARK_CORRUPTIONS", "CORRUPTIONS", "CORRUPTION_GROUPS", "RANDOM_CORRUPTIONS", "corrupt"]
