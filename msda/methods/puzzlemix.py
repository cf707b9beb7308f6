"""PuzzleMix: a saliency-aware block labelling found by graph cuts, then salient blocks moved where they show.

Kim, Choo, Song. "Puzzle Mix: Exploiting Saliency and Local Statistics for Optimal Mixup", ICML 2020.
arXiv:2009.06962.

Guidance: ``saliency=`` [B, H, W], the ℓ2 norm over channels of the input gradient of the loss
(:func:`msda.guidance.input_gradient_saliency`; one extra forward and backward pass per training step, as in the
paper). The mixer never runs the model.

1. **Labelling** (§3, eq. 3). The image is cut into n × n blocks (n = ``block_num``, 2^k with k ~ U{1, …, 4} once
   per batch, as the official code draws it). Each block shows the own image, the partner or (``n_labels=3``,
   the official CIFAR setting) an even blend, chosen to keep the most saliency of both images under a smoothness
   cost (β), a local-statistics cost across block edges (γ) and a prior that the own image covers λ of the
   blocks (η); :mod:`msda._graphcut` poses the problem and solves it with pyGCO's graph cuts.
2. **Transport** (§3.2, Alg. 1). On a t × t grid (t = max(n, ``transport_blocks``); the official CIFAR
   ``t_size`` of 4 px at 32 px is t = 8), the blocks of each image are moved so that its salient blocks land
   where the labelling shows that image: the official discrete transport — every block picks its cheapest target
   (cost ``t_eps``·distance² − saliency·visible), each contested target keeps its cheapest claimant and the losers
   pay +1 and choose again, for ``transport_iters`` rounds (default t). This project then hands the targets no
   block won to the blocks that won none, in index order, so the plan is a permutation and every block of the
   image appears exactly once (the official code leaves such targets black). In a contest only the blocks that
   chose the target compete, as in the paper's Algorithm 1 (non-claimants cost a large v there; the official
   code's column minimum counts them as 0, which can leave a target unassigned on a tie). ``transport=False`` is the mask-only variant.

The mixed image is ``mask ⊙ T_own(x) + (1 − mask) ⊙ T_partner(x_p)``, the mask the labelling upsampled (nearest),
and the label weight is the mask's mean, as always. Images whose sides are not multiples of the grid get blocks
whose sizes differ by one pixel; a moved block is then resampled (nearest) into its target's size.

``out.params`` holds the saliency, the labelling [B, n, n] (mask values) and the two transport plans [B, t²]
(source block of every target block): a replay needs no model and no solver.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import describe
from .._graphcut import labelling_problem, normalised_grid, solve_labelling
from ..distributions import Derived, Drawn
from ..registry import Method, MethodInfo, Mixed, Param, blend, register

INFO = MethodInfo(
    name="puzzlemix",
    title="PuzzleMix",
    summary="Labels each block of a grid with the image whose saliency it should keep (graph cuts), then moves "
            "each image's salient blocks to where that image is shown.",
    formula=r"z^* = \arg\min_z -\textstyle\sum_i s_{z_i}(i) + \beta\sum_{i\sim j}\psi(z_i,z_j)"
            r" + \gamma\sum_{i\sim j}\phi_{ij}(z_i,z_j) - \eta\log p(z\mid\lambda),\ "
            r"\tilde x = z^*\odot \Pi_0^\top x + (1-z^*)\odot \Pi_1^\top x_p",
    paper='Kim, Choo, Song, "Puzzle Mix: Exploiting Saliency and Local Statistics for Optimal Mixup", ICML 2020',
    arxiv="2009.06962",
    default_alpha=1.0,
    mask_only=False,
    needs=("saliency",),
    image_free_mask=False,
    params=(
        Param("block_num", "side of the block grid the labelling is solved on (n × n blocks)", kind="int", low=1,
              per_sample=False,
              sampled=Drawn("2^k, k ~ U{1, …, 4}, once per batch (the official code's), at most the image side",
                            low=2, high=16)),
        Param("n_labels", "labels per block: 2 (own or partner) or 3 (also an even blend; the official CIFAR "
              "setting)", default=3, kind="choice", choices=(2, 3)),
        Param("beta", "smoothness: cost of a label change between neighbouring blocks", default=1.2, low=0.0,
              per_sample=False),
        Param("gamma", "local statistics: weight of the pixel difference across a block edge (≤ 1 keeps the "
              "two-label cut exact)", default=0.5, low=0.0, high=1.0, per_sample=False),
        Param("eta", "weight of the prior that the own image covers λ of the blocks", default=0.2, low=0.0,
              per_sample=False),
        Param("neigh_size", "pixels pooled on each side of a block edge for the local-statistics term", default=4,
              kind="int", low=1, per_sample=False),
        Param("transport", "move each image's salient blocks to where it is shown (False: mask only)",
              default=True, kind="bool"),
        Param("transport_blocks", "side of the transport grid (at least block_num; ≤ 32)", default=8, kind="int",
              low=1, high=32, per_sample=False),
        Param("transport_iters", "rounds of the discrete transport", kind="int", low=0, per_sample=False,
              sampled=Derived("the transport grid's side (the official code's)")),
        Param("t_eps", "weight of the distance a block moves against the saliency it gains", default=0.8,
              low=0.0, per_sample=False),
        Param("saliency", "[B, H, W] saliency of each image (msda.guidance.input_gradient_saliency)",
              kind="tensor", sampled=Drawn("passed as saliency=…: the input-gradient norm of the model's loss")),
        Param("labelling", "[B, n, n] the own image's weight on each block (pinned: no graph cut)", kind="tensor",
              sampled=Drawn("the graph-cut minimum of the paper's objective")),
        Param("plan_own", "[B, t²] long: the source block of each target block of the own image",
              kind="tensor", sampled=Drawn("the discrete transport of the own image's blocks")),
        Param("plan_partner", "[B, t²] long: the source block of each target block of the partner",
              kind="tensor", sampled=Drawn("the discrete transport of the partner's blocks")),
    ),
    notes="The per-sample loop is pyGCO's graph cut (one small grid graph per sample, on the host); the problem, "
          "the transport and the rendering are batched on the images' device.",
)

BLOCK_CHOICES = (2, 4, 8, 16)


def block_edges(size: int, blocks: int, device) -> tuple[Tensor, Tensor, Tensor]:
    """For an axis of `size` pixels cut into `blocks` (nearest-neighbour upsampling's partition): each pixel's
    block [size], each block's first pixel [blocks] and its length [blocks]."""
    index = torch.arange(size, device=device)
    block = torch.div(index * blocks, size, rounding_mode="floor")
    start = torch.div(torch.arange(blocks + 1, device=device) * size + blocks - 1, blocks, rounding_mode="floor")
    return block, start[:-1], start[1:] - start[:-1]


def transport_plan(visible: Tensor, saliency: Tensor, *, eps: float, iterations: int) -> Tensor:
    """The discrete transport of one image's blocks on a t × t grid, batched: [B, t²] source block of every target.

    Args:
        visible: [B, t, t] bool, where the mask shows this image.
        saliency: [B, t, t] normalised block saliency of this image.
    """
    batch, side = visible.shape[0], visible.shape[-1]
    count = side * side
    coords = torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij"), -1).reshape(-1, 2)
    distance = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1).to(saliency.device, torch.float32)
    distance = distance / max(side - 1, 1) ** 2
    cost = eps * distance[None] - saliency.reshape(batch, count, 1).float() * visible.reshape(batch, 1, count).float()
    sources = torch.arange(count, device=cost.device).expand(batch, count)
    winner = torch.full((batch, count), count, device=cost.device)  # [B, target]: its source, count if none
    for _ in range(iterations):
        choice = cost.argmin(-1)  # [B, source]: each block's cheapest target
        bid = cost.gather(-1, choice[..., None])[..., 0]
        best = torch.full_like(bid, math.inf).scatter_reduce_(1, choice, bid, "amin")  # [B, target]
        top = bid == best.gather(1, choice)  # the cheapest claimants of their target
        winner = torch.full_like(choice, count).scatter_reduce_(1, choice, torch.where(top, sources, count), "amin")
        lost = winner.gather(1, choice) != sources
        cost.scatter_add_(-1, choice[..., None], lost[..., None].float())  # losers pay +1 for that target
    # Complete the partial assignment: free targets take free sources in index order, so no block is lost.
    placed = winner < count  # [B, target]
    source = winner.clamp_max(count - 1)
    used = torch.zeros(batch, count + 1, dtype=torch.bool, device=cost.device).scatter_(1, winner, True)[:, :count]
    free_sources = used.int().argsort(dim=1, stable=True)  # unused sources first, in index order
    free_targets = placed.int().argsort(dim=1, stable=True)
    filled = torch.empty_like(source).scatter_(1, free_targets, free_sources)
    return torch.where(placed, source, filled)


