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
   smoothing with probability p_smooth, the window drawn uniformly from the paper's set (§4.7):
   {5, 7, 11, 13} for 64 × 64 images and {9, 15, 25, 35, 45} for 224 × 224. Between and beyond those sizes
   the set of the nearer named size (in log scale: below √(64·224) ≈ 120 px the 64-px set) is scaled by
   side / named size and rounded to odd widths; so at 32 px {3, 5, 7}, at 96 px {9, 11, 17, 21}, at 160 px
   {7, 11, 19, 25, 33};
4. the layers are merged by product (or, with merge="sum", the partner coverages are summed and clipped),
   and the label weight is the merged mask's mean (lam_mode="merged") or λ_{k+1} (lam_mode="orig").

The partner of a self-mixing sample is "two distinct random data augmentations" of it (§3.1): pass the
second, independently augmented view as ``images_b`` (``msda.train`` does); without it, a random flip and crop
of the sample is made on the device.

Where the paper is ambiguous, this project's choices: α defaults to 2 (Table 2 and §4.5.6, "MiAMix performs
optimally with α = 2 as the default"), although §4.1 says α = 1 "was set … throughout the experiments";
smoothing is Gaussian by default (§4.7 "Gaussian blurring"; §3.2.3 describes an average filter:
``smoothing="average"``); the shear range (±20°) is not given by the paper.

When the caller pins λ it is taken as the own share λ_{k+1}, and λ_1..λ_k split the rest by Dir(α, …, α)
(the Dirichlet's own conditional law). Every draw — layers, their methods and ratios, each layer's own mask
draws, the augmentations, the self-mix views — comes back in ``MixOutput.params`` and replays the mix.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import describe
from .._random import bernoulli, dirichlet, integers, uniform
from .._rows import replace_rows, take
from .._warp import affine, random_view_params, rotation_shear, view
from ..distributions import Drawn
from ..registry import (Method, MethodInfo, Mixed, Param, ParamReader, blend_into, get_method, method_names,
                        register)

CANDIDATES = ("mixup", "cutmix", "fmix", "gridmix", "agmix")
AUGMENTABLE = ("cutmix", "fmix", "gridmix")
# Layer i must cover partner area λ_i: CutMix boxes are kept inside the image rather than clipped.
LAYER_PARAMS = {"cutmix": {"fit_inside": True}}
# §4.7: smoothing windows for the image sizes the paper names.
PAPER_WINDOWS = {64: (5, 7, 11, 13), 224: (9, 15, 25, 35, 45)}
MAX_WINDOW = 255  # the paper's widest window is 45 px at 224 px: 255 px serves images to ~1 270 px at that ratio

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
        Param("windows", "smoothing window widths in pixels at the working size; default: the paper's set for "
              "the image's size (module docstring)", kind="numbers", low=1.0, high=float(MAX_WINDOW),
              sampled=Drawn("the paper's set for the image size (§4.7)")),
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
        Param("rotated", "[B, k_max] bool: which layers are rotated and sheared", kind="tensor",
              sampled="Bernoulli(p_aug) for CutMix/FMix/GridMix layers"),
        Param("smoothed", "[B, k_max] bool: which layers are smoothed", kind="tensor",
              sampled="Bernoulli(p_smooth) for CutMix/FMix/GridMix layers"),
        Param("rotation_deg", "[B, k_max] rotation of each layer, degrees", kind="tensor",
              sampled="U(−max_rotation, max_rotation)"),
        Param("shear_deg", "[B, k_max] shear of each layer, degrees", kind="tensor",
              sampled="U(−max_shear, max_shear)"),
        Param("window", "[B, k_max] smoothing window of each layer, pixels", kind="tensor",
              sampled="uniform over windows"),
        Param("view", "[B, 4] the self-mix view made when no images_b is given: scale, flip, shift x, shift y",
              kind="tensor", sampled="random flip and crop of area ≥ 0.6"),
        Param("layers", "per layer, per candidate method: the samples that drew it (rows) and its own draws",
              kind="other", validator=lambda label, value: _check_layers(label, value),
              sampled="each candidate's own law"),
    ),
    notes="α = 2 follows Table 2 (§4.1 says α = 1); the smoothing windows are the paper's sets for 64 and 224 px; "
          "mask-augmentation shear is not specified by the paper: ±20° is this project's default.",
)


def _check_layers(label: str, value):
    if not isinstance(value, (list, tuple)) or not all(isinstance(layer, dict) for layer in value):
        raise ValueError(f"{label} must be the list of per-layer dicts a MiAMix call returned, got {describe(value)}")
    return list(value)


