"""MiAMix: several masks of different methods, augmented and merged, per sample.

Liang, Liang, Jia. "MiAMix: Enhancing Image Classification through a Multi-stage Augmented Mixed
Sample Data Augmentation Method", Processes 2023. arXiv:2308.02804 (miamix.md §3.2, Algorithm 1, Table 2).

Per sample (all of it batched — the loops below run over mask layers and candidate methods, never over
samples; on the CPU each candidate renders only the samples that drew it, on accelerators every candidate
renders the whole batch and the choice is a ``where``, which keeps the device free of host syncs):

1. pairing: with probability p_self the partner is another view of the sample itself (``images_b``, or a
   random flip/crop made on the device), otherwise a random other sample;
2. k ~ U{1, …, k_max} layers; (λ_1, …, λ_k, λ_{k+1}) ~ Dir(α, …, α, k·α); layer i's method is drawn from
   the candidates with the given weights, and its mask covers partner area λ_i (own weight 1 − λ_i; CutMix
   boxes are placed fully inside the image so that no clipping shrinks them);
3. CutMix, FMix and GridMix masks are augmented: rotation (±max_rotation) and shear with probability p_aug,
   smoothing (Gaussian or average filter, window from {5, 7, 11, 13} at 64 px, scaled to the image) with
   probability p_smooth;
4. the layers are merged by product (or, with merge="sum", the partner coverages are summed and clipped),
   and the label weight is the merged mask's mean (lam_mode="merged") or λ_{k+1} (lam_mode="orig").

When the caller pins λ it is taken as the own share λ_{k+1}, and λ_1..λ_k split the rest by Dir(α, …, α)
(the Dirichlet's own conditional law). The sampled stages come back in ``MixOutput.details``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import describe
from .._random import bernoulli, dirichlet, integers, uniform
from .._rows import replace_rows, take
from .._warp import affine, random_view, rotation_shear
from ..registry import (Method, MethodInfo, Mixed, Param, ParamReader, blend, get_method, method_names,
                        register)

CANDIDATES = ("mixup", "cutmix", "fmix", "gridmix", "agmix")
AUGMENTABLE = ("cutmix", "fmix", "gridmix")
# Layer i must cover partner area λ_i: CutMix boxes are kept inside the image rather than clipped.
LAYER_PARAMS = {"cutmix": {"fit_inside": True}}

INFO = MethodInfo(
    name="miamix",
    title="MiAMix",
    summary="Stacks 1–k masks of randomly chosen methods, augments and merges them, and sometimes mixes an "
            "image with another view of itself.",
    formula=r"(\lambda_1..\lambda_k,\lambda_{k+1}) \sim \mathrm{Dir}(\alpha,..,\alpha,k\alpha),\ "
            r"M = \textstyle\prod_i \operatorname{aug}(m_i(1-\lambda_i)),\ \lambda = \tfrac{1}{HW}\sum M",
    paper='Liang, Liang, Jia, "MiAMix: Enhancing Image Classification through a Multi-stage Augmented Mixed Sample '
          'Data Augmentation Method", Processes 2023',
    arxiv="2308.02804",
    default_alpha=2.0,
    image_free_mask=False,
    mask_only=False,  # self-mixing samples blend with another view of themselves, not a batch member
    params=(
        Param("k_max", "maximum number of mask layers", default=2, kind="int", low=1, high=8, per_sample=False),
        Param("p_self", "probability of mixing with another view of the sample itself", default=0.1, low=0.0,
              high=1.0, per_sample=False),
        Param("methods", "candidate mask methods", default=CANDIDATES, kind="names"),
        Param("weights", "sampling weights of the candidates", default=(2.0, 1.0, 1.0, 1.0, 1.0), kind="numbers",
              low=0.0),
        Param("p_aug", "probability of rotating and shearing a CutMix/FMix/GridMix mask", default=0.25, low=0.0,
              high=1.0, per_sample=False),
        Param("p_smooth", "probability of smoothing a CutMix/FMix/GridMix mask", default=0.5, low=0.0, high=1.0,
              per_sample=False),
        Param("max_rotation", "largest mask rotation, degrees", default=45.0, low=0.0, high=180.0,
              per_sample=False),
        Param("max_shear", "largest mask shear angle, degrees", default=20.0, low=0.0, high=60.0,
              per_sample=False),
        Param("smoothing", "smoothing filter", default="gaussian", kind="choice", choices=("gaussian", "average")),
        Param("windows", "smoothing windows at 64 px (scaled with the image's shorter side)",
              default=(5.0, 7.0, 11.0, 13.0), kind="numbers", low=1.0),
        Param("merge", "how layers combine: product of masks, or clipped sum of partner coverages",
              default="product", kind="choice", choices=("product", "sum")),
        Param("lam_mode", "label weight: mean of the merged mask, or the sampled own share λ_{k+1}",
              default="merged", kind="choice", choices=("merged", "orig")),
        Param("k", "number of mask layers per sample", kind="int", low=1, high=8, sampled="U{1, …, k_max}"),
        Param("self_mix", "[B] bool: which samples mix with another view of themselves", kind="tensor",
              sampled="Bernoulli(p_self)"),
        Param("layer_methods", "[B, k_max] int: index into `methods` of each layer's method", kind="tensor",
              sampled="categorical(weights)"),
        Param("layer_lams", "[B, k_max + 1]: partner areas λ_1..λ_k_max, then the own share", kind="tensor",
              sampled="Dir(α, …, α, k·α)"),
    ),
    notes="Mask-augmentation shear is not specified by the paper; ±20° is this project's default.",
)


def _check_candidates(names: tuple, weights: tuple) -> None:
    allowed = [n for n in method_names() if n != "miamix" and get_method(n).info.image_free_mask]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"miamix: methods {unknown} are not image-free mask methods; choose from {allowed}")
    if len(weights) != len(names):
        raise ValueError(f"miamix: weights has {len(weights)} entries but methods has {len(names)}: {names}")
    if sum(weights) <= 0:
        raise ValueError(f"miamix: weights must not all be zero, got {weights}")


def _pinned(read: ParamReader, name: str, shape: tuple, dtype) -> Tensor | None:
    value = read.value(name)
    if value is None:
        return None
    if tuple(value.shape) != shape:
        raise ValueError(f"miamix: {name} must have shape {list(shape)}, got {describe(value)}")
    return value.to(device=read.device, dtype=dtype)


def smoothing_kernels(windows: Tensor, kind: str, size: int) -> Tensor:
    """[B, size] centred 1-D kernels of the given odd window widths (zero outside the window), each summing to 1.

    Gaussian σ follows OpenCV's rule for a window w: σ = 0.3·((w − 1)/2 − 1) + 0.8.
    """
    offsets = torch.arange(size, device=windows.device, dtype=torch.float32) - size // 2
    half = (windows[:, None] - 1) / 2
    inside = offsets.abs()[None] <= half
    if kind == "gaussian":
        sigma = (0.3 * (half - 1) + 0.8).clamp_min(0.3)
        weights = torch.exp(-offsets[None] ** 2 / (2 * sigma**2))
    else:
        weights = torch.ones_like(half).expand(-1, size)
    weights = torch.where(inside, weights, torch.zeros_like(weights))
    return weights / weights.sum(1, keepdim=True)


def smooth(masks: Tensor, kernels: Tensor) -> Tensor:
    """Filter each [1, H, W] mask of a [B, 1, H, W] batch with its own separable kernel [B, K].

    One grouped convolution per axis (the batch as channels), replicate padding so the border keeps its value.
    """
    batch, _, height, width = masks.shape
    size = kernels.shape[1]
    pad = size // 2
    x = F.pad(masks.reshape(1, batch, height, width), (pad, pad, pad, pad), mode="replicate")
    x = F.conv2d(x, kernels[:, None, None, :], groups=batch)
    x = F.conv2d(x, kernels[:, None, :, None], groups=batch)
    return x.reshape(batch, 1, height, width)


class MiAMix(Method):
    def mix(self, batch, partner, lam, *, alpha, generator, params):
        size, device = batch.size, batch.device
        height, width = batch.images.shape[-2:]
        read = ParamReader(self.info, params, batch=size, device=device, generator=generator, checked=True)
        names, weights = read.value("methods"), read.value("weights")
        _check_candidates(names, weights)
        k_max = int(read.value("k_max"))

        # Stage 1: pairing (self-mixing samples take another view of themselves).
        p_self = float(read.value("p_self"))
        self_mix = _pinned(read, "self_mix", (size,), torch.bool)
        if self_mix is None:
            self_mix = bernoulli(p_self, size, generator=generator, device=device)
        partner_images = batch.images[partner]
        if p_self > 0 or read.value("self_mix") is not None:
            if batch.images_b is not None:
                partner_images = torch.where(self_mix[:, None, None, None], batch.images_b, partner_images)
            else:
                partner_images = replace_rows(
                    self_mix, lambda rows: random_view(take(batch.images, rows), generator=generator),
                    partner_images)
            partner = torch.where(self_mix, torch.arange(size, device=device), partner)

        # Stage 2: number of layers, their ratios and their methods.
        k = read.tensor("k", lambda n: integers(1, k_max, n, generator=generator, device=device)).long()
        if read.value("k") is not None and bool((k > k_max).any()):
            raise ValueError(f"miamix: k must be at most k_max={k_max}, got {describe(k)}")
        active = torch.arange(k_max, device=device)[None] < k[:, None]  # [B, k_max]
        lams = _pinned(read, "layer_lams", (size, k_max + 1), torch.float32)
        if lams is None:
            layer_conc = torch.where(active, alpha, 0.0)
            if lam is None:
                lams = dirichlet(torch.cat([layer_conc, k[:, None] * alpha], 1), generator=generator)
            else:
                shares = dirichlet(layer_conc, generator=generator) * (1.0 - lam[:, None])
                lams = torch.cat([shares, lam[:, None]], 1)
        lams = torch.cat([torch.where(active, lams[:, :k_max], 0.0), lams[:, k_max:]], 1)
        layer_methods = _pinned(read, "layer_methods", (size, k_max), torch.long)
        if layer_methods is None:
            cumulative = torch.tensor(weights, device=device).cumsum(0)
            draws = torch.rand(size, k_max, generator=generator, device=device) * cumulative[-1]
            layer_methods = torch.searchsorted(cumulative, draws, right=True).clamp(max=len(names) - 1)

        # Stage 3: render each layer (every candidate for the whole batch, then pick per sample) and augment.
        augmentable = torch.tensor([n in AUGMENTABLE for n in names], device=device)[layer_methods] & active
        rotate = bernoulli(float(read.value("p_aug")), size * k_max, generator=generator,
                           device=device).view(size, k_max) & augmentable
        smoothed = bernoulli(float(read.value("p_smooth")), size * k_max, generator=generator,
                             device=device).view(size, k_max) & augmentable
        raw_layers, layers, draws = [], [], []
        for j in range(k_max):
            own = 1.0 - lams[:, j]
            layer = torch.ones(size, 1, height, width, device=device)
            for index, name in enumerate(names):
                if weights[index] == 0:
                    continue
                method = get_method(name)
                layer = replace_rows(
                    (layer_methods[:, j] == index) & active[:, j],
                    lambda rows: method.render_mask(take(own, rows), height, width, generator=generator,
                                                    params=LAYER_PARAMS.get(name, {})),
                    layer)
            raw_layers.append(layer)
            augmented, drawn = self._augment(layer, rotate[:, j], smoothed[:, j], read)
            layers.append(augmented)
            draws.append(drawn)

        # Stage 4: merge, and the label weight.
        stacked = torch.cat(layers, 1)  # [B, k_max, H, W]; inactive layers are all ones
        if read.value("merge") == "sum":
            merged = 1.0 - (1.0 - stacked).sum(1, keepdim=True).clamp(0.0, 1.0)
        else:
            merged = stacked.prod(1, keepdim=True)
        own_share = lams[:, k_max]
        details = {
            "methods": names, "k": k, "self_mix": self_mix, "layer_methods": layer_methods, "layer_lams": lams,
            "active": active, "rotated": rotate, "smoothed": smoothed,
            **{name: torch.stack([d[name] for d in draws], 1) for name in ("rotation_deg", "shear_deg", "window")},
            "raw_masks": torch.cat(raw_layers, 1), "masks": stacked, "merged": merged,
        }
        return Mixed(images=blend(batch.images, partner_images, merged), mask=merged, partner=partner,
                     lam=own_share if read.value("lam_mode") == "orig" else None, lam_requested=own_share,
                     details=details)

    @staticmethod
    def _augment(layer: Tensor, rotate: Tensor, smoothed: Tensor, read: ParamReader) -> tuple[Tensor, dict]:
        """The layer after rotation/shear (where `rotate`) and smoothing (where `smoothed`), and the drawn
        rotation, shear (degrees) and window (pixels) of every sample, applied or not."""
        size, _, height, width = layer.shape
        generator, device = read.generator, read.device
        # Rotation and shear act on the partner's coverage, so what leaves the frame becomes "own image".
        max_rotation = math.radians(float(read.value("max_rotation")))
        max_shear = math.radians(float(read.value("max_shear")))
        angle = uniform(-max_rotation, max_rotation, size, generator=generator, device=device)
        shear = uniform(-max_shear, max_shear, size, generator=generator, device=device)
        theta = rotation_shear(angle, shear, height, width)
        layer = replace_rows(rotate, lambda rows: 1.0 - affine(1.0 - take(layer, rows), take(theta, rows)), layer)

        scale = min(height, width) / 64
        choices = torch.tensor(read.value("windows"), device=device)
        pick = torch.randint(len(choices), (size,), generator=generator, device=device)
        windows = (choices[pick] * scale).round().clamp_min(1)
        windows = windows + (1 - windows % 2)  # odd widths keep the filter centred
        kernel_size = int(max(read.value("windows")) * scale + 0.5)
        kernel_size += 1 - kernel_size % 2
        kernel_size = max(kernel_size, 1)
        windows = windows.clamp(max=kernel_size)
        kernels = smoothing_kernels(windows, read.value("smoothing"), kernel_size)
        layer = replace_rows(smoothed, lambda rows: smooth(take(layer, rows), take(kernels, rows)), layer)
        return layer, {"rotation_deg": angle.rad2deg(), "shear_deg": shear.rad2deg(), "window": windows}


register(MiAMix(INFO))
