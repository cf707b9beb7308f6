"""Clean, FGSM and PGD accuracy of several models on the same images, with every image's outcome kept.

Per model, per ε: whether each image is still classified correctly under FGSM (one signed-gradient step of ε)
and under PGD (:func:`~.pgd.pgd`), and the confidence of the prediction on the attacked image. The PGD random
starts are drawn per (seed, ε, block of images) from :func:`attack_seed`, so every model is attacked from the
same starts and a rerun with the same seed and batch size repeats the study.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from msda._checks import check_int

from ..cam import evaluation_mode
from ..robust_metrics import fgsm
from .pgd import MAX_RESTARTS, MAX_STEPS, check_eps, pgd

__all__ = ["AttackSettings", "attack_outcomes", "attack_seed", "cells", "eps_label", "long_table", "metric_name",
           "parse_eps", "pgd_method_columns", "settings_record"]


@dataclass(frozen=True)
class AttackSettings:
    """The attack of a study, stated in every table: ε values (pixel scale), PGD steps K, step size α as a
    fraction of ε, restarts and random start, and the seed of the starts."""

    eps: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
    steps: int = 10
    step_fraction: float = 0.25
    restarts: int = 1
    random_start: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.eps, tuple) or not self.eps:
            raise ValueError(f"eps must be a non-empty tuple of budgets in [0, 1], got {self.eps!r}")
        for value in self.eps:
            check_eps(value)
        check_int("steps", self.steps, low=0, high=MAX_STEPS)
        check_int("restarts", self.restarts, low=1, high=MAX_RESTARTS)
        if (isinstance(self.step_fraction, bool) or not isinstance(self.step_fraction, (int, float))
                or not 0 < self.step_fraction <= 10 or self.step_fraction != self.step_fraction):
            raise ValueError(f"step_fraction (α / ε) must be a finite number in (0, 10], got {self.step_fraction!r}")
        if self.restarts > 1 and not self.random_start:
            raise ValueError(f"restarts={self.restarts} needs a random start: without one every restart is the same")

    def describe(self) -> str:
        """One line for every table: "PGD L∞, 10 steps of α = 0.25 ε, random start, 1 restart; FGSM one step of ε"."""
        start = "random start" if self.random_start else "no random start"
        return (f"PGD L∞ on the [0, 1] scale, {self.steps} steps of α = {self.step_fraction:g} ε, {start}, "
                f"{self.restarts} restart{'s' if self.restarts != 1 else ''} (an image counts as robust only if no "
                f"iterate of any restart fools the model), starts seeded with {self.seed}; FGSM: one step of ε; "
                f"ε ∈ {{{', '.join(eps_label(e) for e in self.eps)}}}")


def eps_label(eps: float) -> str:
    """``"8/255"`` for multiples of 1/255, else the number."""
    scaled = eps * 255
    return f"{round(scaled)}/255" if abs(scaled - round(scaled)) < 1e-9 else f"{eps:g}"


def parse_eps(text: str) -> tuple[float, ...]:
    """'1/255,8/255' → (1/255, 8/255), sorted and unique; ValueError naming a bad token."""
    from fractions import Fraction

    values = []
    for token in str(text).split(","):
        try:
            value = float(Fraction(token.strip()))
        except (ValueError, ZeroDivisionError):
            try:
                value = float(token.strip())  # nan, inf: numbers, refused below for their range
            except ValueError:
                raise ValueError(f"ε {token.strip()!r} is not a number or a fraction like 8/255; ε must be a "
                                 "finite number in [0, 1]") from None
        values.append(check_eps(value, "ε"))
    return tuple(sorted(set(values)))


def attack_seed(seed: int, eps: float, block: int) -> int:
    """The random-start generator seed of one block of images at one ε: a 63-bit hash of the three."""
    key = f"pgd/{seed}/{eps!r}/{block}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def attack_outcomes(models: Mapping[str, nn.Module], images: Tensor, labels: Tensor, settings: AttackSettings, *,
                    batch_size: int = 250, progress: bool = False, timings: dict | None = None,
                    num_classes: int | None = None) -> dict[str, dict]:
    """Per model: ``clean/correct`` and ``clean/confidence`` [N]; ``fgsm/correct``, ``fgsm/confidence``,
    ``pgd/correct``, ``pgd/confidence`` [E, N] (rows in the order of ``settings.eps``). Correctness is bool,
    confidence the softmax probability of the predicted class on the (attacked) image, float32, on the CPU.

    Args:
        models: name → classifier taking images in [0, 1], on the images' device.
        images: float [N, 3, H, W] in [0, 1] or uint8; labels: int [N].
        timings: if given, filled with each model's seconds of CPU time.
        num_classes: the logits' expected width; a model whose outputs are not [batch, num_classes] is refused.
    """
    import time

    from tqdm.auto import tqdm

    batch_size = check_int("batch_size", batch_size, low=1)
    labels = labels.long()
    n, count = len(labels), len(settings.eps)
    blocks = list(range(0, n, batch_size))
    bar = tqdm(total=len(models) * len(blocks), unit="batch", desc="attacks", disable=not progress)
    out: dict[str, dict] = {}
    try:
        for name, model in models.items():
            started = time.process_time()
            record = {"clean/correct": torch.zeros(n, dtype=torch.bool), "clean/confidence": torch.zeros(n),
                      **{f"{kind}/{field}": torch.zeros(count, n, dtype=torch.bool if field == "correct" else None)
                         for kind in ("fgsm", "pgd") for field in ("correct", "confidence")}}
            generator = torch.Generator(device=images.device)
            for block, start in enumerate(blocks):
                part = slice(start, min(n, start + batch_size))
                batch = images[part]
                batch = batch.float().div(255) if batch.dtype == torch.uint8 else batch.float()
                targets = labels[part]
                _score(model, batch, targets, record, "clean", None, part, num_classes)
                for index, eps in enumerate(settings.eps):
                    _score(model, fgsm(model, batch, targets, eps), targets, record, "fgsm", index, part)
                    generator.manual_seed(attack_seed(settings.seed, eps, block))
                    attacked = pgd(model, batch, targets, eps, steps=settings.steps,
                                   step_size=min(1.0, settings.step_fraction * eps) if eps > 0 else None,
                                   random_start=settings.random_start, restarts=settings.restarts,
                                   generator=generator)
                    _score(model, attacked, targets, record, "pgd", index, part)
                bar.update(1)
            out[name] = record
            if timings is not None:
                timings[name] = time.process_time() - started
    finally:
        bar.close()
    return out


def _score(model: nn.Module, images: Tensor, targets: Tensor, record: dict, kind: str, index: int | None, part,
           num_classes: int | None = None) -> None:
    with torch.no_grad(), evaluation_mode(model):
        logits = model(images)
    if num_classes is not None and (not isinstance(logits, Tensor) or logits.shape != (len(images), num_classes)):
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"the model's outputs must be logits [batch, {num_classes}] (one per class), got {shape} for a "
                         f"batch of {len(images)}")
    confidence, predicted = logits.float().softmax(1).max(1)
    where = (part,) if index is None else (index, part)
    record[f"{kind}/correct"][where] = (predicted == targets).cpu()
    record[f"{kind}/confidence"][where] = confidence.cpu()


def settings_record(settings: AttackSettings) -> dict:
    """The settings as JSON-ready values (ε also as labels) with their one-line description."""
    return {**asdict(settings), "eps": list(settings.eps), "eps_labels": [eps_label(e) for e in settings.eps],
            "description": settings.describe()}


def cells(outcomes: Mapping[str, Mapping[str, Tensor]], settings: AttackSettings) -> dict:
    """(group, metric) → {model → [N]} cells for :func:`analysis.verdicts.method_table` with ``by=("attack",
    "eps")``: clean accuracy once, then FGSM and PGD accuracy per ε."""
    out = {(("clean", "0"), "accuracy"): {m: o["clean/correct"] for m, o in outcomes.items()}}
    for kind in ("fgsm", "pgd"):
        for index, eps in enumerate(settings.eps):
            out[(kind, eps_label(eps)), "accuracy"] = {m: o[f"{kind}/correct"][index] for m, o in outcomes.items()}
    return out


def long_table(outcomes: Mapping[str, Mapping[str, Tensor]], settings: AttackSettings, meta: Mapping[str, dict]):
    """One row per model × attack × ε: accuracy and mean confidence (the CSV)."""
    import pandas as pd

    rows = []
    for model, record in outcomes.items():
        info = {"model": model, "method": meta.get(model, {}).get("method"), "seed": meta.get(model, {}).get("seed")}
        rows.append({**info, "attack": "clean", "eps": 0.0, "eps_label": "0",
                     "accuracy": float(record["clean/correct"].double().mean()),
                     "confidence": float(record["clean/confidence"].double().mean())})
        for kind in ("fgsm", "pgd"):
            for index, eps in enumerate(settings.eps):
                rows.append({**info, "attack": kind, "eps": eps, "eps_label": eps_label(eps),
                             "accuracy": float(record[f"{kind}/correct"][index].double().mean()),
                             "confidence": float(record[f"{kind}/confidence"][index].double().mean())})
    return pd.DataFrame(rows)


def metric_name(kind: str, eps: float) -> str:
    """A per-method column's metric: ``pgd_8_255`` (as the robustness study names ``fgsm_8_255``)."""
    return f"{kind}_{eps * 255:g}_255"


def pgd_method_columns(outcomes: Mapping[str, Mapping[str, Tensor]], settings: AttackSettings, *,
                       methods: Mapping[str, str | None], seeds: Mapping[str, int | None] | None = None,
                       n_boot: int | None = None):
    """Per method, PGD accuracy at every ε as ``pgd_<ε·255>_255_mean``, ``_ci_low``, ``_ci_high``, ``_diff``,
    ``_p`` and ``_vs_none`` (:func:`analysis.verdicts.method_table`, each ε its own Holm family) — columns to
    join to the robustness study's per-method table beside its FGSM columns."""
    from ..verdicts import N_BOOT, method_table

    cells = {((), metric_name("pgd", eps)): {m: o["pgd/correct"][index] for m, o in outcomes.items()}
             for index, eps in enumerate(settings.eps)}
    return method_table(cells, methods=methods, seeds=seeds, higher_is_better={},
                        n_boot=N_BOOT if n_boot is None else n_boot)
