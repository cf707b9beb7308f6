"""Running msda on the pair, and caching the results.

:func:`mix_view` mixes the batch [A, B] with ``msda.Mixer`` (the default pairing of a batch of two pairs them
with each other) and keeps what the page shows of sample 0: the mixed image, the mask, requested and
effective λ, the mixed label, the mask statistics of :mod:`msda.stats` and the method's stages.
:func:`cached_mix_view` is the same, cached per (method, pair, λ, α, seed, parameters) for the whole server:
every session showing the same pair with the same settings gets the one computation (the pair is named by the
hash of its pixels, so two sessions share a mix only when their images are identical, uploads included, and
then the mix is the same bit for bit).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st
import torch

import msda
from msda import stats

from .heavy import heavy_work
from .pictures import jpeg_uri, mask_png_uri

NUM_CLASSES = 2
LABELS = (0, 1)  # A is class 0, B class 1
HARDMIX_LOGITS = ((4.0, 0.0), (4.0, 0.0))
"""Made-up predictions for the pair: class 0 (A's) for both images, so B counts as misclassified and is the
only source of HardMix's patches."""


@dataclass
class MixView:
    """What the page shows of sample 0 (image A) after mixing.

    Attributes:
        mixed: uint8 [S, S, 3].
        mixed_uri: the mixed image as a JPEG data URI (what the card sends to the browser).
        mask: float32 [S, S], the weight of A.
        mask_uri: the mask through the Cividis scale as a palette PNG data URI.
        lam_requested, lam: requested and effective λ (A's label weight).
        label: (weight of A's class, weight of B's class) in the mixed label.
        partner: 0 when A was mixed with (a view of) itself or not at all, 1 when with B.
        area, sharpness, regions: msda.stats of the mask.
        stages: ``out.details`` for sample 0 as numpy/Python values: what msda derived from the draws (MiAMix's
            stages, HardMix's pool, a solved σ, a saliency peak).
        draws: ``out.params`` for sample 0 without the call's own entries (method, lam, partner, mixed): every
            value of the method's parameters the mix used, drawn or pinned.
        replay: ``out.params`` as msda returned them (tensors for the whole batch): passed back to a Mixer they
            reproduce the mix bit for bit (the focus view's sweeps pin the card's draws from them).
    """

    mixed: np.ndarray
    mixed_uri: str
    mask: np.ndarray
    mask_uri: str
    lam_requested: float
    lam: float
    label: tuple[float, float]
    partner: int
    area: float
    sharpness: float
    regions: int
    stages: dict[str, Any] = field(default_factory=dict)
    draws: dict[str, Any] = field(default_factory=dict)
    replay: dict[str, Any] = field(default_factory=dict)


CALL_KEYS = ("method", "lam", "partner", "mixed")
"""Entries of ``MixOutput.params`` that belong to the call, not to the method's parameters."""


def first_sample(values: dict, batch: int) -> dict[str, Any]:
    """Sample 0 of msda's per-sample values as numpy/Python values: tensors whose first dimension is the batch
    lose it (0-d results become Python numbers), batch-level values are kept. Nested entries are read the same
    way; an entry that holds values for some samples only names them in ``rows`` (MiAMix's per-layer draws):
    it is kept, without ``rows``, when sample 0 is one of them and dropped otherwise."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, torch.Tensor):
            value = value[0] if value.ndim >= 1 and value.shape[0] == batch else value
            out[name] = value.numpy() if value.ndim else value.item()
        elif isinstance(value, dict) and isinstance(value.get("rows"), torch.Tensor):
            hits = (value["rows"] == 0).nonzero().flatten()
            if hits.numel():
                row = int(hits[0])
                out[name] = first_sample({key: inner[row:row + 1] if isinstance(inner, torch.Tensor) else inner
                                          for key, inner in value.items() if key != "rows"}, 1)
        elif isinstance(value, dict):
            out[name] = first_sample(value, batch)
        elif isinstance(value, list) and any(isinstance(inner, dict) for inner in value):
            out[name] = [first_sample(inner, batch) if isinstance(inner, dict) else inner for inner in value]
        else:
            out[name] = value
    return out


def guidance_inputs(method: str, images: torch.Tensor, guidance: dict[str, torch.Tensor] | None
                    ) -> dict[str, torch.Tensor]:
    """The model-derived keyword arguments of a call: HardMix's made-up logits, and the saliency or CAMs of a
    model-guided method — ``guidance`` when given (:mod:`.guidance` builds it), else the image-only maps."""
    info = msda.methods_info()[method]
    extra = {"logits": torch.tensor(HARDMIX_LOGITS)} if info.needs_logits else {}
    for need in info.needs:
        if need in ("saliency", "cams"):
            if guidance is not None and need in guidance:
                extra[need] = guidance[need]
            else:
                from .guidance import image_guidance_tensor  # the page's default for a photo pair

                extra[need] = image_guidance_tensor(need, images)
    return extra


def mix_view(method: str, images: torch.Tensor, *, lam: float | None, alpha: float, seed: int,
             params: dict[str, Any], guidance: dict[str, torch.Tensor] | None = None) -> MixView:
    """Mix the batch [A, B] ([2, 3, S, S] float) with ``method``; ``lam=None`` lets the method draw λ.
    ``guidance`` holds the saliency or CAMs of a model-guided method (default: the image-only maps).

    Raises the ``ValueError`` of msda when a parameter combination is not allowed.
    """
    generator = torch.Generator().manual_seed(seed)
    mixer = msda.Mixer(method, num_classes=NUM_CLASSES, alpha=alpha, generator=generator, **params)
    with heavy_work():
        out = mixer(images, torch.tensor(LABELS), lam=lam, **guidance_inputs(method, images, guidance))
    mask = out.mask[:1]
    mixed = (out.images[0].clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    mask_a = mask[0, 0].numpy()
    batch = images.shape[0]
    params = getattr(out, "params", {})
    return MixView(
        mixed=mixed,
        mixed_uri=jpeg_uri(mixed),
        mask=mask_a,
        mask_uri=mask_png_uri(mask_a),
        lam_requested=float(out.lam_requested[0]),
        lam=float(out.lam[0]),
        label=(float(out.targets[0, 0]), float(out.targets[0, 1])),
        partner=int(out.partner[0]),
        area=float(stats.mask_area(mask)[0]),
        sharpness=float(stats.boundary_sharpness(mask)[0]),
        regions=int(stats.connected_regions(mask)[0]),
        stages=first_sample(out.details, batch),
        draws=first_sample({k: v for k, v in params.items() if k not in CALL_KEYS}, batch),
        replay=params,
    )


def _freeze(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


@st.cache_data(max_entries=256, show_spinner=False)  # ≤ ~0.4 MB each (MiAMix ~1.5 MB)
def _cached(method: str, pair_key: str, lam: float | None, alpha: float, seed: int, frozen: tuple,
            guidance_key: str | None, _images: torch.Tensor, _guidance: dict | None) -> MixView:
    return mix_view(method, _images, lam=lam, alpha=alpha, seed=seed, params=dict(frozen), guidance=_guidance)


def cached_mix_view(method: str, pair_key: str, images: torch.Tensor, *, lam: float | None, alpha: float, seed: int,
                    params: dict[str, Any], guidance: dict[str, torch.Tensor] | None = None,
                    guidance_key: str | None = None) -> MixView:
    """:func:`mix_view`, cached; ``pair_key`` must identify ``images`` (see :attr:`Pair.key`) and
    ``guidance_key`` the guidance (see :attr:`.guidance.Guidance.key`)."""
    return _cached(method, pair_key, lam, alpha, seed, _freeze(params), guidance_key, images, guidance)
