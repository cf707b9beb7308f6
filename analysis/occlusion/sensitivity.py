"""Occlusion sensitivity maps (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks",
ECCV 2014, arXiv:1311.2901), batched over windows."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from msda._checks import check_images, check_int, check_real, describe
from ..cam import evaluation_mode
from .occluders import DEFAULT_FILL, _box_indicator

# ----------------------------------------------------------------------------------------------- sensitivity


@torch.no_grad()
def occlusion_sensitivity(model: nn.Module, images: Tensor, *, window, stride, target=None,
                          fill: float = DEFAULT_FILL, batch_size: int = 256) -> Tensor:
    """Zeiler & Fergus's occlusion sensitivity: how much the target class's probability drops where a grey
    window covers the image.

    Windows slide over rows ``0, s, 2s, …`` and the last position ``H − window`` (likewise columns), so every
    pixel is covered. Each window gives one number per image, ``p(target | image) − p(target | image with the
    window filled)``, and a pixel's value is the mean over the windows covering it.

    Args:
        model: classifier taking `images` ([0, 1] for a ``Normalized`` model), on their device; run in eval
            mode (its mode is restored).
        images: [B, C, H, W].
        window: window side in pixels, an int or (height, width), at most the image's size.
        stride: step in pixels, an int or (height, width), ≥ 1.
        target: None → the predicted class of each clean image; an int; or a [B] integer tensor / list.
        fill: the window's value (grey 0.5 by default).
        batch_size: about how many occluded images go through the model at once (all images × a chunk of
            windows; every occluded copy of a chunk is built in one broadcast).

    Returns [B, H, W] on the images' device (float, signed: negative where occluding *raises* the probability).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    images = check_images(images)
    b, c, height, width = images.shape
    window_h, window_w = _pair("window", window, (height, width))
    stride_h, stride_w = _pair("stride", stride, None)
    fill = check_real("fill", fill, low=0.0, high=1.0)
    batch_size = check_int("batch_size", batch_size, low=1)

    rows = _positions(height, window_h, stride_h)
    cols = _positions(width, window_w, stride_w)
    y0 = torch.tensor(rows, device=images.device, dtype=torch.float32).repeat_interleave(len(cols))
    x0 = torch.tensor(cols, device=images.device, dtype=torch.float32).repeat(len(rows))
    windows = torch.stack([x0, y0, x0 + window_w, y0 + window_h], dim=1)  # [N, 4]

    with evaluation_mode(model):
        clean = F.softmax(model(images).float(), dim=1)
        classes = _class_vector(target, clean)
        clean_p = clean.gather(1, classes[:, None])[:, 0]
        heat = images.new_zeros(b, height, width, dtype=torch.float32)
        coverage = images.new_zeros(height, width, dtype=torch.float32)
        chunk = max(1, batch_size // b)
        for start in range(0, windows.shape[0], chunk):
            masks = _box_indicator(windows[start:start + chunk], height, width).to(images.dtype)  # [k, 1, H, W]
            k = masks.shape[0]
            occluded = images[:, None] * (1 - masks) + fill * masks  # [B, k, C, H, W]
            probs = F.softmax(model(occluded.reshape(b * k, c, height, width)).float(), dim=1)
            occluded_p = probs.gather(1, classes.repeat_interleave(k)[:, None]).view(b, k)
            drop = clean_p[:, None] - occluded_p
            heat += torch.einsum("bk,khw->bhw", drop, masks[:, 0].float())
            coverage += masks[:, 0].float().sum(0)
    return (heat / coverage).to(images.dtype)


def _positions(size: int, window: int, stride: int) -> list[int]:
    positions = list(range(0, size - window + 1, stride))
    if positions[-1] != size - window:
        positions.append(size - window)
    return positions


def _pair(name: str, value, limits: tuple[int, int] | None) -> tuple[int, int]:
    pair = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair (height, width), got {value!r}")
    highs = limits if limits is not None else (None, None)
    return (check_int(f"{name} (height)", pair[0], low=1, high=highs[0]),
            check_int(f"{name} (width)", pair[1], low=1, high=highs[1]))


def _class_vector(target, probs: Tensor) -> Tensor:
    """Target classes as an int64 [B] tensor on the probabilities' device."""
    b, k = probs.shape
    if target is None:
        return probs.argmax(1)
    if isinstance(target, int) and not isinstance(target, bool):
        classes = torch.full((b,), target, device=probs.device, dtype=torch.long)
    elif isinstance(target, Tensor) and not target.is_floating_point() and target.dtype != torch.bool \
            and target.shape in ((), (b,)):
        classes = target.to(probs.device, torch.long).expand(b)
    elif isinstance(target, Sequence) and len(target) == b and all(
            isinstance(t, int) and not isinstance(t, bool) for t in target):
        classes = torch.tensor(list(target), device=probs.device, dtype=torch.long)
    else:
        raise ValueError(f"target must be None, an int, or {b} class indices (list or integer tensor [{b}]); "
                         f"got {describe(target)}")
    if bool(((classes < 0) | (classes >= k)).any()):
        raise ValueError(f"target classes must be in [0, {k}) for this model's {k} outputs, got {describe(target)}")
    return classes


