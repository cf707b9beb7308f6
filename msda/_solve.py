"""Batched root finding for calibrating a mask's area to a requested λ."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def bisect(area: Callable[[Tensor], Tensor], target: Tensor, low: float | Tensor, high: float | Tensor, *,
           iters: int = 32, log: bool = False, levels: int = 1) -> Tensor:
    """Per sample, the x in [low, high] with area(x) = target, for an area increasing in x.

    Args:
        area: maps x to the areas it gives, vectorised over the batch: a [B] tensor to [B] areas, or, with
            ``levels`` > 1, a [B, K] tensor (K candidates per sample) to [B, K] areas.
        target: [B] wanted areas. Targets outside the reachable range give the nearest end.
        low, high: the bracket, numbers or [B] tensors.
        log: bisect in log-space (for scale parameters spanning orders of magnitude; needs low > 0).
        levels: halvings per call of ``area``. With L levels, one call evaluates the 2^L − 1 midpoints the
            next L halvings could visit — computed exactly as those halvings compute them — and the halvings
            are then read off the results: the same answer as L single steps, bit for bit, in one call. Fewer,
            larger calls: each kernel launch, or each wake-up of a CPU's worker threads, is paid once per L.

    Returns [B] float32 (target's dtype). Runs a fixed number of iterations: no host sync.
    """
    lo = torch.as_tensor(low, dtype=target.dtype, device=target.device).expand_as(target).clone()
    hi = torch.as_tensor(high, dtype=target.dtype, device=target.device).expand_as(target).clone()
    if log:
        lo, hi = lo.log(), hi.log()
    done = 0
    while done < iters:
        if levels == 1:
            mid = (lo + hi) / 2
            too_small = area(mid.exp() if log else mid) < target
            lo = torch.where(too_small, mid, lo)
            hi = torch.where(too_small, hi, mid)
            done += 1
        else:
            depth = min(levels, iters - done)
            lo, hi = _halve(area, target, lo, hi, depth, log)
            done += depth
    mid = (lo + hi) / 2
    return mid.exp() if log else mid


def _halve(area: Callable[[Tensor], Tensor], target: Tensor, lo: Tensor, hi: Tensor, depth: int, log: bool
           ) -> tuple[Tensor, Tensor]:
    """`depth` bisection steps from [lo, hi] with one call of ``area`` on every midpoint they could visit."""
    # The midpoints as a binary heap, level by level: node i's halves are nodes 2i + 1 and 2i + 2.
    lows, highs, levels = lo[:, None], hi[:, None], []
    for _ in range(depth):
        mids = (lows + highs) / 2
        levels.append(mids)
        lows = torch.stack([lows, mids], -1).flatten(1)
        highs = torch.stack([mids, highs], -1).flatten(1)
    points = torch.cat(levels, 1)  # [B, 2^depth − 1]
    too_small = area(points.exp() if log else points) < target[:, None]
    node = torch.zeros_like(lo, dtype=torch.long)[:, None]
    for _ in range(depth):
        mid = points.gather(1, node)[:, 0]
        step = too_small.gather(1, node)
        lo = torch.where(step[:, 0], mid, lo)
        hi = torch.where(step[:, 0], hi, mid)
        node = 2 * node + 1 + step.long()
    return lo, hi
