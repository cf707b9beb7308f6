"""Fourier-domain helpers for FMix- and LMix-style masks and the optional LMix image sharpening.

The frequency grid and the 1/f^δ decay follow FMix (Harris et al., arXiv:2002.12047): a complex Gaussian
spectrum scaled by ``1 / max(f, 1/max(H, W))^δ`` and taken back to the image domain with an inverse real FFT.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def frequency_radius(height: int, width: int, device: torch.device) -> Tensor:
    """[H, W//2 + 1] radial frequency of every bin of a real 2-D FFT (cycles per pixel)."""
    fy = torch.fft.fftfreq(height, device=device)[:, None]
    fx = torch.fft.rfftfreq(width, device=device)[None, :]
    return torch.sqrt(fx * fx + fy * fy)


def spectrum_shape(height: int, width: int) -> tuple[int, int]:
    return height, width // 2 + 1


def decay_scale(decay: Tensor, height: int, width: int) -> Tensor:
    """[B, H, W//2 + 1] amplitude 1 / max(f, f_min)^δ with f_min = 1 / max(H, W), δ per sample."""
    freqs = frequency_radius(height, width, decay.device).clamp_min(1.0 / max(height, width))
    return _per_sample_pow(freqs, -decay)


def low_pass(decay: Tensor, height: int, width: int) -> Tensor:
    """[B, H, W//2 + 1] the normalised low-pass L_δ = (f_min / max(f, f_min))^δ, so L_δ(0) = 1."""
    freqs = frequency_radius(height, width, decay.device)
    f_min = 1.0 / max(height, width)
    return _per_sample_pow(f_min / freqs.clamp_min(f_min), decay)


def _per_sample_pow(base: Tensor, exponent: Tensor) -> Tensor:
    """[B, H, W'] base ** exponent[b]. On a CPU a batch with one exponent (the usual δ) raises the plane once
    and shares it across the batch — the same kernel on a [1] exponent, so the same bits; on a GPU the
    batched pow is cheap and the check would cost a host sync."""
    if exponent.device.type == "cpu" and exponent.numel() > 1 and bool((exponent == exponent[0]).all()):
        return base[None].pow(exponent[:1, None, None]).expand(exponent.shape[0], -1, -1)
    return base[None].pow(exponent[:, None, None])


def low_frequency_image(noise: Tensor, decay: Tensor, height: int, width: int,
                        boost: Tensor | None = None) -> Tensor:
    """[B, H, W] grey image: inverse real FFT of the noise spectrum scaled by 1/f^δ.

    Args:
        noise: [B, 2, H, W//2 + 1] standard-normal real and imaginary parts.
        decay: [B] δ per sample.
        boost: optional [B] k: the scaled spectrum is further multiplied by the high-boost gain
            1 + k·(1 − L_δ) (LMix eq. 5). Where k = 0 the gain is exactly 1, so the image is FMix's, bit for bit.
    """
    if noise.shape[0] == 0:  # the FFT back ends reject empty batches
        return noise.new_zeros(0, height, width)
    scale = decay_scale(decay, height, width)
    if boost is not None:
        scale = scale * (1.0 + boost[:, None, None] * (1.0 - low_pass(decay, height, width)))
    spectrum = torch.complex(noise[:, 0] * scale, noise[:, 1] * scale)
    return torch.fft.irfft2(spectrum, s=(height, width))


def high_pass(cutoff: Tensor, height: int, width: int) -> Tensor:
    """[B, H, W//2 + 1] Gaussian high-pass 1 − exp(−f²/2f_c²): 0 at DC, rising monotonically with the radial
    frequency f toward 1; f_c (cycles per pixel) per sample."""
    freqs = frequency_radius(height, width, cutoff.device)[None]
    return 1.0 - torch.exp(-(freqs**2) / (2 * cutoff[:, None, None] ** 2))


def sharpen(images: Tensor, gain: Tensor, cutoff: Tensor) -> Tensor:
    """High-boost sharpening F⁻¹[(1 + g·HP_fc)·F(x)] per sample, clamped to each image's own value range.

    The gain is 1 at DC (the mean is kept before clamping), rises with frequency and is bounded by 1 + g.
    Computed in float32, returned in the images' dtype.

    Args:
        images: [B, C, H, W]. gain: [B] g ≥ 0. cutoff: [B] f_c in cycles per pixel.
    """
    if images.shape[0] == 0:
        return images
    height, width = images.shape[-2:]
    x = images.float()
    response = 1.0 + gain[:, None, None] * high_pass(cutoff, height, width)
    sharpened = torch.fft.irfft2(torch.fft.rfft2(x) * response[:, None], s=(height, width))
    low = x.amin((1, 2, 3), keepdim=True)
    high = x.amax((1, 2, 3), keepdim=True)
    return torch.minimum(torch.maximum(sharpened, low), high).to(images.dtype)


def keep_top(values: Tensor, count: Tensor, soft: Tensor | None = None) -> Tensor:
    """Binarise each row: 1 on its `count` largest values, 0 elsewhere.

    Args:
        values: [B, N] scores.
        count: [B] number of ones per row (integer-valued float or int).
        soft: optional [B] half-width of a linear ramp between 1 and 0 around rank `count`, in pixels;
            the ramp is symmetric, so the row still sums to exactly `count`.

    Returns [B, N] float32: the ones are the first `count` entries of the row's descending argsort (which
    orders equal values as the sort happens to).

    Without a ramp, a CPU thresholds each row at its `count`-th largest value, found by a histogram of the
    values' leading bits (:func:`_count_largest_threshold`) instead of sorting the whole row — about a seventh
    of the time for FMix at 224 × 224 — and sorts only the rows where a tie straddles the threshold, so the result is the
    sort's, bit for bit. Elsewhere (a GPU sorts a row faster than it would wait for the host) every row is
    sorted.
    """
    if soft is None and values.device.type == "cpu" and values.dtype == torch.float32 and values.numel():
        return _keep_top_by_threshold(values, count)
    return _keep_top_by_sort(values, count, soft)


def _keep_top_by_sort(values: Tensor, count: Tensor, soft: Tensor | None = None) -> Tensor:
    order = values.argsort(dim=1, descending=True)
    rank = torch.arange(values.shape[1], device=values.device, dtype=torch.float32)[None]
    count = count.float()[:, None]
    ranked = (rank < count).float()
    if soft is not None:
        soft = soft.float()[:, None]
        ramp = ((count + soft - rank - 0.5) / (2 * soft).clamp_min(1.0)).clamp(0.0, 1.0)
        ranked = torch.where(soft > 0, ramp, ranked)
    return torch.empty_like(ranked).scatter_(1, order, ranked)


def _keep_top_by_threshold(values: Tensor, count: Tensor) -> Tensor:
    """:func:`keep_top` without a ramp, on a CPU: one comparison per row against its count-th largest value."""
    threshold, greater, equal = _count_largest_threshold(values, count)
    count = count.ceil().to(greater.dtype)  # rank < count: a fractional count keeps ⌈count⌉ values
    missing = count - greater  # how many of the values equal to the threshold belong to the top `count`
    take_equal = (missing == equal) & (equal > 0)
    # "> t" is "≥ the next float above t"; a row needing only some of its values equal to t is left to the sort,
    # as is t = 0 (−0.0 and +0.0 compare equal but are counted apart).
    bound = torch.where(take_equal, threshold, torch.nextafter(threshold, torch.full_like(threshold, math.inf)))
    out = torch.ge(values, bound[:, None], out=torch.empty_like(values))
    ambiguous = ~(take_equal | (missing == 0)) | (threshold == 0)
    rows = ambiguous.nonzero()[:, 0]
    if rows.numel():
        out[rows] = _keep_top_by_sort(values[rows], count[rows])
    return out


_BUCKET_BITS = 12  # leading bits of a float32 histogrammed per row: sign, exponent, 3 of the mantissa


def _float_keys(bits: Tensor) -> Tensor:
    """int64 keys in [0, 2³²) ordered as the float32 values whose bit patterns (int32) are `bits`; −0.0 sorts
    just below +0.0. A negative float's pattern grows with its magnitude, so its key counts down."""
    bits = bits.long()
    return torch.where(bits < 0, -1 - bits, bits + (1 << 31))


def _float_from_keys(keys: Tensor) -> Tensor:
    """The float32 values of :func:`_float_keys`' keys."""
    bits = torch.where(keys >= 1 << 31, keys - (1 << 31), -1 - keys)
    return bits.int().view(torch.float32)


def _count_largest_threshold(values: Tensor, count: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per row of [B, N] float32 values: the count-th largest value t (the largest when count is 0), how many
    values exceed t and how many equal it — three [B] tensors.

    A histogram of each value's leading 12 bits (their order is the float order, reversed for negatives)
    finds the bucket holding the count-th largest value; only that bucket's values (~2 % of a FMix row) are
    sorted, as exact keys.
    """
    batch, n = values.shape
    buckets = 1 << _BUCKET_BITS
    device = values.device
    offsets = torch.arange(batch, device=device, dtype=torch.int32)[:, None] * buckets + buckets // 2
    bucket_ids = (values.view(torch.int32) >> (32 - _BUCKET_BITS)).add_(offsets)  # row r: [r·4096, (r + 1)·4096)
    counts = torch.bincount(bucket_ids.view(-1), minlength=batch * buckets).view(batch, buckets)
    # Bucket b = bits >> 20 + 2048: 2048… are the positive floats, ascending; 0…2047 the negative, descending.
    from_top = torch.cat([torch.arange(buckets - 1, buckets // 2 - 1, -1, device=device),
                          torch.arange(buckets // 2, device=device)])
    counts = counts[:, from_top]
    wanted = count.ceil().long().clamp(1, n)[:, None]
    reached = counts.cumsum(1)
    position = (reached < wanted).sum(1, keepdim=True)
    above = torch.where(position > 0, reached.gather(1, (position - 1).clamp_min(0)), 0)
    inside = counts.gather(1, position)
    chosen = offsets - buckets // 2 + from_top[position].int()
    rows, cols = (bucket_ids == chosen).nonzero(as_tuple=True)  # in row order
    # The bucket's values as exact keys, row by row in ascending order.
    ranked = ((rows << 32) | _float_keys(values[rows, cols].view(torch.int32))).sort().values
    first = inside.cumsum(0) - inside
    key = ranked[first + inside - (wanted - above)] & 0xFFFFFFFF
    probe = (torch.arange(batch, device=device)[:, None] << 32) | key
    lower = torch.searchsorted(ranked, probe[:, 0], right=False)[:, None]
    upper = torch.searchsorted(ranked, probe[:, 0], right=True)[:, None]
    greater = above + (first + inside - upper)
    return _float_from_keys(key)[:, 0], greater[:, 0], (upper - lower)[:, 0]
