"""timm's classifiers by name, as ``"timm/<name>"``: randomly initialised, never downloaded.

Wightman, "PyTorch Image Models" (https://github.com/huggingface/pytorch-image-models). The ``timm/`` prefix
keeps timm's names apart from torchvision's (both have ``resnet18``, ``resnet50``, ``densenet121``, …).
:func:`msda.models.build_model` calls ``timm.create_model(name, pretrained=False, num_classes=…)``; this module
lists the names, reads the input convention timm attaches to a model name (its default pretrained config:
mean, std, input size) and says which models take one input side only (ViT, Swin: position embeddings and
attention windows are built for their ``img_size``).

timm is imported on first use (it takes a second), and is optional: without it there are no ``timm/`` names.
"""

from __future__ import annotations

import difflib
from functools import cache
from typing import Any

from torch import nn

TIMM_PREFIX = "timm/"
"""The prefix that marks a timm architecture name in ``arch`` (``"timm/convnext_tiny"``)."""


@cache
def timm_available() -> bool:
    try:
        import timm  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def timm_names() -> tuple[str, ...]:
    """timm's architecture names (``timm.list_models()``, sorted, without pretrained tags), each prefixed with
    ``timm/``; empty when timm is not installed."""
    if not timm_available():
        return ()
    import timm

    return tuple(TIMM_PREFIX + name for name in timm.list_models())


def is_timm_arch(arch: str) -> bool:
    """Whether `arch` is spelled as a timm name (``timm/…``); it may still be unknown to timm."""
    return isinstance(arch, str) and arch.startswith(TIMM_PREFIX)


def timm_arch_for(model_name: str) -> str | None:
    """``"timm/<name>"`` for the model name a timm training run records (``args.model``, e.g. ``"resnet50"``,
    ``"resnet50.a1_in1k"`` — the pretrained tag is dropped, ``"timm/resnet50"``), or None when timm does not
    know it."""
    if not isinstance(model_name, str):
        return None
    name = model_name.removeprefix(TIMM_PREFIX).removeprefix("hf-hub:timm/").removeprefix("hf_hub:timm/")
    arch = TIMM_PREFIX + name.split(".", 1)[0]
    return arch if arch in timm_names() else None


def unknown_timm_message(arch: str) -> str:
    """The one-line refusal of a ``timm/`` name timm does not have, with the closest names."""
    if not timm_available():
        return f"arch {arch!r} needs timm, which is not installed (pip install timm)"
    close = difflib.get_close_matches(arch, timm_names(), n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return (f"arch {arch!r}: timm has no architecture {arch[len(TIMM_PREFIX):]!r} (timm.list_models() lists "
            f"the {len(timm_names())} names it has; write them as 'timm/<name>').{hint}")


def build_timm(arch: str, num_classes: int, **kwargs) -> nn.Module:
    """``timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)`` for ``arch = "timm/<name>"``.

    Raises ValueError for a name timm does not have (with close names) or options it refuses.
    """
    if arch not in timm_names():
        raise ValueError(unknown_timm_message(arch))
    import timm

    try:
        return timm.create_model(arch[len(TIMM_PREFIX):], pretrained=False, num_classes=num_classes, **kwargs)
    except TypeError as error:
        raise ValueError(f"{arch} does not accept {sorted(kwargs)} ({error})") from None


def timm_data_config(arch: str) -> dict[str, Any]:
    """The input convention timm's own scripts use for `arch` (``"timm/<name>"``, optionally with a pretrained
    tag, ``"timm/<name>.<tag>"``) when nothing overrides it: ``{"mean": [3], "std": [3], "input_size": int}`` from
    the name's default pretrained config (no download: the config is part of timm's code). ``input_size`` is
    the config's side, the one timm's train script trains at unless told otherwise: 224 for most, 384 for
    ``*_384`` models, 176 for ``resnet10t`` (its config's ``test_input_size`` is not used)."""
    import timm

    name = arch.removeprefix(TIMM_PREFIX)
    config = timm.get_pretrained_cfg(name, allow_unregistered=True) if hasattr(timm, "get_pretrained_cfg") else None
    if config is None:
        base = name.split(".", 1)[0]
        config = timm.get_pretrained_cfg(base, allow_unregistered=True) if base != name else None
    if config is None:
        from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

        return {"mean": list(IMAGENET_DEFAULT_MEAN), "std": list(IMAGENET_DEFAULT_STD), "input_size": 224}
    return {"mean": [float(v) for v in config.mean], "std": [float(v) for v in config.std],
            "input_size": int(config.input_size[-1])}


def fixed_input_size(net: nn.Module) -> int | None:
    """The one input side a timm model takes (square), or None when it takes any.

    ViTs, DeiTs and Swin Transformers built without ``dynamic_img_size=True`` check the image size against the
    ``img_size`` their position embeddings / attention windows were built for (``patch_embed.strict_img_size``).
    """
    embed = getattr(net, "patch_embed", None)
    size = getattr(embed, "img_size", None)
    if not getattr(embed, "strict_img_size", False) or getattr(net, "dynamic_img_size", False) or size is None:
        return None
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return int(height) if height == width else None