def paper_windows(side: int) -> tuple[float, ...]:
    """The smoothing windows for an image whose shorter side is `side` pixels (module docstring, stage 3)."""
    named = 64 if side < math.sqrt(64 * 224) else 224
    widths = []
    for window in PAPER_WINDOWS[named]:
        width = max(1, math.floor(window * side / named + 0.5))
        width += 1 - width % 2  # odd widths keep the filter centred
        if width not in widths:
            widths.append(width)
    return tuple(float(w) for w in widths)


def _check_candidates(names: tuple, weights: tuple) -> None:
    allowed = [n for n in method_names() if n != "miamix" and get_method(n).info.image_free_mask]
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"miamix: methods {unknown} are not image-free mask methods; choose from {allowed}")
    if len(weights) != len(names):
        raise ValueError(f"miamix: weights has {len(weights)} entries but methods has {len(names)}: {names}")
    if sum(weights) <= 0:
        raise ValueError(f"miamix: weights must not all be zero, got {weights}")


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


def _write_rows(select: Tensor, compute, target: Tensor) -> None:
    """:func:`replace_rows` into `target`, a view of a buffer this call owns: the rows marked by `select` become
    ``compute(rows)``."""
    updated = replace_rows(select, compute, target, inplace=True)
    if updated is not target:
        target.copy_(updated)


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
        self_mix = read.tensor("self_mix", lambda n: bernoulli(p_self, n, generator=generator, device=device),
                               dtype=torch.bool)
        partner_images = batch.images[partner]
        if p_self > 0 or read.pinned("self_mix"):
            if batch.images_b is not None:
                partner_images = torch.where(self_mix[:, None, None, None], batch.images_b, partner_images)
            else:
                views = self._pinned(read, "view", (size, 4), torch.float32)
                if views is None:
                    views = read.record("view", random_view_params(size, generator=generator, device=device))
                partner_images = replace_rows(  # partner_images is a fresh gather: written in place
                    self_mix, lambda rows: view(take(batch.images, rows), take(views, rows)), partner_images,
                    inplace=True)
            partner = torch.where(self_mix, torch.arange(size, device=device), partner)

        # Stage 2: number of layers, their ratios and their methods.
        k = read.tensor("k", lambda n: integers(1, k_max, n, generator=generator, device=device),
                        dtype=torch.int64)
        if read.pinned("k") and bool((k > k_max).any()):
            raise ValueError(f"miamix: k must be at most k_max={k_max}, got {describe(k)}")
        active = torch.arange(k_max, device=device)[None] < k[:, None]  # [B, k_max]
        lams = self._pinned(read, "layer_lams", (size, k_max + 1), torch.float32)
        if lams is None:
            layer_conc = torch.where(active, alpha, 0.0)
            if lam is None:
                lams = dirichlet(torch.cat([layer_conc, k[:, None] * alpha], 1), generator=generator)
            else:
                shares = dirichlet(layer_conc, generator=generator) * (1.0 - lam[:, None])
                lams = torch.cat([shares, lam[:, None]], 1)
            read.record("layer_lams", lams)
        lams = torch.cat([torch.where(active, lams[:, :k_max], 0.0), lams[:, k_max:]], 1)
        layer_methods = self._pinned(read, "layer_methods", (size, k_max), torch.long)
        if layer_methods is None:
            cumulative = torch.tensor(weights, device=device).cumsum(0)
            draws = torch.rand(size, k_max, generator=generator, device=device) * cumulative[-1]
            layer_methods = read.record(
                "layer_methods", torch.searchsorted(cumulative, draws, right=True).clamp(max=len(names) - 1))

        # Stage 3: render each layer (each candidate for the samples that drew it) and augment.
        augmentable = torch.tensor([n in AUGMENTABLE for n in names], device=device)[layer_methods] & active
        rotate, smoothed, angle, shear, windows, kernel_size = self._augmentations(read, augmentable, height, width)
        pinned_layers = read.value("layers") if read.pinned("layers") else None
        # Each layer is written, row by row, into its slot of one [B, k_max, H, W] buffer (inactive layers stay all
        # ones), then copied to a second buffer where it is augmented in place: two image-sized buffers in all.
        raw = torch.ones(size, k_max, height, width, device=device)
        stacked = torch.empty_like(raw)
        records = []
        for j in range(k_max):
            own = 1.0 - lams[:, j]
            layer = raw[:, j:j + 1]
            record = {}
            for index, name in enumerate(names):
                if weights[index] == 0:
                    continue
                pinned = {} if pinned_layers is None else pinned_layers[j].get(name, {})
                _write_rows(
                    (layer_methods[:, j] == index) & active[:, j],
                    lambda rows, name=name, pinned=pinned, record=record: self._render_layer(
                        name, take(own, rows), rows, pinned, record, height, width, generator),
                    layer)
            records.append(record)
            layer = stacked[:, j:j + 1]
            layer.copy_(raw[:, j:j + 1])
            theta = rotation_shear(angle[:, j].deg2rad(), shear[:, j].deg2rad(), height, width)
            # Rotation and shear act on the partner's coverage, so what leaves the frame becomes "own image".
            _write_rows(rotate[:, j], lambda rows: 1.0 - affine(1.0 - take(layer, rows), take(theta, rows)), layer)
            kernels = smoothing_kernels(windows[:, j], read.value("smoothing"), kernel_size)
            _write_rows(smoothed[:, j], lambda rows: smooth(take(layer, rows), take(kernels, rows)), layer)
        stacked.clamp_(0.0, 1.0)  # a filter's rounding must not leave [0, 1]
        read.record("layers", records)

        # Stage 4: merge, and the label weight.
        if read.value("merge") == "sum":
            merged = 1.0 - (1.0 - stacked).sum(1, keepdim=True).clamp(0.0, 1.0)
        else:
            merged = stacked.prod(1, keepdim=True)
        own_share = lams[:, k_max]
        details = {
            "methods": names, "k": k, "self_mix": self_mix, "layer_methods": layer_methods, "layer_lams": lams,
            "active": active, "rotated": rotate, "smoothed": smoothed, "rotation_deg": angle, "shear_deg": shear,
            "window": windows, "raw_masks": raw, "masks": stacked, "merged": merged,
        }
        # partner_images is this call's own tensor (a gather, or a where over one): blended into in place.
        return Mixed(images=blend_into(partner_images, batch.images, merged), mask=merged, partner=partner,
                     lam=own_share if read.value("lam_mode") == "orig" else None, lam_requested=own_share,
                     details=details, params=read.used)

    @staticmethod
    def _pinned(read: ParamReader, name: str, shape: tuple, dtype) -> Tensor | None:
        """A pinned tensor of the given shape (recorded), or None."""
        if not read.pinned(name):
            return None
        value = read.value(name)
        if tuple(value.shape) != shape:
            raise ValueError(f"miamix: {name} must have shape {list(shape)}, got {describe(value)}")
        return read.record(name, value.to(device=read.device, dtype=dtype))

    @staticmethod
    def _render_layer(name, own, rows, pinned, record, height, width, generator) -> Tensor:
        """One candidate's masks for the samples that drew it; notes their rows and draws in `record`."""
        mask, read = get_method(name).render(own, height, width, generator=generator,
                                             params={**LAYER_PARAMS.get(name, {}), **pinned})
        rows = rows if rows is not None else torch.arange(own.shape[0], device=own.device)
        record[name] = {"rows": rows, **read.used}
        return mask

    def _augmentations(self, read: ParamReader, augmentable: Tensor, height: int, width: int):
        """Per layer: rotate?, smooth?, rotation and shear (degrees), window (pixels), and the kernel size."""
        size, k_max = augmentable.shape
        generator, device = read.generator, read.device

        def draw(name, sample, dtype):
            return self._pinned(read, name, (size, k_max), dtype) if read.pinned(name) else \
                read.record(name, sample().to(dtype))

        p_aug, p_smooth = float(read.value("p_aug")), float(read.value("p_smooth"))
        rotate = draw("rotated", lambda: bernoulli(p_aug, size * k_max, generator=generator,
                                                   device=device).view(size, k_max) & augmentable, torch.bool)
        smoothed = draw("smoothed", lambda: bernoulli(p_smooth, size * k_max, generator=generator,
                                                      device=device).view(size, k_max) & augmentable, torch.bool)
        max_rotation, max_shear = float(read.value("max_rotation")), float(read.value("max_shear"))
        angle = draw("rotation_deg", lambda: uniform(-max_rotation, max_rotation, size * k_max, generator=generator,
                                                     device=device).view(size, k_max), torch.float32)
        shear = draw("shear_deg", lambda: uniform(-max_shear, max_shear, size * k_max, generator=generator,
                                                  device=device).view(size, k_max), torch.float32)
        choices = read.value("windows")
        if choices is None:
            choices = read.record("windows", paper_windows(min(height, width)))
        odd = [w + (1 - w % 2) for w in (round(c) for c in choices)]
        table = torch.tensor(odd, device=device, dtype=torch.float32)
        windows = draw("window", lambda: table[torch.randint(len(odd), (size, k_max), generator=generator,
                                                             device=device)], torch.float32)
        kernel_size = max(odd)
        if read.pinned("window"):  # a replay: its windows were drawn from `windows`, but check
            kernel_size = max(kernel_size, int(windows.max()))
        return rotate, smoothed, angle, shear, windows, kernel_size


register(MiAMix(INFO))
