"""Building a network by name: ours first, then torchvision's classification architectures, then timm's
(``"timm/<name>"``, :mod:`.timm_models`).

Nothing here downloads: torchvision builders are always called with ``weights=None``, timm's with
``pretrained=False``.
"""

from __future__ import annotations

import difflib
import inspect
from functools import cache

import torchvision
from torch import nn

from .._checks import check_int
from ._registry import constructor_for, registered_names
from .timm_models import build_timm, is_timm_arch, timm_names

# GoogLeNet and Inception-v3 return a tuple with auxiliary logits in training mode and warn about a changing
# default init; switching the auxiliary heads off gives every model the same [B, num_classes] output.
_TORCHVISION_DEFAULTS: dict[str, dict] = {
    "googlenet": {"aux_logits": False, "init_weights": True},
    "inception_v3": {"aux_logits": False, "init_weights": True},
}

_WEIGHT_KWARGS = ("weights", "weights_backbone", "pretrained", "pretrained_backbone")


@cache
def torchvision_names() -> tuple[str, ...]:
    """torchvision's classification architectures, ``torchvision.models.list_models(module=torchvision.models)``."""
    return tuple(torchvision.models.list_models(module=torchvision.models))


def list_models() -> list[str]:
    """Every name :func:`build_model` accepts: ours (in registry order), then torchvision's (sorted), then timm's
    as ``"timm/<name>"`` (sorted; none when timm is not installed)."""
    return (list(registered_names()) + [name for name in torchvision_names() if name not in registered_names()]
            + list(timm_names()))


def build_model(arch: str, num_classes: int, **kwargs) -> nn.Module:
    """A freshly initialised classifier.

    Args:
        arch: one of ``msda.models.ARCHS``, a torchvision classification architecture name, or a timm one
            written ``"timm/<name>"`` (e.g. ``"timm/convnext_tiny"``; see :func:`list_models`).
        num_classes: number of outputs.
        **kwargs: passed to the constructor (e.g. ``shortcut="B"`` for resnet20, ``dropout=0.3`` for
            wrn28_10, ``zero_init_residual=True`` for torchvision ResNets, ``drop_path_rate=0.1`` for timm models).
            Pretrained weights are refused.

    Returns an ``nn.Module`` mapping normalised images [B, 3, H, W] to logits [B, num_classes], on the CPU (or
    the current default device), in train mode. Wrap it in :class:`msda.models.Normalized` to feed [0, 1] images.
    """
    num_classes = check_int("num_classes", num_classes, low=1)
    for key in _WEIGHT_KWARGS:
        if kwargs.get(key) not in (None, False):
            raise ValueError(f"{key}={kwargs[key]!r}: build_model never loads or downloads pretrained weights; "
                             "load a checkpoint's state dict into the built model instead")
    if not isinstance(arch, str):
        raise ValueError(f"arch must be a string naming an architecture, got {type(arch).__name__}")

    constructor = constructor_for(arch)
    if constructor is not None:
        try:
            inspect.signature(constructor).bind(num_classes=num_classes, **kwargs)
        except TypeError as error:
            params = [p for p in inspect.signature(constructor).parameters if p != "num_classes"]
            raise ValueError(f"{arch} does not accept {sorted(kwargs)} ({error}); its options are: "
                             f"{', '.join(params) or 'none'} (see its docstring)") from None
        return constructor(num_classes=num_classes, **kwargs)

    if is_timm_arch(arch):
        return build_timm(arch, num_classes, **{key: value for key, value in kwargs.items()
                                                if key not in _WEIGHT_KWARGS})

    if arch in torchvision_names():
        options = {key: value for key, value in kwargs.items() if key not in _WEIGHT_KWARGS}
        options = {**_TORCHVISION_DEFAULTS.get(arch, {}), **options}
        return torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **options)

    if f"timm/{arch}" in timm_names():  # a timm name given without its prefix
        close = [f"timm/{arch}"]
    else:
        close = difflib.get_close_matches(arch, list_models(), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    raise ValueError(
        f"arch must be one of ours ({', '.join(registered_names())}), a torchvision classification model or "
        f"'timm/<name>' for a timm one (msda.models.list_models() lists them all); got {arch!r}.{hint}"
    )
