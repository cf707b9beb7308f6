"""Running msda on the pair, and caching the results.

:func:`mix_view` mixes the batch [A, B] with ``msda.Mixer`` (the default pairing of a batch of two pairs them
with each other) and keeps what the page shows of sample 0: the mixed image, the mask, requested and
effective λ, the mixed label, the mask statistics of :mod:`msda.stats` and the method's stages.
:func:`cached_mix_view` is the same, cached per (method, pair, λ, α, seed, parameters).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import streamlit as st
import torch

import msda
from msda import stats

from .images import to_jpeg_uri

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
        mixed_uri: the mixed image as a JPEG data URI (what the figures send to the browser).
        mask: float32 [S, S], the weight of A.
        lam_requested, lam: requested and effective λ (A's label weight).
        label: (weight of A's class, weight of B's class) in the mixed label.
        partner: 0 when A was mixed with (a view of) itself or not at all, 1 when with B.
        area, sharpness, regions: msda.stats of the mask.
        stages: the method's extras for sample 0 as numpy/Python values (MiAMix's stages, HardMix's pool).
    """

    mixed: np.ndarray
    mixed_uri: str
    mask: np.ndarray
    lam_requested: float
    lam: float
    label: tuple[float, float]
    partner: int
    area: float
    sharpness: float
    regions: int
    stages: dict[str, Any] = field(default_factory=dict)


def _first_sample(details: dict) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in details.items():
        if isinstance(value, torch.Tensor):
            value = value[0] if value.ndim >= 1 else value
            out[name] = value.numpy() if value.ndim else value.item()
        else:
            out[name] = value
    return out


def mix_view(method: str, images: torch.Tensor, *, lam: float | None, alpha: float, seed: int,
             params: dict[str, Any]) -> MixView:
    """Mix the batch [A, B] ([2, 3, S, S] float) with ``method``; ``lam=None`` lets the method draw λ.

    Raises the ``ValueError`` of msda when a parameter combination is not allowed.
    """
    generator = torch.Generator().manual_seed(seed)
    mixer = msda.Mixer(method, num_classes=NUM_CLASSES, alpha=alpha, generator=generator, **params)
    extra = {"logits": torch.tensor(HARDMIX_LOGITS)} if mixer.method.info.needs_logits else {}
    out = mixer(images, torch.tensor(LABELS), lam=lam, **extra)
    mask = out.mask[:1]
    mixed = (out.images[0].clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    return MixView(
        mixed=mixed,
        mixed_uri=to_jpeg_uri(mixed),
        mask=mask[0, 0].numpy(),
        lam_requested=float(out.lam_requested[0]),
        lam=float(out.lam[0]),
        label=(float(out.targets[0, 0]), float(out.targets[0, 1])),
        partner=int(out.partner[0]),
        area=float(stats.mask_area(mask)[0]),
        sharpness=float(stats.boundary_sharpness(mask)[0]),
        regions=int(stats.connected_regions(mask)[0]),
        stages=_first_sample(out.details),
    )


def _freeze(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


@st.cache_data(max_entries=256, show_spinner=False)  # ≤ ~0.4 MB each (MiAMix ~1.5 MB)
def _cached(method: str, pair_key: str, lam: float | None, alpha: float, seed: int, frozen: tuple,
            _images: torch.Tensor) -> MixView:
    return mix_view(method, _images, lam=lam, alpha=alpha, seed=seed, params=dict(frozen))


def cached_mix_view(method: str, pair_key: str, images: torch.Tensor, *, lam: float | None, alpha: float, seed: int,
                    params: dict[str, Any]) -> MixView:
    """:func:`mix_view`, cached; ``pair_key`` must identify ``images`` (see :attr:`Pair.key`)."""
    return _cached(method, pair_key, lam, alpha, seed, _freeze(params), images)
