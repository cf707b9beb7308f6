"""What a card exports: the mixed image and the mask as PNG, and the msda code that reproduces the preview."""

from __future__ import annotations

from typing import Any

import numpy as np

from .images import to_png
from .mixing import HARDMIX_LOGITS, NUM_CLASSES


def mixed_png(mixed: np.ndarray) -> bytes:
    return to_png(mixed)


def mask_png(mask: np.ndarray) -> bytes:
    """8-bit grey PNG of a [0, 1] mask: white is A (weight 1), black is B."""
    return to_png(np.rint(np.clip(mask, 0.0, 1.0) * 255).astype(np.uint8))


def _literal(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if "." in f"{value:.6g}" or "e" in f"{value:.6g}" else f"{value:.1f}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def mixer_snippet(method: str, *, params: dict[str, Any], alpha: float | None, seed: int, lam: float | None,
                  size: int, class_names: tuple[str, str], needs_logits: bool) -> str:
    """Python code that reproduces the card's preview with msda, then uses the same mixer in a training loop."""
    arguments = [repr(method), f"num_classes={NUM_CLASSES}"]
    if alpha is not None:
        arguments.append(f"alpha={_literal(float(alpha))}")
    arguments.append("generator=g")
    arguments += [f"{name}={_literal(value)}" for name, value in params.items()]
    call = ["images, labels"]
    if lam is not None:
        call.append(f"lam={_literal(float(lam))}")
    if needs_logits:
        call.append(f"logits=torch.tensor({[list(row) for row in HARDMIX_LOGITS]})")
    loop_call = "images, labels, logits=model(images)" if needs_logits else "images, labels"
    lines = [
        "import torch, msda",
        "",
        f"# The preview: images = [A, B] as a [2, 3, {size}, {size}] float batch in [0, 1],",
        f"# labels = torch.tensor([0, 1])  ({class_names[0]!r}, {class_names[1]!r}).",
        f"g = torch.Generator().manual_seed({seed})",
        f"mixer = msda.Mixer({', '.join(arguments)})",
        f"out = mixer({', '.join(call)})",
        "# out.images[0], out.mask[0], out.lam[0], out.targets[0] are what the card shows.",
        "",
        "# In a training loop: one mixer (num_classes of your data), λ drawn per sample.",
        "for images, labels in loader:",
        f"    images, targets = mixer({loop_call})",
        "    loss = msda.soft_cross_entropy(model(images), targets)",
    ]
    return "\n".join(lines)
