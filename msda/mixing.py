"""Mixing a batch: the λ convention, :class:`Mixer` and the soft-label loss.

The λ convention (the whole project uses it)
--------------------------------------------
``mask`` has shape [B, 1, H, W], values in [0, 1], and is the weight of the sample's **own** image; its
partner gets ``1 − mask``::

    x̃ = mask · x + (1 − mask) · x_partner

The label weight of the own label is the effective area, never the requested λ::

    lam = mask.mean((1, 2, 3))
    ỹ   = lam · onehot(y) + (1 − lam) · onehot(y_partner)

Cutout is the one exception: its partner is a fill value and its label stays ``onehot(y)`` (lam = 1).
Methods that do more than mask (ResizeMix pastes a resized partner, LMix with ``sharpen_image=True`` sharpens
the mixed image) keep the same mask and label rule.

Replaying a mix
---------------
Every call returns ``out.params``: every value it drew or was given — the requested λ, the partners, which
samples were mixed, and each of the method's parameters per sample (centres, σ, q, θ, grid, spectra, MiAMix
layers …). Passing them back, ``mixer(images, labels, params=out.params)``, draws nothing and reproduces
``out.mask`` and ``out.images`` bit for bit on the same device. Quantities *computed* from the draws (a σ
solved from λ, a saliency peak) are in ``out.details``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _random
from ._checks import (check_generator, check_images, check_int, check_real, check_values_in, describe,
                      same_device)
from .registry import GUIDANCE, Batch, get_method

REPLAY_KEYS = ("method", "lam", "partner", "mixed")
"""Keys of ``MixOutput.params`` that belong to the call rather than to the method's parameters."""

__all__ = ["Mixer", "MixOutput", "soft_cross_entropy", "soft_targets"]


@dataclass
class MixOutput:
    """The result of one :class:`Mixer` call.

    Attributes:
        images: [B, C, H, W] mixed images, dtype and device of the input.
        targets: [B, num_classes] float32 soft labels; rows sum to 1.
        lam: [B] float32 label weight of each sample's own label (the mask's mean; 1 for cutout).
        mask: [B, 1, H, W] float32 weight of each sample's own image.
        partner: [B] int64 index into the batch of each sample's partner (its own index when it was not
            mixed, or mixed with another view of itself).
        lam_requested: [B] float32 the λ that was asked for (sampled or pinned) before rendering.
        details: quantities derived from the draws (MiAMix stages, HardMix's pool size, SaliencyMix peaks,
            solved σ, …), for display.
        params: every value the call drew or was given: ``method``, ``lam`` [B] (requested), ``partner`` [B]
            (the pairing), ``mixed`` [B] bool (which samples were mixed), then each of the method's parameters
            (per-sample tensors with the batch first, batch-level ones as Python values). ``mixer(images,
            labels, params=out.params)`` replays the call bit for bit.

    Unpacks as ``images, targets = mixer(images, labels)``.
    """

    images: Tensor
    targets: Tensor
    lam: Tensor
    mask: Tensor
    partner: Tensor
    lam_requested: Tensor
    details: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.images, self.targets))


