"""Which layer Grad-CAM should look at, for our architectures, torchvision's classifiers and timm's.

Selvaraju et al. "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization", ICCV 2017.
arXiv:1610.02391. The choices follow pytorch-grad-cam's recommendations: the last convolutional stage for
CNNs, the first LayerNorm of the last encoder block for ViT (whose tokens then need :func:`cam_reshape` to
become a [B, D, h, w] map). timm names its last stage differently per family; :data:`TIMM_RULES` gives one
rule per family, and timm models of other families fall back on the module their ``feature_info`` names
last. When no rule fits, :func:`cam_layer_names` lists the candidates and :class:`CamTarget` pins one.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torchvision.models as tvm
from torch import Tensor, nn

from .normalized import Normalized

ReshapeTransform = Callable[[Tensor], Tensor]


def vit_tokens_to_map(tokens: Tensor, prefix_tokens: int = 1) -> Tensor:
    """ViT tokens [B, prefix_tokens + h·w, D] (class/distillation/register tokens first) → patch feature map
    [B, D, h, w] (square grid). A [B, D, h, w] map passes through unchanged."""
    if tokens.ndim == 4:
        return tokens
    patches = tokens[:, prefix_tokens:, :]
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1]:
        raise ValueError(f"expected a square grid of patch tokens after {prefix_tokens} prefix token(s), got "
                         f"{patches.shape[1]} tokens")
    return patches.reshape(tokens.shape[0], side, side, tokens.shape[2]).permute(0, 3, 1, 2)


def channels_last_to_map(features: Tensor) -> Tensor:
    """[B, h, w, C] feature map (timm's Swin stages) → [B, C, h, w]; tokens [B, h·w, C] → [B, C, h, w] (square)."""
    if features.ndim == 3:
        return vit_tokens_to_map(features, prefix_tokens=0)
    return features.permute(0, 3, 1, 2)


class CamTarget(nn.Module):
    """`model` with its Grad-CAM layer pinned to the submodule named `layer` (a name of
    :func:`cam_layer_names`): :func:`cam_layer` returns that module instead of the family's rule. The forward
    pass is `model`'s own; no parameter is copied.

    Raises ValueError when `layer` names no submodule of the unwrapped network.
    """

    def __init__(self, model: nn.Module, layer: str) -> None:
        super().__init__()
        modules = dict(unwrap(model).named_modules())
        if not isinstance(layer, str) or not layer or layer not in modules:
            raise ValueError(f"layer must name a module of {type(unwrap(model)).__name__} (cam_layer_names lists "
                             f"them, e.g. {', '.join(map(repr, cam_layer_names(model)[-3:]))}), got {layer!r}")
        self.model = model
        self.layer_name = layer
        self.layer = modules[layer]

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)

    def extra_repr(self) -> str:
        return f"layer={self.layer_name!r}"


def _inner(model: nn.Module) -> nn.Module | None:
    """The module one wrapper (CamTarget, Normalized, DataParallel/DDP, torch.compile) holds, or None."""
    if isinstance(model, CamTarget):
        return model.model
    if isinstance(model, Normalized):
        return model.net
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        return model.module
    if hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):  # torch.compile
        return model._orig_mod
    return None


def unwrap(model: nn.Module) -> nn.Module:
    """The network inside CamTarget, Normalized, DataParallel/DistributedDataParallel and torch.compile wrappers."""
    while (inner := _inner(model)) is not None:
        model = inner
    return model


def _pinned_layer(model: nn.Module) -> nn.Module | None:
    """The layer a CamTarget among `model`'s wrappers pins, or None."""
    while model is not None:
        if isinstance(model, CamTarget):
            return model.layer
        model = _inner(model)
    return None


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


def _timm_rules() -> tuple[tuple[type, Callable[[nn.Module], nn.Module], Callable | None], ...]:
    """(timm class, its Grad-CAM layer, the reshape of that layer's output or None), most specific first."""
    from timm.models import convnext, densenet, efficientnet, mobilenetv3, regnet, resnet, swin_transformer
    from timm.models import vision_transformer

    def vit_reshape(net: nn.Module) -> ReshapeTransform:
        prefix = int(getattr(net, "num_prefix_tokens", 1))
        return lambda tokens: vit_tokens_to_map(tokens, prefix)

    return (
        # The first LayerNorm of the last block sees every patch token (the final norm feeds only the pooled
        # token's path). Class, distillation and register tokens come first: num_prefix_tokens of them.
        (vision_transformer.VisionTransformer, lambda net: net.blocks[-1].norm1, vit_reshape),
        # Swin's stages work on [B, H, W, C]; its final LayerNorm acts per position before the average pooling,
        # so its output is the map the pooled classifier reads (Grad-CAM there is the plain CAM).
        (swin_transformer.SwinTransformer, lambda net: net.norm, lambda net: channels_last_to_map),
        (convnext.ConvNeXt, lambda net: net.stages[-1], None),
        # conv_head + bn2 (BatchNormAct2d) make the last map before pooling.
        (efficientnet.EfficientNet, lambda net: net.bn2, None),
        # MobileNetV3 pools *before* conv_head: the last spatial map is the last block's.
        (mobilenetv3.MobileNetV3, lambda net: net.blocks[-1], None),
        # final_conv is an Identity in most RegNets; hooks on it see s4's output anyway, but s4 says so.
        (regnet.RegNet, lambda net: net.s4 if isinstance(net.final_conv, nn.Identity) else net.final_conv, None),
        (resnet.ResNet, lambda net: net.layer4, None),
        (densenet.DenseNet, lambda net: net.features, None),  # ends with norm5 (BatchNormAct2d)
    )


