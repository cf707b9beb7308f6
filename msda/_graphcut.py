"""PuzzleMix's labelling problem on a block grid: posed batched in torch, solved per sample by graph cuts.

Kim, Choo, Song. "Puzzle Mix: Exploiting Saliency and Local Statistics for Optimal Mixup", ICML 2020,
arXiv:2009.06962, §3 (eq. 3) and the official code's ``graphcut_multi`` / ``mixup_graph``.

Each of the n × n blocks gets a label l ∈ {0, …, L − 1} (L = ``n_labels``, 2 or 3), which shows the own image
with weight ``1 − l/(L − 1)``. The labelling minimises

    E(l) = Σ_i U_i(l_i) + Σ_{i~j} w_ij · (l_i − l_j)² / (L − 1)²

over 4-neighbours i ~ j, with

- the unary term ``U_i(l) = (1 − t)·s_partner(i) + t·s_own(i) + prior(l)``, t = l/(L − 1): showing the own image
  at block i loses the partner's saliency there and vice versa (saliencies normalised to sum 1 per image);
- the prior ``−η/n² · log p(l | λ)``, p the binomial law of L − 1 draws with P(own) = λ (L = 2: λ, 1 − λ;
  L = 3: λ², 2λ(1 − λ), (1 − λ)²). A label of probability 0 (λ = 0 or 1) is forbidden outright
  (:data:`FORBIDDEN`), where the official code's ``−log(p + 1e-8)`` only discourages it;
- the smoothness ``w_ij = β′ + β′γ·d_ij`` with β′ = β/(16n): a constant cost per label change, plus the
  local-statistics term d — how different the pixels on both sides of the block edge are when the two blocks
  show different images. As in the official code, the part of that term that depends on one block's label
  only is folded into the unaries, and the symmetric rest is d_ij.

The solver is pyGCO (``gco-wrapper``, the official code's): α–β swap on integer costs scaled by 1000·n². For
pixels in [0, 1], |d| ≤ 1, so w ≥ β′(1 − γ) ≥ 0 for γ ≤ 1: with L = 2 the energy is submodular and the cut is
its exact minimum (up to the integer rounding); with L = 3 swap moves reach a local minimum, where no single
block's label change lowers E.
The per-sample loop here is the solver's; the problem itself is built batched, and moved to the host once.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

FORBIDDEN = 1e3
"""Unary cost (in units of the normalised saliency, whose total is 1) of a label the prior gives probability 0."""


def _gco():
    try:
        import gco
    except ImportError:
        raise ImportError("puzzlemix solves its labelling with graph cuts from pyGCO: pip install gco-wrapper") \
            from None
    return gco


def normalised_grid(saliency: Tensor, side: int) -> Tensor:
    """[B, side, side] block means of a [B, H, W] saliency map, scaled to sum 1 per sample (uniform if all 0)."""
    pooled = F.adaptive_avg_pool2d(saliency[:, None].float(), side)[:, 0]
    total = pooled.flatten(1).sum(1)[:, None, None]
    uniform = torch.full_like(pooled, 1.0 / (side * side))
    return torch.where(total > 0, pooled / total.clamp_min(1e-30), uniform)


def label_prior(lam: Tensor, n_labels: int, blocks: int, eta: float) -> Tensor:
    """[B, L] prior cost of each label: −η/n²·log p(l | λ), :data:`FORBIDDEN` where p = 0."""
    lam = lam.double()
    if n_labels == 2:
        prob = torch.stack([lam, 1 - lam], 1)
    else:
        prob = torch.stack([lam * lam, 2 * lam * (1 - lam), (1 - lam) * (1 - lam)], 1)
    cost = -eta / blocks ** 2 * prob.clamp_min(1e-300).log()
    return torch.where(prob > 0, cost, torch.full_like(cost, FORBIDDEN))


def _edge_penalty(upper: Tensor, lower: Tensor, cells: int, vertical: bool) -> Tensor:
    """Mean |difference| across each block edge between the cell rows (columns) on either side of it.

    upper/lower: [B, C, m, m] pooled images (m = n·cells); vertical: the edge between block rows. Returns
    [B, n − 1, n] (vertical) or [B, n, n − 1].
    """
    if vertical:
        diff = (upper[:, :, :-1, :] - lower[:, :, 1:, :])[:, :, cells - 1::cells, :]
        return F.avg_pool2d(diff.abs().mean(1, keepdim=True), (1, cells))[:, 0]
    diff = (upper[:, :, :, :-1] - lower[:, :, :, 1:])[:, :, :, cells - 1::cells]
    return F.avg_pool2d(diff.abs().mean(1, keepdim=True), (cells, 1))[:, 0]


def labelling_problem(saliency_own: Tensor, saliency_partner: Tensor, images_own: Tensor, images_partner: Tensor,
                      lam: Tensor, *, blocks: int, n_labels: int, beta: float, gamma: float, eta: float,
                      neigh_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """The energy's terms, batched (float64): ``unary`` [B, n, n, L], ``edge_v`` [B, n − 1, n] (between block
    (r, c) and (r + 1, c)) and ``edge_h`` [B, n, n − 1] (between (r, c) and (r, c + 1)).

    saliency_*: [B, n, n] normalised block saliencies; images_*: [B, C, H, W] in [0, 1]; lam: [B].
    """
    height, width = images_own.shape[-2:]
    block_size = max(1, min(height, width) // blocks)
    cells = max(1, block_size // min(neigh_size, block_size))
    grid = blocks * cells
    own = F.adaptive_avg_pool2d(images_own.double(), grid)
    partner = F.adaptive_avg_pool2d(images_partner.double(), grid)
    scale = beta / blocks / 16.0
    shown = (partner, own)  # index 0: the partner is shown, 1: the own image

    cost_own = saliency_partner.double().clone()  # showing the own image loses the partner's saliency
    cost_partner = saliency_own.double().clone()
    edges = []
    for vertical in (True, False):
        pw = [[scale * gamma * _edge_penalty(shown[a], shown[b], cells, vertical) for b in (0, 1)] for a in (0, 1)]
        first = (slice(None), slice(None, -1), slice(None)) if vertical else (slice(None), slice(None), slice(None, -1))
        second = (slice(None), slice(1, None), slice(None)) if vertical else (slice(None), slice(None), slice(1, None))
        cost_own[first] += (pw[1][0] + pw[1][1]) / 2
        cost_partner[first] += (pw[0][1] + pw[0][0]) / 2
        cost_own[second] += (pw[0][1] + pw[1][1]) / 2
        cost_partner[second] += (pw[1][0] + pw[0][0]) / 2
        edges.append((pw[1][0] + pw[0][1] - pw[1][1] - pw[0][0]) / 2 + scale)

    weights = torch.linspace(0, 1, n_labels, dtype=torch.float64, device=lam.device)  # t = l/(L − 1)
    unary = (1 - weights) * cost_own[..., None] + weights * cost_partner[..., None]
    unary = unary + label_prior(lam, n_labels, blocks, eta)[:, None, None, :]
    return unary, edges[0], edges[1]


def labelling_energy(labels: Tensor, unary: Tensor, edge_v: Tensor, edge_h: Tensor) -> Tensor:
    """[B] float64: E(labels) for integer labels [B, n, n] under :func:`labelling_problem`'s terms."""
    n_labels = unary.shape[-1]
    labels = labels.long()
    data = unary.gather(-1, labels[..., None])[..., 0].flatten(1).sum(1)
    jump_v = (labels[:, 1:, :] - labels[:, :-1, :]).double() ** 2 / (n_labels - 1) ** 2
    jump_h = (labels[:, :, 1:] - labels[:, :, :-1]).double() ** 2 / (n_labels - 1) ** 2
    return data + (edge_v * jump_v).flatten(1).sum(1) + (edge_h * jump_h).flatten(1).sum(1)


