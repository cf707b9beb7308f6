"""Computing a per-sample result only where it is needed, without making an accelerator wait for the host."""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def take(tensor: Tensor, rows: Tensor | None) -> Tensor:
    return tensor if rows is None else tensor[rows]


def replace_rows(select: Tensor, compute: Callable[[Tensor | None], Tensor], current: Tensor, *,
                 inplace: bool = False) -> Tensor:
    """`current` with the rows marked by `select` [B] replaced by ``compute(rows)``.

    ``compute`` gets the selected row indices, or None meaning all rows. On the CPU only the selected rows
    are computed: reading the selection costs nothing there. On an accelerator every row is computed and
    the selection applied with ``where``, so the device never waits for the host. With ``inplace`` the CPU
    path writes into `current` (for buffers the caller owns).
    """
    if select.device.type == "cpu":
        rows = select.nonzero().flatten()
        if rows.numel() == 0:
            return current
        out = current if inplace else current.clone()
        out[rows] = compute(rows).to(out.dtype)
        return out
    return torch.where(select.view(-1, *[1] * (current.ndim - 1)), compute(None).to(current.dtype), current)
