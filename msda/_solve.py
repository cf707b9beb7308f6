"""Batched root finding for calibrating a mask's area to a requested λ."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def bisect(area: Callable[[Tensor], Tensor], target: Tensor, low: float | Tensor, high: float | Tensor, *,
           iters: int = 32, log: bool = False) -> Tensor:
    """Per sample, the x in [low, high] with area(x) = target, for an area increasing in x.

    Args:
        area: maps a [B] tensor of x to the [B] areas they give (vectorised over the batch).
        target: [B] wanted areas. Targets outside the reachable range give the nearest end.
        low, high: the bracket, numbers or [B] tensors.
        log: bisect in log-space (for scale parameters spanning orders of magnitude; needs low > 0).

    Returns [B] float32. Runs a fixed number of iterations: no host sync.
    """
    lo = torch.as_tensor(low, dtype=target.dtype, device=target.device).expand_as(target).clone()
    hi = torch.as_tensor(high, dtype=target.dtype, device=target.device).expand_as(target).clone()
    if log:
        lo, hi = lo.log(), hi.log()
    for _ in range(iters):
        mid = (lo + hi) / 2
        too_small = area(mid.exp() if log else mid) < target
        lo = torch.where(too_small, mid, lo)
        hi = torch.where(too_small, hi, mid)
    mid = (lo + hi) / 2
    return mid.exp() if log else mid
