"""A wrapper that lets a network take images in [0, 1]: normalisation lives inside the model.

Keeping mean/std as buffers of the model means a checkpoint carries its own input convention, and mixing,
occlusion and robustness code can all work on [0, 1] images without knowing the dataset's statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .._checks import describe


class Normalized(nn.Module):
    """``forward(x) = net((x − mean) / std)`` with per-channel mean/std.

    Args:
        net: the network proper; exposed as ``.net`` (e.g. for :func:`msda.models.cam_layer`).
        mean: per-channel means, a sequence of C numbers (or a [C] tensor).
        std: per-channel standard deviations, C numbers > 0.

    Input [B, C, H, W] in [0, 1]; output whatever ``net`` returns. ``mean``/``std`` are float32 buffers of
    shape [1, C, 1, 1], so they follow ``.to(device)`` and are saved in the state dict.
    """

    def __init__(self, net: nn.Module, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor) -> None:
        super().__init__()
        if not isinstance(net, nn.Module):
            raise ValueError(f"net must be a torch.nn.Module, got {type(net).__name__}")
        mean_t = _channel_vector("mean", mean)
        std_t = _channel_vector("std", std)
        if mean_t.numel() != std_t.numel():
            raise ValueError(f"mean and std must have one value per channel each, got {mean_t.numel()} means "
                             f"and {std_t.numel()} standard deviations")
        if bool((std_t <= 0).any()):
            raise ValueError(f"std must be > 0 in every channel, got {describe(std_t)}")
        self.net = net
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1))
        self.register_buffer("std", std_t.view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.net((x - self.mean) / self.std)

    def extra_repr(self) -> str:
        mean = ", ".join(f"{v:.4f}" for v in self.mean.flatten().tolist())
        std = ", ".join(f"{v:.4f}" for v in self.std.flatten().tolist())
        return f"mean=({mean}), std=({std})"


def _channel_vector(name: str, values) -> Tensor:
    try:
        tensor = torch.as_tensor(values, dtype=torch.float32).detach().cpu().flatten().clone()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{name} must be a sequence of numbers, one per channel, got {describe(values)}") from None
    if tensor.numel() == 0 or not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"{name} must be a non-empty sequence of finite numbers, got {describe(values)}")
    return tensor
