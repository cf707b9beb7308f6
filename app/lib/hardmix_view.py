"""HardMix with a trained checkpoint: a batch of bundled shapes samples, the model's predictions, the hard pool
(hardmix.md Alg. 1: the samples the model misclassifies, or the highest-loss fraction) and the mixes the real
``msda.Mixer("hardmix")`` makes from the checkpoint's logits. Cached per (model, batch, settings, seed).

The samples come from the shapes version the checkpoint's classes name (version 1 for the first shipped
checkpoints, 2 for the from-scratch ones). :func:`first_batch_with_misclassified` finds, deterministically,
the first batch whose misclassified pool is not empty, so the page opens on a batch where HardMix has
something to draw from."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

import msda
from msda.data import Shapes
from msda.data.shapes import DESIGNS, MIN_SIZE, version_of_classes

from .checkpoints import LoadedModel


@dataclass
class HardMixView:
    """One HardMix call on a batch, as numpy and Python values.

    Attributes:
        indices: the shapes test indices of the batch.
        images, mixed: uint8 [B, S, S, 3].
        true, predicted: class names per sample.
        confidence: the model's probability of its prediction, per sample.
        hard: the pool (bool per sample).
        partner: index into the batch of each sample's partner (where its patch comes from).
        lam: the own image's label weight per sample (the mask's mean).
        label: the mixed label per sample, from ``MixOutput.targets`` ("circle 0.63 / star 0.37").
        fallback: True when the pool was empty and partners were drawn at random.
    """

    indices: list[int]
    images: np.ndarray
    mixed: np.ndarray
    true: list[str]
    predicted: list[str]
    confidence: list[float]
    hard: list[bool]
    partner: list[int]
    lam: list[float]
    label: list[str]
    fallback: bool


def _uint8(images: torch.Tensor) -> np.ndarray:
    return (images.clamp(0, 1).permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()


BATCH_SEARCH = 64
"""How many batches :func:`first_batch_with_misclassified` tries before giving up."""


def check_model(loaded: LoadedModel) -> str | None:
    """Why the model cannot classify shapes samples, or None."""
    if version_of_classes(loaded.classes) is None:
        latest = DESIGNS[max(DESIGNS)].classes
        return (f"{loaded.name} was trained on other classes ({', '.join(loaded.classes[:4])}"
                f"{', …' if len(loaded.classes) > 4 else ''}); the HardMix view needs a model of the bundled shapes "
                f"dataset's {len(latest)} classes ({', '.join(latest[:3])}, …).")
    if loaded.size < MIN_SIZE:
        return f"{loaded.name} takes {loaded.size}-px images; shapes samples are rendered at {MIN_SIZE} px or more."
    return None


def _batch(loaded: LoadedModel, batch: int, size: int):
    """(indices, images, labels) of batch `batch` of the checkpoint's shapes test split and version."""
    data_seed = int(loaded.meta.get("data_seed") or 0)
    indices = list(range(batch * size, (batch + 1) * size))
    images, labels, _ = Shapes("test", n=indices[-1] + 1, size=loaded.size, seed=data_seed,
                               version=version_of_classes(loaded.classes)).render(indices)
    return indices, images, labels


def first_batch_with_misclassified(loaded: LoadedModel, size: int, *, search: int = BATCH_SEARCH) -> int | None:
    """The first batch b in 0 … search − 1 (samples b·size … (b + 1)·size − 1) in which the model misclassifies a
    sample, or None. Batches are classified `size` at a time, in order: the answer is deterministic."""
    for batch in range(search):
        _, images, labels = _batch(loaded, batch, size)
        with loaded.lock, torch.no_grad():
            wrong = loaded.model(images).argmax(1) != labels
        if bool(wrong.any()):
            return batch
    return None


def hardmix_view(loaded: LoadedModel, *, batch: int, size: int, seed: int, hardness: str,
                 top_frac: float) -> HardMixView:
    """Samples ``batch·size … (batch + 1)·size − 1`` of the shapes test split (the checkpoint's data seed and
    shapes version, at its input size), classified by the model and mixed by HardMix with a generator seeded
    with `seed`."""
    indices, images, labels = _batch(loaded, batch, size)
    with loaded.lock, torch.no_grad():
        logits = loaded.model(images)
    params = {"hardness": hardness} | ({"top_frac": top_frac} if hardness == "loss" else {})
    mixer = msda.Mixer("hardmix", num_classes=len(loaded.classes), generator=torch.Generator().manual_seed(seed),
                       **params)
    out = mixer(images, labels, logits=logits)
    probs = torch.softmax(logits.float(), dim=1)
    predicted = probs.argmax(1)
    hard = out.details["hard"]
    return HardMixView(
        indices=indices, images=_uint8(images), mixed=_uint8(out.images),
        true=[loaded.classes[int(c)] for c in labels], predicted=[loaded.classes[int(c)] for c in predicted],
        confidence=probs.gather(1, predicted[:, None])[:, 0].tolist(), hard=hard.tolist(),
        partner=out.partner.tolist(), lam=out.lam.tolist(),
        label=[_label(row, loaded.classes) for row in out.targets], fallback=not bool(hard.any()))


def _label(target: torch.Tensor, classes: list[str]) -> str:
    weights = [(classes[int(i)], float(target[i])) for i in target.nonzero()[:, 0]]
    return " / ".join(f"{name} {weight:.2f}" for name, weight in sorted(weights, key=lambda item: -item[1]))


@st.cache_data(max_entries=32, show_spinner=False)
def cached_hardmix_view(model_key: str, batch: int, size: int, seed: int, hardness: str, top_frac: float,
                        _loaded: LoadedModel) -> HardMixView:
    return hardmix_view(_loaded, batch=batch, size=size, seed=seed, hardness=hardness, top_frac=top_frac)


@st.cache_data(max_entries=32, show_spinner=False)
def cached_first_batch(model_key: str, size: int, _loaded: LoadedModel) -> int | None:
    return first_batch_with_misclassified(_loaded, size)