def solve_labelling(unary: Tensor, edge_v: Tensor, edge_h: Tensor) -> Tensor:
    """[B, n, n] int64 labels minimising :func:`labelling_energy`, by α–β swap graph cuts (pyGCO), one sample
    at a time on the host; returned on the inputs' device."""
    gco = _gco()
    batch, blocks, _, n_labels = unary.shape
    if blocks == 1:
        return unary[..., 0, 0, :].argmin(-1).reshape(batch, 1, 1)
    scale = 1000.0 * blocks ** 2
    # (l − l′)² / (L − 1)² with integer costs: the jump table holds (l − l′)², the edges are divided by (L − 1)².
    edge_scale = scale / (n_labels - 1) ** 2
    unary_int = (unary * scale).round().cpu().numpy().astype(np.int32)
    edge_v_int = (edge_v * edge_scale).round().cpu().numpy().astype(np.int32)
    edge_h_int = (edge_h * edge_scale).round().cpu().numpy().astype(np.int32)
    steps = np.arange(n_labels)
    jumps = ((steps[:, None] - steps[None, :]) ** 2).astype(np.int32)
    labels = np.empty((batch, blocks * blocks), dtype=np.int64)
    for sample in range(batch):  # the solver is per sample (a graph each); everything around it is batched
        labels[sample] = gco.cut_grid_graph(unary_cost=unary_int[sample], pairwise_cost=jumps,
                                            cost_v=edge_v_int[sample], cost_h=edge_h_int[sample],
                                            n_iter=-1, algorithm="swap")
    return torch.from_numpy(labels).reshape(batch, blocks, blocks).to(unary.device)
