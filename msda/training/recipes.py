"""Training recipes: the papers' setups and the one the shipped checkpoints use.

Milestones are fractions of the run, so ``--epochs`` shortens or lengthens a recipe without changing its
shape. Command-line flags override any field.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Recipe:
    name: str
    source: str
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    nesterov: bool
    schedule: str  # "multistep" | "cosine"
    milestones: tuple[float, ...] = ()
    gamma: float = 0.1
    warmup_epochs: float = 0.0
    prob: float = 1.0
    augment: str = "standard"

    def to_dict(self) -> dict:
        return asdict(self)


RECIPES: dict[str, Recipe] = {
    "hardmix": Recipe(
        name="hardmix", source="hardmix.md §4.2: SGD Nesterov 0.9, wd 5e-4, lr 0.1 ×0.2 at 60/120/160 of 200",
        epochs=200, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True,
        schedule="multistep", milestones=(0.3, 0.6, 0.8), gamma=0.2),
    "miamix": Recipe(
        name="miamix", source="miamix.md §4.1: SGD 0.9, wd 5e-4, lr 0.1 cosine, 400 epochs, batch 100",
        epochs=400, batch_size=100, lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=False, schedule="cosine"),
    "smoothmix": Recipe(
        name="smoothmix", source="smoothmix.md §4.1 (CIFAR): SGD, lr 0.25 ×0.1 every 75 of 300 epochs, "
                                 "batch 32, mixing probability 0.5; momentum 0.9 and wd 1e-4 are not stated "
                                 "there and follow the PyramidNet setup it cites",
        epochs=300, batch_size=32, lr=0.25, momentum=0.9, weight_decay=1e-4, nesterov=False,
        schedule="multistep", milestones=(0.25, 0.5, 0.75), gamma=0.1, prob=0.5),
    "shapes": Recipe(
        name="shapes", source="this project: the base of the first shipped checkpoints (shapes version 1; small, "
                              "fast on a CPU); no extra augmentation — the shapes dataset already draws every "
                              "object's position, scale and rotation; half of each batch is mixed, as in "
                              "SmoothMix's CIFAR setup; batch 32 for many steps in a short run (with batch 128 "
                              "every model sat at chance for its first 5–10 epochs)",
        epochs=12, batch_size=32, lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True, schedule="cosine",
        warmup_epochs=1.0, prob=0.5, augment="none"),
    "shapes-finetune": Recipe(
        name="shapes-finetune", source="this project: the first shipped checkpoints (shapes version 1) — every method, and none, continued "
                                       "for 5 epochs from the same `shapes`-recipe model without mixing (--init), "
                                       "every sample mixed; from scratch, mixed models sit at chance for most of a "
                                       "short CPU run",
        epochs=5, batch_size=32, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True, schedule="cosine",
        warmup_epochs=0.0, prob=1.0, augment="none"),
    "shapes-scratch": Recipe(
        name="shapes-scratch", source="this project: every method, and none, from scratch on 2 000 images of "
                                      "the shapes dataset (version 2) for 30 epochs — small data and a long "
                                      "schedule, so that none memorises and a regulariser can help; no warmup "
                                      "and batch 32, so that none leaves chance in its first epoch; half of each "
                                      "batch mixed, as in CutMix's and SmoothMix's CIFAR setups (with every "
                                      "sample mixed CutMix underfits in 30 epochs); see msda.data.shapes for the "
                                      "measurements",
        epochs=30, batch_size=32, lr=0.05, momentum=0.9, weight_decay=5e-4, nesterov=True, schedule="cosine",
        warmup_epochs=0.0, prob=0.5, augment="none"),
}


def learning_rate(recipe_lr: float, schedule: str, progress: float, epochs: int, *, milestones=(),
                  gamma: float = 0.1, warmup_epochs: float = 0.0) -> float:
    """The learning rate at `progress` epochs (fractional) into a run of `epochs` epochs.

    Linear warmup over `warmup_epochs`, then cosine to 0 or steps of ×gamma at the milestone fractions.
    """
    if warmup_epochs > 0 and progress < warmup_epochs:
        return recipe_lr * (progress + 1e-8) / warmup_epochs
    if schedule == "cosine":
        span = max(epochs - warmup_epochs, 1e-8)
        return recipe_lr * 0.5 * (1 + math.cos(math.pi * min((progress - warmup_epochs) / span, 1.0)))
    passed = sum(progress >= fraction * epochs for fraction in milestones)
    return recipe_lr * gamma**passed