class Mixer:
    """Mix a batch of images and labels with one of :data:`msda.METHODS`, per-sample, on the batch's device.

    Args:
        method: a name from ``msda.METHODS``.
        num_classes: number of classes K of the labels.
        alpha: concentration of the λ prior, λ ~ Beta(α, α) per sample (MiAMix: the Dirichlet's α);
            defaults to the method's own (``msda.methods_info()[method].default_alpha``).
        prob: probability that a sample is mixed; unselected samples come back unchanged (mask 1, lam 1).
        label_smoothing: ε in [0, 1): each one-hot label becomes (1 − ε)·onehot + ε/K before mixing.
        generator: the ``torch.Generator`` all randomness is drawn from (on the images' device);
            None draws from torch's default generator.
        check_values: check label and pinned-λ *values* (one host sync per call). Shapes, dtypes and
            devices are always checked.
        **params: the method's parameters (``msda.methods_info()[method].params``), each a number or a
            per-sample tensor, pinning what would otherwise be sampled.

    Call it as ``out = mixer(images, labels, *, lam=None, logits=None, saliency=None, cams=None, images_b=None,
    params=None)``:

        images: [B, C, H, W] floating point.
        labels: [B] int class indices or [B, K] soft labels.
        lam: optional requested λ per sample ([B] tensor or a number).
        logits: [B, K] the model's predictions on ``images`` (required by hardmix unless its pool is given).
        saliency: [B, H, W] non-negative saliency of each image (puzzlemix;
            :func:`msda.guidance.input_gradient_saliency`).
        cams: [B, h, w] non-negative class activation maps of each image for its own label, at any resolution
            (snapmix, attentive_cutmix; :func:`msda.guidance.class_activation_maps`).
        images_b: [B, C, H, W] a second, differently augmented view (used by miamix self-mixing).
        params: the ``params`` of an earlier :class:`MixOutput` of this method on a batch of the same size and
            device: the call draws nothing and reproduces that mix (replay). Excludes ``lam``.

    Inputs are never modified in place. Returns a :class:`MixOutput`.
    """

    def __init__(self, method: str, *, num_classes: int, alpha: float | None = None, prob: float = 1.0,
                 label_smoothing: float = 0.0, generator: torch.Generator | None = None,
                 check_values: bool = True, **params):
        self.method = get_method(method)
        self.num_classes = check_int("num_classes", num_classes, low=1)
        default_alpha = self.method.info.default_alpha
        if alpha is None:
            alpha = default_alpha if default_alpha is not None else 1.0
        self.alpha = check_real("alpha", alpha, low=0.0, low_open=True)
        self.prob = check_real("prob", prob, low=0.0, high=1.0)
        self.label_smoothing = check_real("label_smoothing", label_smoothing, low=0.0, high=1.0, high_open=True)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        self.generator = generator
        self.check_values = bool(check_values)
        self.params = self.method.check_params(params)

    @property
    def name(self) -> str:
        return self.method.name

    def __repr__(self) -> str:
        extra = "".join(f", {k}={describe(v)}" for k, v in self.params.items())
        return (f"Mixer({self.name!r}, num_classes={self.num_classes}, alpha={self.alpha:g}, prob={self.prob:g}, "
                f"label_smoothing={self.label_smoothing:g}{extra})")

    def __call__(self, images: Tensor, labels: Tensor, *, lam: Tensor | float | None = None,
                 logits: Tensor | None = None, saliency: Tensor | None = None, cams: Tensor | None = None,
                 images_b: Tensor | None = None, params: Mapping | None = None) -> MixOutput:
        images = check_images(images)
        batch_size, device = images.shape[0], images.device
        generator = check_generator(self.generator, device)
        targets = soft_targets(labels, self.num_classes, batch_size=batch_size, device=device,
                               label_smoothing=self.label_smoothing, check_values=self.check_values)
        if params is None:
            replay, method_params = None, self.params
        else:
            if lam is not None:
                raise ValueError("pass lam or params, not both: params already hold the λ of the mix they replay")
            replay, method_params = self._check_replay(params, batch_size, device)
        self._check_needs(method_params, batch_size, images.shape[-2:],
                          logits=logits, saliency=saliency, cams=cams)
        logits = self._check_logits(logits, batch_size, device, method_params)
        saliency = self._check_map("saliency", saliency, images, full_size=True)
        cams = self._check_map("cams", cams, images, full_size=False)
        images_b = self._check_second_view(images_b, images)
        batch = Batch(images=images, targets=targets, logits=logits, images_b=images_b, saliency=saliency,
                      cams=cams)

        if replay is None:
            lam_pinned = None if lam is None else self._pinned_lam(lam, batch_size, device)
            paired = self.method.pair(batch, generator=generator, params=method_params)
        else:
            lam_pinned, paired = replay["lam"], replay["partner"]
        mixed = self.method.mix(batch, paired, lam_pinned, alpha=self.alpha, generator=generator,
                                params=method_params)
        partner = mixed.partner if mixed.partner is not None else paired
        mask = mixed.mask
        out_images = mixed.images
        lam_eff = mixed.lam if mixed.lam is not None else mask.mean((1, 2, 3))

        if replay is not None:
            chosen = replay["mixed"]
        elif self.prob < 1.0:
            chosen = _random.bernoulli(self.prob, batch_size, generator=generator, device=device)
        else:
            chosen = None
        if chosen is not None:
            out_images = torch.where(chosen[:, None, None, None], out_images, images)
            mask = torch.where(chosen[:, None, None, None], mask, torch.ones_like(mask))
            lam_eff = torch.where(chosen, lam_eff, torch.ones_like(lam_eff))
            partner = torch.where(chosen, partner, torch.arange(batch_size, device=device))

        out_targets = torch.lerp(targets[partner], targets, lam_eff[:, None])
        used = {"method": self.name, "lam": mixed.lam_requested, "partner": paired,
                "mixed": chosen if chosen is not None else torch.ones(batch_size, dtype=torch.bool, device=device),
                **mixed.params}
        return MixOutput(images=out_images, targets=out_targets, lam=lam_eff, mask=mask, partner=partner,
                         lam_requested=mixed.lam_requested, details=mixed.details, params=used)

    def _check_replay(self, params, batch_size: int, device) -> tuple[dict, dict]:
        """Split replayed params into the call's (lam, partner, mixed) and the method's, checking each."""
        if not isinstance(params, Mapping):
            raise ValueError(f"params must be the params dict of a MixOutput, got {type(params).__name__}")
        missing = [k for k in REPLAY_KEYS if k not in params]
        if missing:
            raise ValueError(f"params lack {', '.join(missing)}: pass the whole params dict of a MixOutput")
        if params["method"] != self.name:
            raise ValueError(f"params were drawn by {params['method']!r} but this Mixer mixes with {self.name!r}")
        _check_devices(params, device)
        checks = {"lam": (torch.float32, "float32"), "partner": (torch.int64, "int64"), "mixed": (torch.bool, "bool")}
        call = {}
        for key, (dtype, dtype_name) in checks.items():
            value = params[key]
            if not isinstance(value, Tensor) or value.ndim != 1:
                raise ValueError(f"params[{key!r}] must be a [B] {dtype_name} tensor, got {describe(value)}")
            if value.shape[0] != batch_size:
                raise ValueError(f"params hold a batch of {value.shape[0]} samples but images have {batch_size}")
            if value.dtype != dtype:
                raise ValueError(f"params[{key!r}] must be {dtype_name}, got {value.dtype}")
            call[key] = value
        if self.check_values:
            check_values_in("params['lam']", call["lam"], 0.0, 1.0)
            partner = call["partner"]
            if batch_size and bool(((partner < 0) | (partner >= batch_size)).any()):
                raise ValueError(f"params['partner'] must index the batch, in [0, {batch_size - 1}], "
                                 f"got {describe(partner)}")
        method_params = self.method.check_params({k: v for k, v in params.items() if k not in REPLAY_KEYS})
        return call, {**self.params, **method_params}

    def _pinned_lam(self, lam, batch_size: int, device) -> Tensor:
        if isinstance(lam, Tensor):
            if lam.ndim > 1 or (lam.ndim == 1 and lam.shape[0] != batch_size):
                raise ValueError(f"lam must be a number or a tensor of shape [{batch_size}], got {describe(lam)}")
            lam = lam.to(device=device, dtype=torch.float32)
            if self.check_values:
                check_values_in("lam", lam, 0.0, 1.0)
            return lam.expand(batch_size).contiguous()
        value = check_real("lam", lam, low=0.0, high=1.0)
        return torch.full((batch_size,), value, device=device)

    def _check_needs(self, params: dict, batch_size: int, size, **given) -> None:
        """A call without a model-derived input the method needs is refused, naming what to pass."""
        for need in self.method.needs(params):
            if given.get(need) is None:
                shape = {"logits": f"[{batch_size}, {self.num_classes}]",
                         "saliency": f"[{batch_size}, {size[0]}, {size[1]}]", "cams": f"[{batch_size}, h, w]"}[need]
                raise ValueError(f"{self.name} needs {need}: pass {GUIDANCE[need]} of shape {shape}")

    def _check_map(self, name: str, value, images: Tensor, *, full_size: bool) -> Tensor | None:
        """A saliency or CAM input: [B, H, W] (or [B, h, w] for CAMs), floating point, on the images' device,
        finite and non-negative (values checked when ``check_values``)."""
        if value is None:
            return None
        batch_size, height, width = images.shape[0], *images.shape[-2:]
        expected = f"[{batch_size}, {height}, {width}]" if full_size else f"[{batch_size}, h, w]"
        if not isinstance(value, Tensor) or value.ndim != 3 or value.shape[0] != batch_size \
                or (full_size and tuple(value.shape[1:]) != (height, width)) or min(value.shape) == 0:
            raise ValueError(f"{name} must be a tensor of shape {expected}, got {describe(value)}")
        if not value.is_floating_point():
            raise ValueError(f"{name} must be floating point, got dtype {value.dtype}")
        if not same_device(value.device, images.device):
            raise ValueError(f"{name} is on {value.device} but images are on {images.device}")
        value = value.detach().float()
        if self.check_values:
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"{name} must be finite, got {describe(value)} with NaN or infinite values")
            if bool((value < 0).any()):
                raise ValueError(f"{name} must be non-negative, got a minimum of {value.min().item():g}")
        return value

    def _check_logits(self, logits, batch_size: int, device, params: dict) -> Tensor | None:
        if logits is None:
            return None
        if not isinstance(logits, Tensor) or logits.shape != (batch_size, self.num_classes):
            raise ValueError(
                f"logits must be a tensor of shape [{batch_size}, {self.num_classes}], got {describe(logits)}"
            )
        if logits.device != device:
            raise ValueError(f"logits are on {logits.device} but images are on {device}")
        return logits.detach()

    @staticmethod
    def _check_second_view(images_b, images: Tensor) -> Tensor | None:
        if images_b is None:
            return None
        if not isinstance(images_b, Tensor) or images_b.shape != images.shape:
            raise ValueError(f"images_b must have the shape of images {tuple(images.shape)}, got {describe(images_b)}")
        if images_b.device != images.device or images_b.dtype != images.dtype:
            raise ValueError(
                f"images_b must match images' device and dtype ({images.device}, {images.dtype}), "
                f"got ({images_b.device}, {images_b.dtype})"
            )
        return images_b


