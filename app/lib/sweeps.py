"""Sweeps for the focus view: one card's mix redrawn at many values of λ (or of one parameter) in one batched
msda call, with every other draw of the card pinned from its ``MixOutput.params``.

The batch is N copies of A followed by N copies of B, each A paired with a B (``partner``), and the card's
draws for sample A repeated N times: replaying them draws nothing, so frame i differs from the card only in
the swept value — at the card's own λ it *is* the card, bit for bit. What msda derives from λ (GMix's σ, a
top-k threshold) is derived again for each frame: that is what the sweep shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import msda

from .heavy import heavy_work
from .mixing import HARDMIX_LOGITS, LABELS, NUM_CLASSES

LAM_STEPS = 21
"""λ = 0, 0.05, …, 1."""
PARAM_STEPS = 11


@dataclass(frozen=True)
class ParamSweep:
    """The parameter a method's second sweep moves, and how its values are chosen.

    ``span`` is (low, high) as multiples of the value on the card (for a value that is solved, such as
    GMix's σ); None sweeps the registry's range for it (the support of its law, else its pinnable range).
    """

    name: str
    why: str
    span: tuple[float, float] | None = None


PARAM_SWEEPS = {
    "gmix": ParamSweep("sigma", "σ pinned overrides λ: the blob grows and the effective λ falls", (0.25, 2.5)),
    "agmix": ParamSweep("q", "q stretches the blob along a diagonal; θ then turns it"),
    "smoothmix_s": ParamSweep("border", "the border k softens the square's edge without moving it"),
    "lmix": ParamSweep("sharpen", "the high-frequency boost k breaks the mask into more, smaller regions"),
    "fmix": ParamSweep("decay", "the decay δ of the spectrum: small δ is noise, large δ a few smooth blobs"),
    "gridmix": ParamSweep("n_holes", "more holes per side at the same area: a finer grid"),
    "smoothmix_c": ParamSweep("sigma", "the spread of the Gaussian box"),
    "resizemix": ParamSweep("tau", "the scale τ of the pasted partner decides the area: λ = 1 − τ²"),
    "cutout": ParamSweep("size", "the side of the hole, as a fraction of the image side"),
    "miamix": ParamSweep("k_max", "k is drawn from U{1, …, k_max}: the more layers a mix may stack, the more "
                         "the partner is cut up (each value a fresh draw with the card's seed)"),
}


SOLVED_FROM_LAM = {"puzzlemix": ("labelling", "plan_own", "plan_partner")}
"""Entries of a card's ``out.params`` that msda solves from λ (PuzzleMix's graph-cut labelling and transport
plans): the λ sweep solves them again for each frame instead of replaying the card's, so the frames move with
λ — and at the card's own λ the same solve gives the card's."""


@dataclass
class Sweep:
    """Frames of a sweep: ``values`` [N] (what was swept), ``masks`` float32 [N, S, S], ``mixed`` uint8
    [N, S, S, 3] and effective λ ``lams`` [N], all of sample A."""

    name: str
    values: np.ndarray
    masks: np.ndarray
    mixed: np.ndarray
    lams: np.ndarray


def _repeat(value: Any, n: int, batch: int) -> Any:
    """Sample A's value for n copies of A and sample B's for n copies of B (per-sample tensors), recursively;
    batch-level values as they are. Entries that hold values for some samples only (MiAMix's per-layer draws)
    name them in ``rows``: each row becomes its n copies."""
    if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == batch:
        return torch.cat([value[:1].expand(n, *value.shape[1:]), value[1:2].expand(n, *value.shape[1:])]).clone()
    if isinstance(value, dict) and isinstance(value.get("rows"), torch.Tensor):
        rows = value["rows"]
        source = torch.arange(rows.shape[0]).repeat_interleave(n)  # which old row each new row copies
        copies = (rows[:, None] * n + torch.arange(n)[None, :]).reshape(-1)
        return {key: copies if key == "rows" else
                inner[source] if isinstance(inner, torch.Tensor) and inner.ndim >= 1 and inner.shape[0] == rows.shape[0]
                else _repeat(inner, n, batch) for key, inner in value.items()}
    if isinstance(value, dict):
        return {key: _repeat(inner, n, batch) for key, inner in value.items()}
    if isinstance(value, list):
        return [_repeat(inner, n, batch) for inner in value]
    return value


def _run(method: str, images: torch.Tensor, replay: dict, n: int, alpha: float, params: dict, *,
         lam: torch.Tensor | None = None, override: dict | None = None) -> tuple[torch.Tensor, ...]:
    batch = images.shape[0]
    repeated = {key: _repeat(value, n, batch) for key, value in replay.items()}
    repeated["partner"] = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    if lam is not None:
        repeated["lam"] = torch.cat([lam, lam]).float()
    for key, value in (override or {}).items():
        repeated[key] = torch.cat([value, value]) if isinstance(value, torch.Tensor) else value
    stacked = torch.cat([images[:1].expand(n, -1, -1, -1), images[1:2].expand(n, -1, -1, -1)])
    labels = torch.tensor([LABELS[0]] * n + [LABELS[1]] * n)
    mixer = msda.Mixer(method, num_classes=NUM_CLASSES, alpha=alpha, generator=torch.Generator(), **params)
    extra = {"logits": torch.tensor([HARDMIX_LOGITS[0]] * n + [HARDMIX_LOGITS[1]] * n)} \
        if mixer.method.info.needs_logits else {}
    with heavy_work():
        out = mixer(stacked, labels, params=repeated, **extra)
    return out.mask[:n, 0], _pixels(out.images[:n]), out.lam[:n]


def _pixels(images: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] in [0, 1] → [N, H, W, C] uint8, as the sweep's frames are encoded."""
    return (images.clamp(0, 1).permute(0, 2, 3, 1) * 255).round().to(torch.uint8)


def lam_sweep(method: str, images: torch.Tensor, replay: dict, *, alpha: float, params: dict,
              steps: int = LAM_STEPS) -> Sweep:
    """The card's mix at λ = 0, 1/(steps − 1), …, 1: one msda call with ``lam`` a [steps] tensor (doubled for
    the B half of the batch), every other draw pinned from ``replay`` (the card's ``MixOutput.params``)."""
    lams = torch.linspace(0.0, 1.0, steps)
    replay = {key: value for key, value in replay.items() if key not in SOLVED_FROM_LAM.get(method, ())}
    override = {}
    if "layer_lams" in replay:  # MiAMix: the own share is λ, the layers keep their proportions of 1 − λ
        shares = replay["layer_lams"][0]
        own = float(shares[-1])
        if own < 1:  # scaled by (1 − λ)/(1 − own): exactly 1 at the card's own share, so that frame is the card
            layers = shares[None, :-1] * ((1 - lams) / (1 - shares[-1]))[:, None]
        else:  # the card gave the layers nothing: split 1 − λ evenly between its drawn layers
            active = (torch.arange(shares.shape[0] - 1) < int(replay["k"][0])).float()
            layers = active[None] / active.sum() * (1 - lams)[:, None]
        override["layer_lams"] = torch.cat([layers, lams[:, None]], dim=1)
    masks, mixed, effective = _run(method, images, replay, steps, alpha, params, lam=lams, override=override)
    return Sweep("λ", lams.numpy(), masks.numpy(), mixed.numpy(), effective.numpy())


def param_values(method: str, card_value: float | None, steps: int = PARAM_STEPS) -> np.ndarray | None:
    """The values the second sweep of ``method`` takes (None when it has none)."""
    sweep = PARAM_SWEEPS.get(method)
    if sweep is None:
        return None
    param = msda.methods_info()[method].param(sweep.name)
    if sweep.span is not None:
        if card_value is None:
            return None
        low, high = card_value * sweep.span[0], card_value * sweep.span[1]
        low, high = max(low, param.low if param.low is not None else low), min(high, param.high or high)
    else:
        support = getattr(param.sampled, "support", None) or (param.low, param.high)
        low, high = float(support[0]), float(support[1])
        if param.low_open:
            low = max(low, float(param.low) + (high - low) / 100)
        if param.high_open:
            high = min(high, float(param.high) - (high - low) / 100)
    if param.kind == "int":
        return np.arange(round(low), round(high) + 1, dtype=np.float32)
    return np.linspace(low, high, steps, dtype=np.float32)


def _batch_level_sweep(method: str, images: torch.Tensor, name: str, values: np.ndarray, *, lam: float,
                       alpha: float, seed: int, params: dict) -> Sweep:
    """A parameter that is one value for the whole batch (MiAMix's k_max) cannot vary inside one call: one
    call per value, each with the card's seed and λ — what the card would show with that value."""
    masks, mixed, effective = [], [], []
    for value in values:
        chosen = {**params, name: int(value) if float(value).is_integer() else float(value)}
        if name == "k_max":
            chosen.pop("k", None)  # a pinned k above the new k_max would be refused
        mixer = msda.Mixer(method, num_classes=NUM_CLASSES, alpha=alpha,
                           generator=torch.Generator().manual_seed(seed), **chosen)
        with heavy_work():
            out = mixer(images, torch.tensor(LABELS), lam=lam)
        masks.append(out.mask[0, 0])
        mixed.append(out.images[0])
        effective.append(out.lam[0])
    return Sweep(name, values, torch.stack(masks).numpy(), _pixels(torch.stack(mixed)).numpy(),
                 torch.stack(effective).numpy())


def param_sweep(method: str, images: torch.Tensor, replay: dict, card_value: float | None, *, alpha: float,
                params: dict, seed: int = 0) -> Sweep | None:
    """The card's mix with its second parameter (:data:`PARAM_SWEEPS`) swept, everything else pinned — one
    batched call with the parameter a per-sample tensor (a batch-level parameter: one call per value, with
    the card's ``seed``). None when ``method`` has no such sweep."""
    values = param_values(method, card_value)
    if values is None:
        return None
    name = PARAM_SWEEPS[method].name
    if not msda.methods_info()[method].param(name).per_sample:
        return _batch_level_sweep(method, images, name, values, lam=float(replay["lam"][0]), alpha=alpha,
                                  seed=seed, params=params)
    pinned = {key: value for key, value in params.items() if key != name}
    tensor = torch.from_numpy(values)
    if msda.methods_info()[method].param(name).kind == "int":
        tensor = tensor.round()
    lam = replay["lam"][:1].expand(len(values))
    masks, mixed, effective = _run(method, images, replay, len(values), alpha, pinned, lam=lam,
                                   override={name: tensor})
    return Sweep(name, values, masks.numpy(), mixed.numpy(), effective.numpy())

