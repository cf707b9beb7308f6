"""Attentive CutMix: the partner's k most attended cells of a g × g grid, pasted at the same places.

Walawalkar, Shen, Liu, Savvides. "Attentive CutMix: An Enhanced Data Augmentation Approach for Deep Learning
Based Image Classification", ICASSP 2020. arXiv:2003.13048.

Guidance: ``cams=`` [B, h, w], each image's class activation map for its own label
(:func:`msda.guidance.class_activation_maps`). The paper takes the attention of a separately pretrained
classifier (the 7 × 7 final feature map of an ImageNet ResNet-50); in this project's training loop the model
being trained gives it (one extra no-grad forward per step), and any classifier's CAMs can be passed. The mixer
never runs the model.

The partner's map is averaged onto a g × g grid (g = ``grid``, paper: 7); its ``top_k`` cells (paper: 6) — the
most attended, ties to the lower cell index — are cut from the partner and pasted at the same places in the
image. A cell is the set of pixels that nearest-neighbour upsampling of the grid gives it. The label weight is
the mask's mean (the share of cells kept); the requested λ is not used, so ``top_k`` alone sets the area:
k / g² of it pasted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .._checks import describe
from ..distributions import Drawn
from ..registry import Method, MethodInfo, Mixed, Param, blend, register

INFO = MethodInfo(
    name="attentive_cutmix",
    title="Attentive CutMix",
    summary="Pastes the partner's k most attended cells of a g × g grid (its class activation map) at the same "
            "places in the image.",
    formula=r"M = 1 - \mathbb{1}\big[\operatorname{top}_k \operatorname{pool}_{g\times g} A(x_p)\big],\ "
            r"\tilde x = M\odot x + (1-M)\odot x_p,\ \lambda = \tfrac{1}{HW}\textstyle\sum M",
    paper='Walawalkar, Shen, Liu, Savvides, "Attentive CutMix: An Enhanced Data Augmentation Approach for Deep '
          'Learning Based Image Classification", ICASSP 2020',
    arxiv="2003.13048",
    default_alpha=None,
    uses_lam=False,
    needs=("cams",),
    image_free_mask=False,
    params=(
        Param("grid", "side g of the attention grid (g × g cells)", default=7, kind="int", low=1,
              per_sample=False),
        Param("top_k", "cells pasted from the partner: its k most attended", default=6, kind="int", low=0),
        Param("cams", "[B, h, w] attention maps, each image for its own label (msda.guidance.class_activation_maps)",
              kind="tensor", sampled=Drawn("passed as cams=…: the model's class activation maps")),
    ),
    notes="Paper: g = 7, k = 6 (6/49 ≈ 12 % of the image pasted).",
)


def top_cells(cams, grid: int, top_k) -> torch.Tensor:
    """[B, g, g] bool: each map's `top_k` largest g × g cell means (ties: lower row-major index first)."""
    cells = F.adaptive_avg_pool2d(cams[:, None].float(), grid)[:, 0].flatten(1)
    order = cells.argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(grid * grid, device=cams.device).expand_as(order))
    return (rank < top_k[:, None]).reshape(-1, grid, grid)


class AttentiveCutMix(Method):
    def mix(self, batch, partner, lam, *, alpha, generator, params):
        lam = self.draw_lam(lam, alpha, batch, generator)
        read = self.reader(batch, generator, params)
        images = batch.images
        height, width = images.shape[-2:]
        grid = read.value("grid")
        if grid > min(height, width):
            raise ValueError(f"attentive_cutmix: grid must be at most the image's shorter side "
                             f"{min(height, width)}, got {grid}")
        top_k = read.tensor("top_k", dtype=torch.int64)
        if bool((top_k > grid * grid).any()):
            raise ValueError(f"attentive_cutmix: top_k must be at most grid² = {grid * grid}, "
                             f"got {describe(top_k.unique())}")
        cams = self.guidance(read, batch, "cams")
        pasted = top_cells(cams[partner], grid, top_k)
        mask = 1.0 - F.interpolate(pasted[:, None].float(), size=(height, width), mode="nearest")
        read.derive("cells", pasted)
        return Mixed(images=blend(images, images[partner], mask), mask=mask, lam_requested=lam, params=read.used,
                     details=read.derived)


register(AttentiveCutMix(INFO))