def move_blocks(images: Tensor, plan: Tensor, side: int) -> Tensor:
    """[B, C, H, W]: target block j of each image shows its source block ``plan[:, j]`` (a t × t grid; blocks of
    unequal size are resampled nearest-neighbour into the target's)."""
    batch, channels, height, width = images.shape
    device = images.device
    row_block, row_start, row_len = block_edges(height, side, device)
    col_block, col_start, col_len = block_edges(width, side, device)
    target = (row_block[:, None] * side + col_block[None, :]).reshape(-1)  # [H·W]
    source = plan[:, target]  # [B, H·W]
    src_row, src_col = torch.div(source, side, rounding_mode="floor"), source % side
    ys = torch.arange(height, device=device).repeat_interleave(width)
    xs = torch.arange(width, device=device).repeat(height)
    offset_y = ys - row_start[row_block].repeat_interleave(width)
    offset_x = xs - col_start[col_block].repeat(height)
    y = row_start[src_row] + torch.div(offset_y * row_len[src_row], row_len[row_block].repeat_interleave(width),
                                       rounding_mode="floor")
    x = col_start[src_col] + torch.div(offset_x * col_len[src_col], col_len[col_block].repeat(height),
                                       rounding_mode="floor")
    index = (y * width + x)[:, None, :].expand(batch, channels, -1)
    return images.flatten(2).gather(2, index).reshape(batch, channels, height, width)


