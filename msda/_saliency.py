"""Static saliency detectors, batched in torch: OpenCV's fine-grained and spectral-residual detectors.

Both take images [B, C, H, W] with values in [0, 1] (any float dtype, any device) and return one map per
image; neither loops over the batch in Python nor needs OpenCV at run time.

* :func:`fine_grained` — Montabone & Soto, "Human detection using a mobile platform and novel features
  derived from a visual saliency mechanism", Image and Vision Computing 28(3), 2010, as OpenCV-contrib's
  ``cv2.saliency.StaticSaliencyFineGrained`` computes it (the detector of SaliencyMix's official code).
  It reproduces OpenCV's 8-bit arithmetic step by step — the fixed-point grey conversion, the two 3 × 3
  Gaussian blurs, the truncations to bytes and the two normalisations — so the map, its ties and therefore
  its first maximum are OpenCV's, bit for bit, whenever the integral image stays below 2²⁴ (images up to
  about 256 × 256; above that OpenCV's float32 integral rounds and ours does not).
* :func:`spectral_residual` — Hou & Zhang, "Saliency Detection: A Spectral Residual Approach", CVPR 2007,
  as OpenCV's ``StaticSaliencySpectralResidual`` computes it, on a size × size grey image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from ._checks import check_choice

DETECTORS = ("fine_grained", "spectral_residual")

# Half-sides of OpenCV's six centre-surround neighbourhoods (3·4, 3·4·2, 3·4·4, 7·4, 7·4·2, 7·4·4).
FINE_GRAINED_SCALES = (12, 24, 48, 28, 56, 112)

# cvtColor(BGR2GRAY) on bytes: fixed point with 15 fraction bits (R, G, B weights sum to 2¹⁵).
_GREY_FIXED_POINT = (9798, 19235, 3735)
_LUMA = (0.299, 0.587, 0.114)


def _byte_levels(images: Tensor) -> Tensor:
    """[B, C, H, W] in [0, 1] → the 8-bit levels round(255·x) as float32 (exact integers)."""
    return (images.float() * 255).round_().clamp_(0, 255)


def _grey_bytes(images: Tensor) -> Tensor:
    """[B, H, W] float32 grey levels as OpenCV's 8-bit BGR2GRAY gives them (RGB input; C ≠ 3: channel mean), from
    images in [0, 1] read as the bytes round(255·x).

    The fixed-point sum stays below 2²³, so float32 holds it exactly and the shift is an exact division. The
    channels are converted to bytes one at a time, into one reused plane.
    """
    if images.shape[1] != 3:
        levels = _byte_levels(images)
        return levels[:, 0] if levels.shape[1] == 1 else levels.mean(1).round_()
    fixed = level = None
    for channel, weight in enumerate(_GREY_FIXED_POINT):
        level = torch.mul(images[:, channel].float(), 255, out=level).round_().clamp_(0, 255)
        fixed = level * weight if fixed is None else fixed.add_(level, alpha=weight)
    return fixed.add_(1 << 14).div_(1 << 15).floor_()


def _blur_bytes(grey: Tensor, rows: Tensor | None = None) -> Tensor:
    """OpenCV's GaussianBlur(3 × 3, σ = 0) on bytes: kernel [1, 2, 1]²/16, reflect-101 border, rounded half up.

    Done with shifted adds on exact integers (float32 holds them exactly, in any order) rather than a
    convolution, which on CUDA may run in TF32. Writes the result into `grey`; ``rows`` is an optional
    [B, H, W + 2] scratch plane.
    """
    padded = F.pad(grey[:, None], (1, 1, 1, 1), mode="reflect")[:, 0]
    rows = torch.add(padded[:, :-2], padded[:, 2:], out=rows).add_(padded[:, 1:-1], alpha=2)
    weighted = torch.add(rows[:, :, :-2], rows[:, :, 2:], out=grey).add_(rows[:, :, 1:-1], alpha=2)
    return weighted.add_(8).div_(16).floor_()


def _floor_255_times(fraction: Tensor, scratch: Tensor, out: Tensor) -> Tensor:
    """floor(255·q) for float32 q in [0, 1], exactly as C's (uchar)(255.0 * q) computes it in double; written
    into `out`, with `scratch` (both of q's shape) overwritten.

    255·q rounded to float32 can land on the next integer; 256·q is exact, and 255·q = 256·q − q, so the
    floor is floor(256·q) less one when the fractional part of 256·q is below q (both comparisons exact).
    """
    scaled = torch.mul(fraction, 256, out=scratch)
    whole = torch.floor(scaled, out=out)
    below = torch.lt(scaled.sub_(whole), fraction, out=scaled)  # 1.0 where the fractional part is below q
    return whole.sub_(below)


@torch.no_grad()  # a detector of byte levels: nothing to differentiate, so no graph is kept
def fine_grained(images: Tensor) -> Tensor:
    """OpenCV's StaticSaliencyFineGrained map of each image: [B, H, W] float32 in [0, 1] (byte level / 255).

    Args:
        images: [B, C, H, W] float in [0, 1], RGB when C = 3 (C = 1: the grey image itself; other C: the
            channel mean). Values are read as the 8-bit image round(255·x), which is what the detector is
            defined on.

    Returns:
        [B, H, W] float32: the map OpenCV returns (its byte map / 255), so ``map.flatten(1).argmax(1)`` is the
        same first maximum as ``np.argmax`` of OpenCV's map. A flat image (no centre-surround contrast) gives
        an all-zero map.

    Every step works in place or in a reused plane: on a CPU a fresh image-sized buffer costs more than the
    arithmetic done in it, and the six scales make some sixty passes over the batch.
    """
    grey = _grey_bytes(images)
    height, width = grey.shape[-2:]
    scratch = grey.new_empty(grey.shape[0], height, width + 2)
    grey = _blur_bytes(_blur_bytes(grey, scratch), scratch)
    device = grey.device
    extended, pad_y, pad_x = _edge_extended_integral(grey)
    ys = torch.arange(height, device=device)
    xs = torch.arange(width, device=device)
    # OpenCV truncates g − mean and mean − g to bytes (0 when negative): per scale that is trunc(g − mean) split
    # by sign, so the on and off sums are (Σ|t| ± Σt) / 2 — two running sums instead of two clamped copies.
    signed_sum = torch.zeros_like(grey)
    magnitude_sum = torch.zeros_like(grey)
    truncated = torch.empty_like(grey)
    whole = torch.empty_like(grey)
    for half_side in FINE_GRAINED_SCALES:
        # OpenCV's box: rows y − n + 1 … y + n and columns x − n + 1 … x + n, clipped to the image; the mean
        # of the surround excludes the centre pixel. Past the image's size a larger n clips the same way.
        n_y, n_x = min(half_side, height), min(half_side, width)

        def corner(dy: int, dx: int) -> Tensor:
            return extended[:, pad_y + dy:pad_y + dy + height, pad_x + dx:pad_x + dx + width]

        rows = (ys + n_y + 1).clamp(0, height) - (ys - n_y + 1).clamp(0, height)
        cols = (xs + n_x + 1).clamp(0, width) - (xs - n_x + 1).clamp(0, width)
        surround = (rows[:, None] * cols[None, :] - 1).clamp_min(1).float()
        # The box sum less the centre (exact integers), then g − that / surround: addcdiv computes
        # g + (−1·d)/s, the same number as g − d/s.
        if extended.dtype == torch.float32:
            box = torch.sub(corner(n_y + 1, n_x + 1), corner(n_y + 1, 1 - n_x), out=truncated)
            box.sub_(corner(1 - n_y, n_x + 1)).add_(corner(1 - n_y, 1 - n_x))
        else:  # an int32 integral (large images): sum in integers, where the sums are exact
            box = (corner(n_y + 1, n_x + 1) - corner(n_y + 1, 1 - n_x)).sub_(corner(1 - n_y, n_x + 1))
            box = box.add_(corner(1 - n_y, 1 - n_x)).float()
        box.sub_(grey)
        difference = torch.addcdiv(grey, box, surround, value=-1, out=box)
        # trunc(x) = copysign(floor(|x|), x), exactly; torch's CPU trunc is many times slower than floor.
        whole = torch.abs(difference, out=whole).floor_()
        magnitude_sum += whole
        signed_sum += torch.copysign(whole, difference, out=difference)
    # on = (Σ|t| + Σt)/2 and off = (Σ|t| − Σt)/2 are integers; the normalisation divides by the maximum, so the
    # halving (exact, and exact in the maximum) is left out — bar a maximum below 1, where both maps are 0.
    # The four planes of the loop are reused: no buffer is allocated from here on.
    on_sum = torch.add(magnitude_sum, signed_sum, out=truncated)
    off_sum = magnitude_sum.sub_(signed_sum)
    on_bytes = _normalise_to_bytes(on_sum, whole, out=signed_sum)
    off_bytes = _normalise_to_bytes(off_sum, whole, out=on_sum)
    peak = torch.maximum(on_bytes.amax((1, 2)), off_bytes.amax((1, 2))).clamp_min(1)[:, None, None]
    # 255·(on + off)/max is exact in double and rounds to floor(n / d) for these small integers; it can pass
    # 255 where on and off are both high, and OpenCV's cast to a byte then keeps the low byte (mod 256).
    combined = on_bytes.add_(off_bytes).mul_(255).div_(peak, rounding_mode="floor").remainder_(256)
    # OpenCV's convertTo(…, 1/255) multiplies by the float32 reciprocal; dividing would differ in the last bit.
    return combined.mul_(torch.tensor(1 / 255, dtype=torch.float32, device=device))


def _edge_extended_integral(grey: Tensor) -> tuple[Tensor, int, int]:
    """The integral image of [B, H, W] (leading zero row and column), extended by repeating its edges so every
    clipped corner OpenCV reads is a plain slice: (extended, pad_y, pad_x).

    ``extended[:, pad_y + r, pad_x + c]`` is the integral at (clamp(r, 0, H), clamp(c, 0, W)) for
    −pad_y ≤ r ≤ H + pad_y. Float32 while the sums stay below 2²⁴ (exact, and what OpenCV uses), int32 above
    (exact up to 8 M pixels, where OpenCV's float32 integral starts rounding).
    """
    batch, height, width = grey.shape
    largest = max(FINE_GRAINED_SCALES)
    pad_y, pad_x = min(largest, height) + 1, min(largest, width) + 1
    dtype = torch.float32 if height * width * 255 < 1 << 24 else torch.int32
    # Written in place, in one buffer: the cumulative sums, zeros before them, and the last row and column
    # repeated after them.
    extended = torch.empty(batch, height + 1 + 2 * pad_y, width + 1 + 2 * pad_x, dtype=dtype, device=grey.device)
    top, left = pad_y + 1, pad_x + 1  # where the integral's row 1 and column 1 go
    inner = extended[:, top:top + height, left:left + width]
    torch.cumsum(grey.to(dtype), 1, dtype=dtype, out=inner).cumsum_(2, dtype=dtype)
    extended[:, :top].zero_()
    extended[:, top:top + height, :left].zero_()
    extended[:, top:top + height, left + width:] = inner[:, :, -1:]
    extended[:, top + height:] = extended[:, top + height - 1:top + height]
    return extended, pad_y, pad_x


def _normalise_to_bytes(summed: Tensor, scratch: Tensor, out: Tensor) -> Tensor:
    """OpenCV's mixScales step: (uchar)(255·(float)(s / (float)max s)) per image, written into `out`; all zero
    when max s = 0. `summed` and `scratch` are overwritten."""
    top = summed.amax((1, 2), keepdim=True)
    return _floor_255_times(summed.div_(top.clamp_min(1)), scratch, out)


def spectral_residual(images: Tensor, size: int = 64) -> Tensor:
    """Spectral-residual saliency of each image at size × size: [B, size, size] float32, each map in [0, 1].

    Grey image resized to size × size, residual = log-amplitude − its 3 × 3 mean, back-transform with the
    original phase, squared magnitude, Gaussian smoothing, min-max normalised.

    Args:
        images: [B, C, H, W] (C = 3: luma; otherwise the channel mean).
    """
    x = images.float()
    if x.shape[1] == 3:
        grey = (x * torch.tensor(_LUMA, device=x.device)[None, :, None, None]).sum(1, keepdim=True)
    else:
        grey = x.mean(1, keepdim=True)
    grey = TF.resize(grey, [size, size], antialias=True)[:, 0]
    spectrum = torch.fft.fft2(grey)
    log_amplitude = torch.log(spectrum.abs() + 1e-8)
    mean_filtered = F.avg_pool2d(F.pad(log_amplitude[:, None], (1, 1, 1, 1), mode="reflect"), 3, 1)[:, 0]
    residual = torch.polar((log_amplitude - mean_filtered).exp(), spectrum.angle())
    saliency = torch.fft.ifft2(residual).abs() ** 2
    saliency = TF.gaussian_blur(saliency[:, None], kernel_size=[5, 5], sigma=[8.0, 8.0])[:, 0]
    low = saliency.amin((1, 2), keepdim=True)
    high = saliency.amax((1, 2), keepdim=True)
    return (saliency - low) / (high - low).clamp_min(1e-12)


def saliency_map(images: Tensor, detector: str = "fine_grained", *, size: int = 64) -> Tensor:
    """The map of `detector` (one of :data:`DETECTORS`): [B, H, W] for fine_grained, [B, size, size] else."""
    check_choice("saliency", detector, DETECTORS)
    if detector == "fine_grained":
        return fine_grained(images)
    return spectral_residual(images, size)


def peak_fractions(saliency: Tensor) -> tuple[Tensor, Tensor]:
    """The first maximum (row-major, as ``np.argmax``) of each map [B, h, w] as fractions (x, y): two [B].

    Pixel (col, row) maps to (col / w, row / h): SaliencyMix's official code centres its box on the pixel
    index itself (rows x − c … x + c − 1), i.e. on the pixel's top-left corner, and CutMix's renderer places
    a box centred at ``fraction · size`` the same way.
    """
    height, width = saliency.shape[-2:]
    flat = saliency.flatten(1).argmax(1)
    rows = torch.div(flat, width, rounding_mode="floor")
    return (flat - rows * width).float() / width, rows.float() / height
