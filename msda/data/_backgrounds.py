"""Textured backgrounds of the shapes dataset: value noise, gradients, stripes, checkers, photo and texture crops.

Value noise: Perlin, "An Image Synthesizer", SIGGRAPH 1985 (lattice noise with smoothstep interpolation). The
photos and textures are the images bundled with scikit-image (``skimage.data``: astronaut, chelsea, coffee,
rocket, … and the grey brick, grass, gravel, … textures) — no download.

Every background is rendered for a whole batch at once from per-sample parameters drawn by a
:class:`CounterRandom`; the kinds are rendered on their own index subsets (a loop over the six kinds, never over
samples). Random angles come from a fixed cos/sin table, so no transcendental function is evaluated on
per-sample values: results are bit-identical however the batch is split.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._counter_random import CounterRandom

KINDS = ("noise", "gradient", "stripes", "checker", "photo", "texture")
KIND_WEIGHTS = (0.16, 0.14, 0.14, 0.12, 0.28, 0.16)  # photos are the most varied, so the most frequent

COLOUR_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry",
                 "stereo_motorcycle")
GREY_TEXTURES = ("brick", "grass", "gravel", "camera", "moon", "coins", "text", "page")

ANGLE_STEPS = 4096
_CHANNEL_PERMUTATIONS = ((0, 1, 2), (0, 2, 1), (1, 0, 2), (1, 2, 0), (2, 0, 1), (2, 1, 0))


@lru_cache(maxsize=8)
def angle_table(device: torch.device) -> tuple[Tensor, Tensor]:
    """cos and sin of k·2π/ANGLE_STEPS, k = 0…ANGLE_STEPS − 1 (float32 [ANGLE_STEPS] each)."""
    turns = torch.arange(ANGLE_STEPS, dtype=torch.float64) * (2.0 * math.pi / ANGLE_STEPS)
    return turns.cos().float().to(device), turns.sin().float().to(device)


def random_direction(rng: CounterRandom, stream: str, count: int | None = None) -> tuple[Tensor, Tensor]:
    """A uniformly random unit vector (cos θ, sin θ) per sample (and per slot if `count`)."""
    cos, sin = angle_table(rng.device)
    step = rng.integers(stream, ANGLE_STEPS, count)
    return cos[step], sin[step]


def hsv_to_rgb(hue: Tensor, saturation: Tensor, value: Tensor) -> Tensor:
    """HSV in [0, 1] (any equal shapes […]) → RGB […, 3] in [0, 1], piecewise-linear (exact arithmetic)."""
    offsets = torch.tensor([5.0, 3.0, 1.0], device=hue.device)
    k = hue[..., None] * 6.0 + offsets
    k = torch.where(k >= 6.0, k - 6.0, k)
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)
    return value[..., None] - value[..., None] * saturation[..., None] * ramp


def random_colour(rng: CounterRandom, stream: str, count: int | None = None, *,
                  saturation: tuple[float, float] = (0.2, 1.0), value: tuple[float, float] = (0.15, 1.0)) -> Tensor:
    """Random RGB colours [B, 3] (or [B, count, 3]) with uniformly random hue."""
    return hsv_to_rgb(rng.uniform(stream + ".h", count), rng.uniform(stream + ".s", count, *saturation),
                      rng.uniform(stream + ".v", count, *value))


def square_wave(phase: Tensor, period_px: Tensor) -> Tensor:
    """Anti-aliased 0/1 square wave of `phase` (in periods), edges softened over one pixel."""
    triangle = (2.0 * (phase - phase.floor()) - 1.0).abs()  # 1 at whole periods, 0 half-way
    return (0.5 + (triangle - 0.5) * period_px * 0.5).clamp(0.0, 1.0)


def _blend(first: Tensor, second: Tensor, t: Tensor) -> Tensor:
    """first·(1 − t) + second·t, with colours [b, 3] and weights [b, S, S] → [b, 3, S, S]."""
    return first[:, :, None, None] + (second - first)[:, :, None, None] * t[:, None]


def _rotated(xs: Tensor, ys: Tensor, rng: CounterRandom, stream: str) -> Tensor:
    """x·cos θ + y·sin θ on the [b, S, S] grid, a random θ per sample."""
    cos, sin = random_direction(rng, stream)
    return xs[None, None, :] * cos[:, None, None] + ys[None, :, None] * sin[:, None, None]


def _noise(rng: CounterRandom, xs: Tensor, ys: Tensor) -> Tensor:
    """Two octaves of colour value noise around a random base colour."""
    base = random_colour(rng, "noise.base")
    amplitude = rng.uniform("noise.amplitude", None, 0.25, 0.7)
    cells = rng.integers("noise.cells", 7) + 2  # 2…8 lattice cells across the image
    noise = _value_noise(rng, "noise.octave1", xs, ys, cells, 9) * (2.0 / 3.0)
    noise = noise + _value_noise(rng, "noise.octave2", xs, ys, cells * 2, 17) * (1.0 / 3.0)
    return (base[:, :, None, None] + amplitude[:, None, None, None] * (noise - 0.5) * 2.0).clamp(0.0, 1.0)


def _value_noise(rng: CounterRandom, stream: str, xs: Tensor, ys: Tensor, cells: Tensor, lattice: int) -> Tensor:
    """[b, 3, S, S] smooth noise in [0, 1]: random lattice values, smoothstep-interpolated."""
    b, size = cells.shape[0], xs.shape[0]
    values = rng.uniform(stream, 3 * lattice * lattice).view(b, 3, lattice * lattice)
    scale = cells.float()[:, None] * 0.5
    tx, ty = (xs[None] + 1.0) * scale, (ys[None] + 1.0) * scale  # [b, S] in [0, cells]
    ix = torch.minimum(tx.floor(), cells[:, None] - 1.0)
    iy = torch.minimum(ty.floor(), cells[:, None] - 1.0)
    wx, wy = tx - ix, ty - iy
    wx, wy = wx * wx * (3.0 - 2.0 * wx), wy * wy * (3.0 - 2.0 * wy)
    ix, iy = ix.long(), iy.long()

    def corner(dy: int, dx: int) -> Tensor:
        index = ((iy + dy) * lattice)[:, :, None] + (ix + dx)[:, None, :]
        return values.gather(2, index.view(b, 1, size * size).expand(b, 3, -1)).view(b, 3, size, size)

    wx, wy = wx[:, None, None, :], wy[:, None, :, None]
    top = corner(0, 0) + (corner(0, 1) - corner(0, 0)) * wx
    bottom = corner(1, 0) + (corner(1, 1) - corner(1, 0)) * wx
    return top + (bottom - top) * wy


def _gradient(rng: CounterRandom, xs: Tensor, ys: Tensor) -> Tensor:
    along = _rotated(xs, ys, rng, "gradient.angle")
    steepness = rng.uniform("gradient.steepness", None, 0.25, 1.0)
    t = (0.5 + along * steepness[:, None, None]).clamp(0.0, 1.0)
    return _blend(random_colour(rng, "gradient.from"), random_colour(rng, "gradient.to"), t)


def _stripes(rng: CounterRandom, xs: Tensor, ys: Tensor) -> Tensor:
    size = xs.shape[0]
    period_px = rng.uniform("stripes.period", None, 3.0 / 32.0, 1.0 / 3.0) * size  # 3–11 px at 32 px
    phase = _rotated(xs, ys, rng, "stripes.angle") * (size * 0.5 / period_px)[:, None, None]
    t = square_wave(phase + rng.uniform("stripes.phase")[:, None, None], period_px[:, None, None])
    return _blend(random_colour(rng, "stripes.a"), random_colour(rng, "stripes.b"), t)


def _checker(rng: CounterRandom, xs: Tensor, ys: Tensor) -> Tensor:
    size = xs.shape[0]
    period_px = rng.uniform("checker.period", None, 4.0 / 32.0, 0.5) * size  # 4–16 px at 32 px
    cos, sin = random_direction(rng, "checker.angle")
    frequency = (size * 0.5 / period_px)[:, None, None]
    u = (xs[None, None, :] * cos[:, None, None] + ys[None, :, None] * sin[:, None, None]) * frequency
    v = (ys[None, :, None] * cos[:, None, None] - xs[None, None, :] * sin[:, None, None]) * frequency
    a, b = square_wave(u, period_px[:, None, None]), square_wave(v, period_px[:, None, None])
    t = a + b - 2.0 * a * b  # smooth XOR
    return _blend(random_colour(rng, "checker.a"), random_colour(rng, "checker.b"), t)


def _photo(rng: CounterRandom, xs: Tensor, ys: Tensor) -> Tensor:
    atlas = image_atlas(COLOUR_PHOTOS, _atlas_side(xs.shape[0]), rng.device)
    images = _crop_atlas(rng, "photo", atlas, len(COLOUR_PHOTOS), xs, ys)
    permutation = torch.tensor(_CHANNEL_PERMUTATIONS, device=rng.device)[rng.integers("photo.channels", 6)]
    images = images.gather(1, permutation[:, :, None, None].expand_as(images))
    grey = (images[:, 0] + images[:, 1] + images[:, 2]) * (1.0 / 3.0)
    saturation = rng.uniform("photo.saturation", None, 0.3, 1.3)[:, None, None, None]
    return (grey[:, None] + (images - grey[:, None]) * saturation).clamp(0.0, 1.0)


def _texture(rng: CounterRandom, xs: Tensor, ys: Tensor) -> Tensor:
    atlas = image_atlas(GREY_TEXTURES, _atlas_side(xs.shape[0]), rng.device)
    grey = _crop_atlas(rng, "texture", atlas, len(GREY_TEXTURES), xs, ys)[:, 0]
    return _blend(random_colour(rng, "texture.dark"), random_colour(rng, "texture.light"), grey)


def _crop_atlas(rng: CounterRandom, stream: str, atlas: Tensor, count: int, xs: Tensor, ys: Tensor) -> Tensor:
    """Random square crops (30–100 % of a side, random place and mirror) of the atlas images: [b, C, S, S].

    All samples are read in one ``grid_sample`` call: their sampling grids are stacked along the height of a
    single [1, b·S, S, 2] grid over the [1, C, A, A·count] atlas.
    """
    b, size = rng.keys.shape[0], xs.shape[0]
    which = rng.integers(stream + ".image", count).float()
    fraction = rng.uniform(stream + ".fraction", None, 0.3, 1.0)
    left = rng.uniform(stream + ".left") * (1.0 - fraction)
    top = rng.uniform(stream + ".top") * (1.0 - fraction)
    mirror = torch.where(rng.bernoulli(stream + ".mirror", 0.5), -1.0, 1.0)
    half = fraction * 0.5
    # Within-image fractions in [0, 1], then atlas coordinates for grid_sample (align_corners=False).
    fx = (left + half)[:, None] + (half * mirror)[:, None] * xs[None]
    fy = (top + half)[:, None] + half[:, None] * ys[None]
    gx = (which[:, None] + fx) * (2.0 / count) - 1.0
    gy = fy * 2.0 - 1.0
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)  # [b, S, S, 2]
    sampled = F.grid_sample(atlas, grid.reshape(1, b * size, size, 2), mode="bilinear",
                            padding_mode="border", align_corners=False)
    return sampled.view(atlas.shape[1], b, size, size).transpose(0, 1)


def _atlas_side(size: int) -> int:
    """Atlas resolution per image: twice the output size, so crops are neither much up- nor down-sampled."""
    return int(min(512, max(64, 2 * size)))


@lru_cache(maxsize=8)
def image_atlas(names: tuple[str, ...], side: int, device: torch.device) -> Tensor:
    """The named ``skimage.data`` images, centre-cropped square, resized to side×side, side by side.

    Returns float32 [1, C, side, side·len(names)] in [0, 1] (C = 3 for colour photos, 1 for grey textures).
    """
    import skimage.data

    tiles = []
    for name in names:
        image = getattr(skimage.data, name)()
        image = image[0] if isinstance(image, tuple) else image  # stereo_motorcycle: (left, right, disparity)
        array = torch.from_numpy(np.ascontiguousarray(image)).float() / 255.0
        array = array[None] if array.ndim == 2 else array[..., :3].permute(2, 0, 1)
        height, width = array.shape[-2:]
        side_in = min(height, width)
        top, left = (height - side_in) // 2, (width - side_in) // 2
        square = array[:, top: top + side_in, left: left + side_in]
        tiles.append(F.interpolate(square[None], size=(side, side), mode="bilinear", antialias=True,
                                   align_corners=False)[0].clamp(0.0, 1.0))
    return torch.cat(tiles, dim=-1)[None].contiguous().to(device)


_RENDERERS = {"noise": _noise, "gradient": _gradient, "stripes": _stripes, "checker": _checker,
              "photo": _photo, "texture": _texture}


def render_backgrounds(rng: CounterRandom, xs: Tensor, ys: Tensor) -> Tensor:
    """Backgrounds for the batch of `rng`: images float32 [B, 3, S, S] in [0, 1].

    xs, ys: pixel-centre coordinates [S] in (−1, 1), x to the right, y downwards.
    """
    b, size = rng.keys.shape[0], xs.shape[0]
    thresholds = torch.tensor(np.cumsum(KIND_WEIGHTS)[:-1], dtype=torch.float32, device=rng.device)
    kind = torch.bucketize(rng.uniform("background.kind"), thresholds, right=True)
    out = torch.empty(b, 3, size, size, device=rng.device)
    for index, name in enumerate(KINDS):
        chosen = (kind == index).nonzero().squeeze(1)
        if chosen.numel():
            out[chosen] = _RENDERERS[name](_subset(rng, chosen), xs, ys)
    return out


def _subset(rng: CounterRandom, chosen: Tensor) -> CounterRandom:
    return CounterRandom(rng.keys[chosen])
