"""Projected gradient descent (PGD) under an L∞ budget, batched, with random starts from an explicit generator.

Madry, Makelov, Schmidt, Tsipras & Vladu, "Towards Deep Learning Models Resistant to Adversarial Attacks", ICLR
2018, arXiv:1706.06083: from a uniform random start in the ε-ball, K steps of

    x ← clip_[0,1]( Π_{‖x − x₀‖∞ ≤ ε}( x + α · sign(∇_x CE(f(x), y)) ) )

on the [0, 1] pixel scale (before the model's own normalisation), with several restarts. A one-step attack
(FGSM, Goodfellow et al. 2015) can over-state robustness when the loss surface masks its gradient; PGD with
steps and restarts is the standard check (Athalye, Carlini & Wagner, ICML 2018, arXiv:1802.00420).

What "robust" means here. An image counts as attacked successfully as soon as **any** iterate of **any** restart
is misclassified (the start itself is not an iterate): the returned image is the first such iterate, else the
last iterate of the last restart. This is the worst case over everything the attack tried — what robust-accuracy
evaluations report (Croce & Hein, AutoAttack, ICML 2020, arXiv:2003.01690) — and it lets fooled images leave the
batch early, which is most of them at large ε. With ``stop_at_success=False`` each restart keeps its final
iterate (Madry et al.'s evaluation, and torchattacks' ``PGD``); a restart then only re-attacks the images the
previous restarts did not fool. Either way:

* ``steps=0`` (or ε = 0) is no attack: the images come back unchanged, so the accuracy is the clean accuracy;
* ``steps=1``, ``step_size=ε``, no random start is FGSM exactly (:func:`analysis.robust_metrics.fgsm`, the same
  summed loss and the same float operations).

Why not torchattacks. ``torchattacks`` 3.5.1 (its last release) works with these models and is the reference the
tests compare with (bit for bit without random start), but it pins ``requests~=2.25.1``, which no environment with
Streamlit (``requests>=2.27``) can install; and its random start draws from the global torch RNG, where this
project passes a ``torch.Generator``. The loop here is ~40 lines.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from msda._checks import check_generator, check_int, describe

from ..cam import evaluation_mode

__all__ = ["MAX_RESTARTS", "MAX_STEPS", "check_eps", "pgd"]

MAX_STEPS = 1000
MAX_RESTARTS = 100


def check_eps(eps, name: str = "eps") -> float:
    """ε as a float in [0, 1] (the [0, 1] pixel scale); ValueError naming the value otherwise."""
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or not 0 <= eps <= 1:
        raise ValueError(f"{name} must be a finite number in [0, 1] on the pixel scale (8/255 ≈ 0.031), got {eps!r}")
    return float(eps)


def _check_step_size(step_size, eps: float, steps: int) -> float:
    if step_size is None:
        return 2.5 * eps / max(steps, 1)  # Madry et al.'s rule: the steps can cross the ball 2.5 times
    if (isinstance(step_size, bool) or not isinstance(step_size, (int, float)) or not math.isfinite(step_size)
            or not 0 < step_size <= 1):
        raise ValueError(f"step_size must be a finite number in (0, 1] on the pixel scale, got {step_size!r}")
    return float(step_size)


def pgd(model: nn.Module, images: Tensor, labels: Tensor, eps: float, *, steps: int = 10,
        step_size: float | None = None, random_start: bool = True, restarts: int = 1,
        generator: torch.Generator | None = None, stop_at_success: bool = True) -> Tensor:
    """L∞ PGD on the [0, 1] pixel scale against the true labels.

    Args:
        model: maps images [B, C, H, W] in [0, 1] to logits [B, K]; run in eval mode with its parameters frozen
            (both restored).
        images: float [B, C, H, W] in [0, 1]; labels: int64 [B].
        eps: the L∞ budget ε in [0, 1] (e.g. 8/255).
        steps: K ≥ 0 gradient steps per restart (≤ 1000).
        step_size: α in (0, 1]; default 2.5·ε/K.
        random_start: start each restart at a uniform draw in the ε-ball (clipped to [0, 1]) from `generator`.
        restarts: 1 … 100 attempts; more than one needs a random start (otherwise every restart is the same).
        generator: the random starts' torch.Generator (on the images' device); None: a fresh one seeded with 0.
        stop_at_success: see the module docstring.

    Returns [B, C, H, W] adversarial images (detached, the images' dtype), within ε of `images` and in [0, 1].
    """
    from ..robust_metrics import _check_batch

    eps = check_eps(eps)
    steps = check_int("steps", steps, low=0, high=MAX_STEPS)
    restarts = check_int("restarts", restarts, low=1, high=MAX_RESTARTS)
    step_size = _check_step_size(step_size, eps, steps)
    if restarts > 1 and not random_start:
        raise ValueError(f"restarts={restarts} needs random_start=True: without a random start every restart is "
                         "the same attack")
    _check_batch(images, labels)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if eps == 0 or steps == 0:
        return images.detach().clone()
    if random_start:
        generator = (torch.Generator(device=images.device).manual_seed(0) if generator is None
                     else check_generator(generator, images.device))
    natural = images.detach().float()
    labels = labels.long()
    result = natural.clone()
    active = torch.arange(len(labels), device=images.device)
    flags = [p.requires_grad for p in model.parameters()]
    try:
        for p in model.parameters():
            p.requires_grad_(False)
        with evaluation_mode(model):
            for _ in range(restarts):
                if not len(active):
                    break
                active = _one_restart(model, natural, labels, active, result, eps=eps, steps=steps,
                                      step_size=step_size, generator=generator if random_start else None,
                                      stop_at_success=stop_at_success)
    finally:
        for p, flag in zip(model.parameters(), flags, strict=True):
            p.requires_grad_(flag)
    return result.to(images.dtype)


def _one_restart(model, natural: Tensor, labels: Tensor, active: Tensor, result: Tensor, *, eps: float, steps: int,
                 step_size: float, generator, stop_at_success: bool) -> Tensor:
    """One restart on the images `active` (indices); writes their adversarial images into `result` and returns
    the indices still classified correctly."""
    start, targets = natural[active], labels[active]
    x = start.clone()
    if generator is not None:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        x = (x + (2 * noise - 1) * eps).clamp_(0, 1)
    low, high = start - eps, start + eps
    for step in range(steps):
        with torch.enable_grad():
            x.requires_grad_(True)
            logits = model(x)
            _check_logits(logits, len(x))
            loss = F.cross_entropy(logits.float(), targets, reduction="sum")
            (grad,) = torch.autograd.grad(loss, x)
        x = x.detach()
        if step > 0 and stop_at_success:  # the logits are those of iterate `step`: drop the images it fooled
            fooled = logits.detach().argmax(1) != targets
            if bool(fooled.any()):
                result[active[fooled]] = x[fooled]
                keep = ~fooled
                active, x, grad, targets, low, high = (t[keep] for t in (active, x, grad, targets, low, high))
                if not len(active):
                    return active
        x = torch.minimum(torch.maximum(x + step_size * grad.sign(), low), high).clamp_(0, 1)
    with torch.no_grad():
        fooled = model(x).argmax(1) != targets
    result[active] = x
    return active[~fooled]


def _check_logits(logits, batch: int) -> None:
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != batch or logits.shape[1] < 2:
        raise ValueError(f"the model's outputs must be logits [batch, classes] with batch {batch} and at least 2 "
                         f"classes, got {describe(logits)}")