def _pinned_tensor(read, name: str, shape: tuple, dtype_kind: str) -> Tensor:
    value = read.value(name)
    if tuple(value.shape) != shape or (dtype_kind == "long" and value.dtype != torch.int64) \
            or (dtype_kind == "float" and not value.is_floating_point()):
        raise ValueError(f"puzzlemix: {name} must be a {list(shape)} {dtype_kind} tensor, got {describe(value)}")
    return value


class PuzzleMix(Method):
    def needs(self, params) -> tuple[str, ...]:
        if "saliency" in params:
            return ()
        solved = "labelling" in params
        moved = params.get("transport", True) is False or ("plan_own" in params and "plan_partner" in params)
        return () if solved and moved else ("saliency",)

    def _blocks(self, read, height: int, width: int, generator, device) -> int:
        side = min(height, width)
        if read.pinned("block_num"):
            blocks = read.value("block_num")
            if blocks > side:
                raise ValueError(f"puzzlemix: block_num must be at most the image side {side}, got {blocks}")
            return blocks
        choices = [b for b in BLOCK_CHOICES if b <= side] or [1]
        pick = torch.randint(len(choices), (1,), generator=generator, device=device)
        return read.record("block_num", choices[int(pick)])

    def mix(self, batch, partner, lam, *, alpha, generator, params):
        lam = self.draw_lam(lam, alpha, batch, generator)
        read = self.reader(batch, generator, params)
        images = batch.images
        size, height, width = batch.size, *images.shape[-2:]
        blocks = self._blocks(read, height, width, generator, batch.device)
        n_labels, transport = read.value("n_labels"), read.value("transport")
        # Read every setting up front, so a replay (labelling and plans pinned) returns the same params.
        weights = {name: read.value(name) for name in ("beta", "gamma", "eta", "neigh_size")}
        t_eps = read.value("t_eps")
        has_saliency = read.pinned("saliency") or batch.saliency is not None
        saliency = self.guidance(read, batch, "saliency") if has_saliency else None

        if read.pinned("labelling"):
            labelling = _pinned_tensor(read, "labelling", (size, blocks, blocks), "float").to(batch.device)
        else:
            grid = normalised_grid(saliency, blocks)
            unary, edge_v, edge_h = labelling_problem(
                grid, grid[partner], images.float(), images[partner].float(), lam, blocks=blocks, n_labels=n_labels,
                **weights)
            labels = solve_labelling(unary, edge_v, edge_h)
            labelling = read.record("labelling", 1.0 - labels.float() / (n_labels - 1))
            read.derive("saliency_grid", grid)
        mask = F.interpolate(labelling[:, None].float(), size=(height, width), mode="nearest")

        own, other = images, images[partner]
        if transport:
            side = min(max(blocks, read.value("transport_blocks")), height, width)
            iterations = read.value("transport_iters")
            iterations = read.derive("transport_iters", side) if iterations is None else iterations
            shown = F.interpolate(labelling[:, None].float(), size=(side, side), mode="nearest")[:, 0]
            plans = {}
            for name, visible, rows in (("plan_own", shown > 0, None), ("plan_partner", shown < 1, partner)):
                if read.pinned(name):
                    plans[name] = _pinned_tensor(read, name, (size, side * side), "long").to(batch.device)
                else:
                    grid = normalised_grid(saliency if rows is None else saliency[rows], side)
                    plans[name] = read.record(name, transport_plan(visible, grid, eps=t_eps,
                                                                   iterations=iterations))
            own = move_blocks(images, plans["plan_own"], side)
            other = move_blocks(images[partner], plans["plan_partner"], side)
            read.derive("transport_side", side)
        read.derive("block_num", blocks)
        return Mixed(images=blend(own, other, mask), mask=mask, lam_requested=lam, params=read.used,
                     details=read.derived)


register(PuzzleMix(INFO))