def _check_devices(params, device, path: str = "params") -> None:
    """Every tensor in (nested) params must live on the images' device: a replay never moves data silently."""
    if isinstance(params, Tensor):
        if not same_device(params.device, device):
            raise ValueError(f"{path} is on {params.device} but images are on {device}: replay on the device "
                             "the mix was drawn on")
    elif isinstance(params, Mapping):
        for key, value in params.items():
            _check_devices(value, device, f"{path}[{key!r}]")
    elif isinstance(params, (list, tuple)):
        for index, value in enumerate(params):
            _check_devices(value, device, f"{path}[{index}]")


def soft_targets(labels: Tensor, num_classes: int, *, batch_size: int | None = None,
                 device: torch.device | None = None, label_smoothing: float = 0.0,
                 check_values: bool = True) -> Tensor:
    """Labels as [B, K] float32 probabilities: class indices become one-hot, soft labels are checked.

    With ``label_smoothing`` ε each row becomes (1 − ε)·row + ε/K.
    """
    if not isinstance(labels, Tensor):
        raise ValueError(f"labels must be a tensor of shape [B] (class indices) or [B, {num_classes}], "
                         f"got {type(labels).__name__}")
    batch_size = labels.shape[0] if batch_size is None and labels.ndim else batch_size
    if labels.ndim == 0 or labels.shape[0] != batch_size:
        raise ValueError(f"labels must have {batch_size} rows (one per image), got shape {tuple(labels.shape)}")
    if device is not None and not same_device(labels.device, device):
        raise ValueError(f"labels are on {labels.device} but images are on {device}")
    if labels.ndim == 1:
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise ValueError(f"class-index labels must be an integer tensor, got dtype {labels.dtype}")
        if check_values:
            bad = (labels < 0) | (labels >= num_classes)
            if bool(bad.any()):
                raise ValueError(
                    f"labels must be class indices in [0, {num_classes - 1}], got {labels[bad][0].item()}"
                )
        targets = F.one_hot(labels.long().clamp(0, num_classes - 1), num_classes).float()
    elif labels.ndim == 2:
        if labels.shape[1] != num_classes:
            raise ValueError(f"soft labels must have shape [{batch_size}, {num_classes}], "
                             f"got {tuple(labels.shape)}")
        if not labels.is_floating_point():
            raise ValueError(f"soft labels must be floating point, got dtype {labels.dtype}")
        targets = labels.float()
        if check_values:
            check_values_in("soft labels", targets, 0.0, 1.0)
            sums = targets.sum(1)
            if bool(((sums - 1).abs() > 1e-3).any()):
                raise ValueError(f"soft label rows must sum to 1, got row sums {describe(sums)}")
    else:
        raise ValueError(f"labels must have shape [B] or [B, {num_classes}], got {tuple(labels.shape)}")
    if label_smoothing > 0:
        targets = targets * (1.0 - label_smoothing) + label_smoothing / num_classes
    return targets


def soft_cross_entropy(logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy against soft targets: −Σ_k targets_k · log softmax(logits)_k, averaged over the batch.

    The same as ``F.cross_entropy(logits, targets)`` with probability targets; this wrapper checks shapes
    and computes in float32 whatever the logits' dtype (AMP).
    """
    if not isinstance(logits, Tensor) or logits.ndim != 2:
        raise ValueError(f"logits must be a [B, K] tensor, got {describe(logits)}")
    if not isinstance(targets, Tensor) or targets.shape != logits.shape:
        raise ValueError(f"targets must have the logits' shape {tuple(logits.shape)}, got {describe(targets)}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return F.cross_entropy(logits.float(), targets.float(), reduction=reduction)