TIMM_FAMILIES: tuple[str, ...] = ("ResNet/ResNeXt/SE-ResNet (timm.models.resnet.ResNet): layer4",
                                  "ConvNeXt (convnext.ConvNeXt): stages[-1]",
                                  "EfficientNet/MobileNetV2 (efficientnet.EfficientNet): bn2",
                                  "MobileNetV3 (mobilenetv3.MobileNetV3): blocks[-1]",
                                  "ViT/DeiT (vision_transformer.VisionTransformer): blocks[-1].norm1, tokens",
                                  "Swin (swin_transformer.SwinTransformer): norm (after layers[-1]), channels last",
                                  "RegNet (regnet.RegNet): final_conv, or s4 when final_conv is an Identity",
                                  "DenseNet (densenet.DenseNet): features")
"""The timm families with a rule (tested at 224 px); timm models of other families use ``feature_info``."""


def _is_timm(net: nn.Module) -> bool:
    return type(net).__module__.startswith("timm.")


def _timm_rule(net: nn.Module) -> tuple[nn.Module, ReshapeTransform | None] | None:
    """(layer, reshape) for a timm model, or None when timm has no rule and no ``feature_info`` for it."""
    for family, layer_of, reshape_of in _timm_rules():
        if isinstance(net, family):
            return layer_of(net), (reshape_of(net) if reshape_of is not None else None)
    info = getattr(net, "feature_info", None)
    name = info[-1].get("module") if isinstance(info, list) and info and isinstance(info[-1], dict) else None
    modules = dict(net.named_modules())
    if isinstance(name, str) and name in modules:
        return modules[name], None
    return None


def cam_layer_names(model: nn.Module) -> list[str]:
    """Candidate Grad-CAM layers of `model` (names relative to the unwrapped network, for :class:`CamTarget`):
    its top-level modules and those one and two levels down in containers (stages, blocks), without pooling,
    dropout, flatten and classifier modules; in forward order, so the last spatial stage is near the end."""
    net = unwrap(model)
    skipped = (nn.Dropout, nn.Flatten, nn.Linear, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Identity)
    heads = {"fc", "head", "classifier", "global_pool", "head_drop", "head_dist", "pre_logits", "fc_norm",
             "avgpool", "flatten", "dropout", "pool", "heads"}
    names = []
    for name, module in net.named_modules():
        depth = name.count(".")
        if not name or depth > 2 or isinstance(module, skipped) or name.split(".")[0] in heads:
            continue
        # Two levels down only inside a container's item (blocks.11.norm1, layer4.1.conv2), not a leaf's parts.
        if depth == 2 and not isinstance(net.get_submodule(name.split(".")[0]), (nn.Sequential, nn.ModuleList)):
            continue
        names.append(name)
    return names


def cam_layer_name(model: nn.Module) -> str | None:
    """The name (as in :func:`cam_layer_names`) of :func:`cam_layer`'s choice, or None when no rule fits."""
    try:
        layer = cam_layer(model)
    except ValueError:
        return None
    return next((name for name, module in unwrap(model).named_modules() if module is layer), None)


def cam_layer(model: nn.Module) -> nn.Module:
    """The recommended Grad-CAM target layer of `model` (a submodule of it).

    Our architectures and torchvision's ResNet family: the last stage ``layerN``. VGG, AlexNet, DenseNet,
    SqueezeNet, MobileNet, EfficientNet and ConvNeXt: ``features[-1]``. ViT: ``encoder.layers[-1].ln_1`` —
    its output is tokens, so pass :func:`cam_reshape`'s transform to the CAM code. Swin, MaxViT, RegNet,
    GoogLeNet, Inception-v3, ShuffleNet and MNASNet: their last spatial block. timm models: the rule of their
    family (:data:`TIMM_FAMILIES`), else the last module of their ``feature_info``. A :class:`CamTarget`
    returns its pinned layer. Wrappers (:class:`Normalized`, DDP, ``torch.compile``) are looked through.

    Raises ValueError for an architecture without a known choice.
    """
    pinned = _pinned_layer(model)
    if pinned is not None:
        return pinned
    net = unwrap(model)
    if _is_timm(net):
        rule = _timm_rule(net)
        if rule is not None:
            return rule[0]
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
        "[B, C, h, w] feature map before global pooling (msda.models.cam_layer_names lists candidates; "
        "msda.models.CamTarget(model, name) pins one)"
    )


def cam_reshape(model: nn.Module) -> ReshapeTransform | None:
    """The transform that turns :func:`cam_layer`'s output into a [B, C, h, w] map, or None if it already is one.

    ViTs need one (:func:`vit_tokens_to_map`, dropping timm's ``num_prefix_tokens`` class/distillation/register
    tokens), and timm's Swin (:func:`channels_last_to_map`); pass it as pytorch-grad-cam's
    ``reshape_transform``. A layer pinned with :class:`CamTarget` gets its family's transform (which passes
    [B, C, h, w] maps through).
    """
    net = unwrap(model)
    if isinstance(net, tvm.VisionTransformer):
        return vit_tokens_to_map
    if _is_timm(net):
        rule = _timm_rule(net)
        return rule[1] if rule is not None else None
    return None
