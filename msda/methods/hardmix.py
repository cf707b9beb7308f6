"""HardMix: CutMix whose pasted patches come only from the samples the model currently gets wrong.

Uddin, Hosen, Adnan, Galib, Hossain, Bae. "HardMix: Considering Difficult Examples in Mixed Sample Data
Augmentation", Journal of Autonomous Intelligence, 2024 (hardmix.md §3, Algorithm 1).

Pairing (Alg. 1, lines 7–13): the hard samples are those the model misclassifies (``logits.argmax(1) !=
y``); each appears once in the source batch, the rest of the source batch repeats randomly chosen hard
samples, and the source batch is shuffled. With ``hardness="loss"`` the pool is instead the ``top_frac``
fraction of the batch with the highest per-sample cross-entropy (for models that already fit their batch).
If no sample is misclassified, the partners fall back to the default random pairing. Everything runs on
the device with no host sync: the pool size stays a tensor.

The mask is CutMix's with λ ~ Beta(1, 1) = U(0, 1) and the label weight from the clipped box (line 29).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import describe
from .._random import randint_below
from ..registry import Batch, MaskMethod, MethodInfo, Param, random_partners, register
from .cutmix import INFO as CUTMIX_INFO, cutmix_mask

INFO = MethodInfo(
    name="hardmix",
    title="HardMix",
    summary="CutMix whose pasted patches come only from the samples the model currently misclassifies.",
    formula=r"x_p \in \{x_j : \hat y_j \ne y_j\},\ \tilde x = M\odot x + (1-M)\odot x_p,\ "
            r"M = 1 - \mathbb{1}_{\text{box}}",
    paper='Uddin, Hosen, Adnan, Galib, Hossain, Bae, "HardMix: Considering Difficult Examples in Mixed Sample '
          'Data Augmentation", Journal of Autonomous Intelligence 2024',
    arxiv=None,
    default_alpha=1.0,
    needs=("logits",),
    image_free_mask=False,
    params=CUTMIX_INFO.params + (
        Param("hardness", "how the hard pool is chosen: misclassified samples, or the highest-loss fraction",
              default="misclassified", kind="choice", choices=("misclassified", "loss")),
        Param("top_frac", "with hardness='loss': the fraction of the batch (highest loss first) in the pool",
              default=0.5, low=0.0, high=1.0, low_open=True, per_sample=False),
        Param("hard", "[B] bool: the hard pool the patches are cut from; pinned, no logits are needed",
              kind="tensor", sampled="the samples the logits misclassify (or the highest-loss fraction)"),
    ),
)


def hard_samples(batch: Batch, hardness: str = "misclassified", top_frac: float = 0.5) -> Tensor:
    """[B] bool: the hard pool — misclassified samples, or the ⌈top_frac·B⌉ highest-loss ones."""
    if hardness == "loss":
        losses = -(batch.targets * F.log_softmax(batch.logits.float(), 1)).sum(1)
        count = max(1, math.ceil(top_frac * batch.size))
        hard = torch.zeros(batch.size, dtype=torch.bool, device=batch.device)
        return hard.index_fill_(0, losses.topk(count).indices, True)
    return batch.logits.argmax(1) != batch.targets.argmax(1)


def hard_partners(hard: Tensor, *, generator: torch.Generator | None) -> Tensor:
    """[B] partner indices drawn from the pool marked by `hard` (Alg. 1 lines 9–13).

    Every hard sample appears once, random repeats of hard samples fill the batch, then the source batch is
    shuffled. An empty pool falls back to :func:`random_partners`.
    """
    size, device = hard.shape[0], hard.device
    # Hard samples get keys in [0, 1), the others in [2, 3): sorting puts the hard ones first, shuffled.
    keys = torch.rand(size, generator=generator, device=device) + 2.0 * (~hard).float()
    order = keys.argsort()
    count = hard.sum()
    slot = torch.arange(size, device=device)
    repeat = randint_below(count.clamp_min(1).expand(size), generator=generator)
    source = order[torch.where(slot < count, slot, repeat)]
    shuffled = source[torch.randperm(size, generator=generator, device=device)]
    fallback = random_partners(size, generator=generator, device=device)
    return torch.where(count > 0, shuffled, fallback)


class HardMix(MaskMethod):
    def needs(self, params) -> tuple[str, ...]:
        return () if "hard" in params else ("logits",)

    def _hard(self, batch, read) -> Tensor:
        """The pinned pool, else the one the logits define."""
        hardness, top_frac = read.value("hardness"), read.value("top_frac")
        if read.pinned("hard"):
            hard = read.value("hard")
            if hard.shape != (batch.size,) or hard.dtype != torch.bool:
                raise ValueError(f"hardmix: hard must be a [{batch.size}] bool tensor, got {describe(hard)}")
            return hard.to(batch.device)
        return read.record("hard", hard_samples(batch, hardness, top_frac))

    def pair(self, batch, *, generator, params):
        return hard_partners(self._hard(batch, self.reader(batch, generator, params)), generator=generator)

    def mix(self, batch, partner, lam, *, alpha, generator, params):
        mixed = super().mix(batch, partner, lam, alpha=alpha, generator=generator, params=params)
        read = self.reader(batch, generator, params)
        hard = self._hard(batch, read)
        mixed.params.update(read.used)
        mixed.details.update(hard=hard, pool_size=hard.sum())
        return mixed


register(HardMix(INFO, cutmix_mask))
