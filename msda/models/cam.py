"""Which layer Grad-CAM should look at, for our architectures and torchvision's classifiers.

Selvaraju et al. "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization", ICCV 2017.
arXiv:1610.02391. The choices for torchvision's families follow pytorch-grad-cam's recommendations: the last
convolutional stage for CNNs, the first LayerNorm of the last encoder block for ViT (whose tokens then need
:func:`cam_reshape` to become a [B, D, h, w] map).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torchvision.models as tvm
from torch import Tensor, nn

from .normalized import Normalized

ReshapeTransform = Callable[[Tensor], Tensor]


def vit_tokens_to_map(tokens: Tensor) -> Tensor:
    """ViT tokens [B, 1 + h·w, D] (class token first) → patch feature map [B, D, h, w] (square grid)."""
    patches = tokens[:, 1:, :]
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1]:
        raise ValueError(f"expected a square grid of patch tokens, got {patches.shape[1]} tokens")
    return patches.reshape(tokens.shape[0], side, side, tokens.shape[2]).permute(0, 3, 1, 2)


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside Normalized, DataParallel/DistributedDataParallel and torch.compile wrappers."""
    while True:
        if isinstance(model, Normalized):
            model = model.net
        elif isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):  # torch.compile
            model = model._orig_mod
        else:
            return model


# Families whose last spatial map is not at `layerN` or `features[-1]`, checked before the generic rules.
_SPECIAL: tuple[tuple[type, Callable[[nn.Module], nn.Module]], ...] = (
    (tvm.VisionTransformer, lambda net: net.encoder.layers[-1].ln_1),
    # Swin's features are [B, H, W, C]; its own Permute module yields [B, C, H, W] after the final norm.
    (tvm.SwinTransformer, lambda net: net.permute),
    (tvm.MaxVit, lambda net: net.blocks[-1]),
    (tvm.RegNet, lambda net: net.trunk_output[-1]),
    (tvm.GoogLeNet, lambda net: net.inception5b),
    (tvm.Inception3, lambda net: net.Mixed_7c),
    (tvm.ShuffleNetV2, lambda net: net.conv5),
    (tvm.MNASNet, lambda net: net.layers[-1]),
)


def cam_layer(model: nn.Module) -> nn.Module:
    """The recommended Grad-CAM target layer of `model` (a submodule of it).

    Our architectures and torchvision's ResNet family: the last stage ``layerN``. VGG, AlexNet, DenseNet,
    SqueezeNet, MobileNet, EfficientNet and ConvNeXt: ``features[-1]``. ViT: ``encoder.layers[-1].ln_1`` —
    its output is tokens, so pass :func:`cam_reshape`'s transform to the CAM code. Swin, MaxViT, RegNet,
    GoogLeNet, Inception-v3, ShuffleNet and MNASNet: their last spatial block. Wrappers
    (:class:`Normalized`, DDP, ``torch.compile``) are looked through.

    Raises ValueError for an architecture without a known choice.
    """
    net = unwrap(model)
    for family, layer_of in _SPECIAL:
        if isinstance(net, family):
            return layer_of(net)
    stages = sorted((int(name[5:]) for name, _ in net.named_children()
                     if name.startswith("layer") and name[5:].isdigit()))
    if stages:
        return getattr(net, f"layer{stages[-1]}")
    features = getattr(net, "features", None)
    if isinstance(features, nn.Sequential) and len(features) > 0:
        return features[-1]
    raise ValueError(
        f"cam_layer knows no Grad-CAM layer for {type(net).__name__}; pick the module whose output is the last "
        "[B, C, h, w] feature map before global pooling"
    )


def cam_reshape(model: nn.Module) -> ReshapeTransform | None:
    """The transform that turns :func:`cam_layer`'s output into a [B, C, h, w] map, or None if it already is one.

    Only ViT needs one (:func:`vit_tokens_to_map`); pass it as pytorch-grad-cam's ``reshape_transform``.
    """
    return vit_tokens_to_map if isinstance(unwrap(model), tvm.VisionTransformer) else None
