"""Argument checks for the public boundary.

Every check raises a ``ValueError`` that names the argument, shows the bad value and says what is allowed.
Internal helpers trust their inputs; only the public functions call these.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor


def describe(value) -> str:
    """A short, readable rendering of a value for an error message."""
    if isinstance(value, Tensor):
        if value.numel() <= 6:
            shown = [round(v, 4) if isinstance(v, float) else v for v in value.detach().cpu().flatten().tolist()]
            return f"tensor {shown} (shape {tuple(value.shape)}, {value.dtype}, {value.device})"
        return f"tensor of shape {tuple(value.shape)} ({value.dtype}, {value.device})"
    return repr(value)


def check_real(name: str, value, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """A Python number inside an interval; returns it as float."""
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {describe(value)}")
    value = float(value)
    if not _inside(value, low, high, low_open, high_open):
        raise ValueError(f"{name} must be in {_interval(low, high, low_open, high_open)}, got {value!r}")
    return value


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool):  # True is an int to Python, never a count to a caller
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if not isinstance(value, int):
        if isinstance(value, Real) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be an integer, got {describe(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be an integer in {_interval(low, high, False, False)}, got {value}")
    return value


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_images(images) -> Tensor:
    if not isinstance(images, Tensor):
        raise ValueError(f"images must be a torch.Tensor of shape [B, C, H, W], got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"images must be 4-D [B, C, H, W], got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be a floating-point tensor, got dtype {images.dtype}")
    if min(images.shape) == 0:
        raise ValueError(f"images must be non-empty, got shape {tuple(images.shape)}")
    return images


def check_size(height, width) -> tuple[int, int]:
    height = check_int("height", height, low=1)
    width = check_int("width", width, low=1)
    return height, width


def check_generator(generator, device: torch.device) -> torch.Generator | None:
    if generator is None:
        return None
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    if not same_device(generator.device, device):
        raise ValueError(
            f"generator is on {generator.device} but the tensors are on {device}; "
            f"create it with torch.Generator(device={str(device)!r})"
        )
    return generator


def same_device(a: torch.device, b: torch.device) -> bool:
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    # torch.Generator("cuda") reports index 0 once used; an unindexed device matches the current one.
    return a.index is None or b.index is None or a.index == b.index


def check_lam(lam, batch: int | None = None) -> Tensor:
    """λ: a float tensor of shape [B] (or [] when batch is given) with values in [0, 1]."""
    if not isinstance(lam, Tensor):
        raise ValueError(f"lam must be a tensor of shape [B] with values in [0, 1], got {describe(lam)}")
    if not lam.is_floating_point():
        raise ValueError(f"lam must be a floating-point tensor, got dtype {lam.dtype}")
    if batch is None and lam.ndim != 1:
        raise ValueError(f"lam must have shape [B], got shape {tuple(lam.shape)}")
    if batch is not None and lam.ndim > 1 or (lam.ndim == 1 and batch is not None and lam.shape[0] != batch):
        raise ValueError(f"lam must be a scalar or have shape [{batch}], got shape {tuple(lam.shape)}")
    check_values_in("lam", lam, 0.0, 1.0)
    return lam


def check_values_in(name: str, tensor: Tensor, low: float | None, high: float | None,
                    *, low_open: bool = False, high_open: bool = False) -> None:
    """Value check on a tensor (one host sync)."""
    bad = ~torch.isfinite(tensor)
    if low is not None:
        bad |= tensor <= low if low_open else tensor < low
    if high is not None:
        bad |= tensor >= high if high_open else tensor > high
    if bool(bad.any()):
        first = tensor[bad].flatten()[0].item()
        raise ValueError(
            f"{name} must be in {_interval(low, high, low_open, high_open)}, got a value of {first!r} "
            f"(in {describe(tensor)})"
        )


def _inside(value: float, low, high, low_open, high_open) -> bool:
    if low is not None and (value <= low if low_open else value < low):
        return False
    if high is not None and (value >= high if high_open else value > high):
        return False
    return True


def _interval(low, high, low_open, high_open) -> str:
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"
