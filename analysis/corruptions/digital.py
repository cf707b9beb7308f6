"""Digital corruptions: contrast, elastic transform, pixelate, JPEG compression and saturation, after
Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
ICLR 2019, arXiv:1903.12261."""

from __future__ import annotations

import itertools
import math
import warnings
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import Tensor

from ._filters import smooth_noise_field
from ._params import Setting


def contrast(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """(x − m)·c + m with m the per-image, per-channel mean."""
    (factor,) = setting.params
    mean = x.mean((2, 3), keepdim=True)
    return (x - mean).mul_(factor).add_(mean)


def saturate(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """HSV saturation S' = clip(S·a + b, 0, 1), hue and value kept.

    With V = max and δ = max − min, each channel is V·(1 − S·g) with g = (V − x)/δ depending on the hue
    only, so the HSV round trip is x' = V − k·(V − x) with k = V·S'/δ (k·(V − x) ≤ V stays small even
    where δ is tiny and k huge).
    Grey pixels (δ = 0) have hue 0 (red) in skimage's rgb2hsv, i.e. g = (0, 1, 1); a positive offset b
    tints them red, as in the generators.
    """
    factor, offset = setting.params
    value = x.amax(1, keepdim=True)
    spread = value - x.amin(1, keepdim=True)
    saturation = spread / value.clamp_min(1e-12)
    new_saturation = (saturation * factor + offset).clamp_(0, 1)
    colored = spread > 0
    gain = torch.where(colored, value * new_saturation / spread.clamp_min(1e-12), torch.zeros_like(value))
    out = torch.addcmul(value, gain, value - x, value=-1)
    if offset > 0:
        grey_drop = torch.where(colored, torch.zeros_like(value), value * new_saturation)
        out -= grey_drop * x.new_tensor([0.0, 1.0, 1.0])[:, None, None]
    return out


def pixelate(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """PIL's BOX resize to ⌊c·size⌋, then back with nearest neighbour (the generators' upward BOX resize
    and imagecorruptions' NEAREST pick the same pixel).

    Both axes are resized as rows: a sum or gather of whole rows is a run of memory copies, while one along
    the last dim goes element by element (about ten times slower on a CPU). So the rows are reduced, the
    reduced image is transposed, its rows (the columns) are reduced and enlarged, and it is transposed back
    for the rows to be enlarged — two transposes of the small image instead of per-element gathers. A
    channels-last batch is reduced in its own layout (rows of W·C values), its first transpose also
    bringing the channels first; the result is contiguous either way.
    """
    (factor,) = setting.params
    batch, channels, height, width = x.shape
    small_h, small_w = max(1, int(height * factor)), max(1, int(width * factor))
    if x.permute(0, 2, 3, 1).is_contiguous() and not x.is_contiguous():
        rows = box_reduce_rows(x.permute(0, 2, 3, 1).reshape(batch, height, width * channels), small_h)
        reduced = rows.view(batch, small_h, width, channels).permute(0, 3, 2, 1).contiguous()  # [B, C, W, h]
    else:
        reduced = box_reduce_rows(x, small_h).transpose(2, 3).contiguous()  # [B, C, W, h]
    # Clamped here, on the small image, so that the full-size result needs no further pass.
    small = box_reduce_rows(reduced, small_w).clamp_(0, 1)  # [B, C, w, h]
    wide = small.index_select(2, nearest_index(small_w, width, x.device)).transpose(2, 3).contiguous()
    return wide.index_select(2, nearest_index(small_h, height, x.device))


def box_reduce_rows(x: Tensor, out: int) -> Tensor:
    """PIL BOX reduction of dim −2 to `out` rows: output row i averages the input rows whose centres fall
    in its footprint (i·s, (i+1)·s], s = size/out, i.e. rows ⌊i·s + ½⌋ … ⌊(i+1)·s + ½⌋ − 1.

    Each footprint's rows are summed in order. On a CPU the footprints, which partition the rows, are summed
    by one ``index_add_`` of every row into its output row; elsewhere by gathering the k-th row of every
    footprint, k = 0, 1, … (CUDA's ``index_add_`` accumulates with atomics, in an order, and so a rounding,
    that varies from run to run). Both give the same sums.
    """
    size, width = x.shape[-2:]
    owner, starts, lengths, (shortest, longest) = _box_footprints(size, out, x.device)
    planes = x.reshape(-1, size, width)  # three dims: index_add_'s per-row loop runs about 1.5× faster
    if x.device.type == "cpu":
        total = planes.new_zeros((planes.shape[0], out, width)).index_add_(1, owner, planes)
    else:
        total = planes.index_select(1, starts)
        for offset in range(1, longest):
            rows = planes.index_select(1, (starts + offset).clamp_(max=size - 1))
            total += rows if offset < shortest else rows * (lengths > offset).float()[:, None]
    return total.div_(lengths[:, None]).view(*x.shape[:-2], out, width)


@lru_cache(maxsize=64)
def _box_footprints(size: int, out: int, device: torch.device
                    ) -> tuple[Tensor, Tensor, Tensor, tuple[int, int]]:
    """(int64 [size] output row of each input row, int64 [out] first row of each footprint, float32 [out]
    rows per footprint, (fewest, most) rows in a footprint)."""
    scale = size / out
    edges = [math.floor(i * scale + 0.5) for i in range(out + 1)]
    counts = torch.tensor([stop - start for start, stop in itertools.pairwise(edges)])
    owner = torch.repeat_interleave(torch.arange(out), counts)
    extremes = (int(counts.min()), int(counts.max()))
    return owner.to(device), torch.tensor(edges[:-1]).to(device), counts.float().to(device), extremes


@lru_cache(maxsize=64)
def nearest_index(size: int, out: int, device: torch.device) -> Tensor:
    """int64 [out]: the input row each of `out` rows copies when `size` rows are enlarged with
    ``F.interpolate(mode="nearest-exact")`` — computed by that call on the row numbers, so that the two
    agree to the last rounding (⌊(i + ½)·size/out⌋ with torch's float32 scale)."""
    rows = torch.arange(size, dtype=torch.float32).view(1, 1, size)
    return F.interpolate(rows, size=out, mode="nearest-exact").view(out).long().to(device)


# The message of torchvision 0.29's deprecation of its image codecs (superseded by TorchCodec).
_CODEC_DEPRECATION = "The image decoding and encoding capabilities of TorchVision are deprecated"


def jpeg_compression(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """Encode and decode with libjpeg at the severity's quality, from the image rounded to 8 bits.

    libjpeg runs on the CPU for every device: the generators used PIL's libjpeg, and nvjpeg's encoder
    would give different artefacts. That round trip is the one host copy on a CUDA device. The codec is
    torchvision.io's (the calls behind torchvision.transforms.v2.functional.jpeg; deprecated since
    torchvision 0.29, and the faster of the two here); PIL's, with the same libjpeg settings (4:2:0 chroma
    subsampling, baseline), takes over when torchvision.io no longer provides it.
    """
    (quality,) = setting.params
    # Channels-last 8-bit pixels are what libjpeg reads, rounded half up: 0.5 + 255·x in one pass (written
    # channels-last whatever the batch's layout), clamped in place. float32 → int16 → uint8 are two
    # vectorised conversions, several times faster on a CPU than the direct one. On CUDA only the bytes
    # cross to the host.
    channels_last = x.permute(0, 2, 3, 1)
    levels = torch.empty(channels_last.shape, device=x.device)
    torch.add(torch.full((), 0.5, device=x.device), channels_last, alpha=255, out=levels)
    pixels = levels.clamp_(0, 255).to(torch.int16).to(torch.uint8).cpu()
    codec = _torchvision_codec()
    decoded = (_jpeg_round_trip_torchvision(pixels, int(quality), *codec) if codec is not None
               else _jpeg_round_trip_pil(pixels, int(quality)))
    # Reordered to planes as bytes (a quarter of the float bytes to move; on CUDA to copy to the device),
    # then converted and scaled in place: a uint8 / float division in one op takes torch's slow mixed-type
    # path, about three times the two vectorised passes.
    planes = torch.stack(decoded).to(x.device, non_blocking=True)
    return planes.to(torch.float32).div_(255)


def _torchvision_codec():
    """(encode_jpeg, decode_jpeg) of torchvision.io, or None when this torchvision no longer has them."""
    try:
        from torchvision.io import decode_jpeg, encode_jpeg
    except ImportError:
        return None
    return encode_jpeg, decode_jpeg


def _jpeg_round_trip_torchvision(pixels: Tensor, quality: int, encode_jpeg, decode_jpeg) -> list[Tensor]:
    """[B, H, W, 3] uint8 → B decoded uint8 [3, H, W] (views of channels-last data)."""
    with warnings.catch_warnings():
        # torchvision announces the codecs' removal on every call; until then they are used, and the PIL
        # path takes over after. The warning concerns this module, not its callers, so it is not passed on.
        warnings.filterwarnings("ignore", message=_CODEC_DEPRECATION, category=DeprecationWarning)
        # CHW views of channels-last bytes: the encoder's own HWC reordering is then a no-op.
        return decode_jpeg(encode_jpeg(list(pixels.permute(0, 3, 1, 2)), quality=quality))


def _jpeg_round_trip_pil(pixels: Tensor, quality: int) -> list[Tensor]:
    """The same round trip through PIL (its libjpeg, the generators' own), for torchvision releases
    without image codecs."""
    import io

    import numpy as np
    from PIL import Image

    decoded = []
    for image in pixels.numpy():
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
        with Image.open(buffer) as reopened:
            rgb = np.array(reopened.convert("RGB"))
        decoded.append(torch.from_numpy(rgb).permute(2, 0, 1))
    return decoded


def elastic_transform(x: Tensor, setting: Setting, generator: torch.Generator | None) -> Tensor:
    """A random affine map (three points around the centre moved by U(−a, a) each), then a smooth random
    displacement field (U(−1, 1) noise, Gaussian-filtered with σ, truncated at 3σ, times α); both are
    composed into one bilinear resampling with mirrored borders."""
    alpha, sigma, jitter = setting.params
    batch, _, height, width = x.shape
    device = x.device
    inverse = _random_affine_inverse(batch, height, width, jitter, generator, device)
    # grid_sample's normalised coordinates (align_corners=True): n = pixel / s − 1, s = (size − 1)/2.
    sx, sy = max(width - 1, 1) / 2, max(height - 1, 1) / 2
    px = torch.arange(width, device=device, dtype=torch.float32)
    py = torch.arange(height, device=device, dtype=torch.float32)
    grid = torch.empty(batch, height, width, 2, device=device)
    for axis, unit in enumerate((sx, sy)):
        along_x, along_y, shift = (inverse[:, axis, k] / unit for k in range(3))
        row = (along_y[:, None] * py[None] + shift[:, None] - 1)[:, :, None]
        torch.add(row, along_x[:, None, None] * px[None, None], out=grid[..., axis])
    if alpha > 0 and sigma > 0:
        noise = torch.rand((batch, 2, height, width), generator=generator, device=device).mul_(2).sub_(1)
        field = smooth_noise_field(noise, sigma, truncate=3.0, mode="symmetric")
        # The displacement goes through the linear part of the affine map.
        for axis, unit in enumerate((sx, sy)):
            grid[..., axis].addcmul_(field[:, 0], (inverse[:, axis, 0] * alpha / unit)[:, None, None])
            grid[..., axis].addcmul_(field[:, 1], (inverse[:, axis, 1] * alpha / unit)[:, None, None])
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=True)


def _random_affine_inverse(batch: int, height: int, width: int, jitter: float,
                           generator: torch.Generator | None, device: torch.device) -> Tensor:
    """[B, 2, 3] output-pixel → input-pixel maps: the inverse of the affine map that moves the three
    points (c + s, c + s), (c + s, c − s), (c − s, c − s) (c the centre, s a third of the shorter side) by
    independent U(−jitter, jitter) offsets (OpenCV getAffineTransform + warpAffine)."""
    cx, cy, side = width // 2, height // 2, min(height, width) // 3
    source = torch.tensor([[cx + side, cy + side], [cx + side, cy - side], [cx - side, cy - side]],
                          dtype=torch.float64)
    solve = torch.linalg.inv(torch.cat([source, torch.ones(3, 1, dtype=torch.float64)], 1)).float().to(device)
    offsets = torch.rand((batch, 3, 2), generator=generator, device=device) * 2 - 1
    forward = (solve @ (source.float().to(device) + offsets * jitter)).transpose(1, 2)  # [B, 2, 3]
    a, b, c = forward[:, 0, 0], forward[:, 0, 1], forward[:, 0, 2]
    d, e, f = forward[:, 1, 0], forward[:, 1, 1], forward[:, 1, 2]
    det = a * e - b * d
    inv = torch.stack([torch.stack([e, -b, b * f - c * e], -1), torch.stack([-d, a, c * d - a * f], -1)], 1)
    return inv / det[:, None, None]
