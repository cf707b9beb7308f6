"""What the model-guided methods need from a model, computed as tensors before the mix.

A :class:`~msda.mixing.Mixer` never runs a model: PuzzleMix takes ``saliency=``, SnapMix and Attentive CutMix
take ``cams=``. These helpers make them from a classifier (``msda.registry.GUIDANCE`` names them):

- :func:`input_gradient_saliency` — PuzzleMix's saliency (Kim, Choo, Song, "Puzzle Mix: Exploiting Saliency and
  Local Statistics for Optimal Mixup", ICML 2020, arXiv:2009.06962, §3): the ℓ2 norm over channels of the
  gradient of the loss with respect to the input pixels. One forward and one backward pass (no parameter
  gradients are accumulated).
- :func:`class_activation_maps` — the class activation map (Zhou et al., "Learning Deep Features for
  Discriminative Localization", CVPR 2016, arXiv:1512.04150) of each image for its own label: the classifier's
  weights for that class applied to the last spatial feature map. SnapMix (arXiv:2012.04846, §3.2) and
  Attentive CutMix (arXiv:2003.13048, §2) both read it. It needs a classifier whose last layers are global
  average pooling and one linear layer (every architecture in :mod:`msda.models` and the torchvision ResNets,
  DenseNets, MobileNets, ConvNeXts …); this is checked numerically, not assumed.

Both run the model in whatever mode it is in (train or eval) and leave it so; in a training loop, wrap them in
``msda.training.loop.frozen_batchnorm_statistics`` so the extra pass does not move batch-norm statistics.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._checks import check_images, describe
from .models.cam import cam_layer, unwrap

__all__ = ["class_activation_maps", "input_gradient_saliency"]


def _check_inputs(model, images, labels) -> tuple[Tensor, Tensor]:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    images = check_images(images)
    if not isinstance(labels, Tensor) or labels.ndim != 1 or labels.shape[0] != images.shape[0] \
            or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be [{images.shape[0]}] integer class indices, got {describe(labels)}")
    if labels.device != images.device:
        raise ValueError(f"labels are on {labels.device} but images are on {images.device}")
    return images, labels.long()


def _check_logits(logits, images: Tensor, labels: Tensor) -> Tensor:
    if not isinstance(logits, Tensor) or logits.ndim != 2 or logits.shape[0] != images.shape[0]:
        raise ValueError(f"the model must return [B, K] logits, got {describe(logits)}")
    if labels.numel() and int(labels.max()) >= logits.shape[1] or labels.numel() and int(labels.min()) < 0:
        raise ValueError(f"labels must be class indices in [0, {logits.shape[1] - 1}] (the model's "
                         f"{logits.shape[1]} outputs), got {describe(labels)}")
    return logits


def input_gradient_saliency(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """PuzzleMix's saliency: ``‖∂ℓ(f(x), y)/∂x‖₂`` over the channels of every pixel.

    Args:
        model: a classifier returning [B, K] logits for ``images`` (as the mixer receives them).
        images: [B, C, H, W] floating point.
        labels: [B] integer class indices.

    Returns [B, H, W] float32, non-negative, on the images' device. The loss is the summed cross-entropy, so
    each sample's map is its own gradient, not scaled by the batch size (PuzzleMix normalises the map anyway).
    Parameter gradients are not touched (``torch.autograd.grad`` with respect to the input only).
    """
    images, labels = _check_inputs(model, images, labels)
    inputs = images.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = _check_logits(model(inputs), images, labels)
        loss = F.cross_entropy(logits.float(), labels, reduction="sum")
        (gradient,) = torch.autograd.grad(loss, inputs)
    return gradient.float().norm(dim=1)


def _pool_and_classifier(net: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """The module whose *input* is the last spatial feature map (the global pooling, else the CAM layer, whose
    output is used) and the final linear layer."""
    linears = [module for module in net.modules() if isinstance(module, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(net).__name__} has no linear classifier: class activation maps need a model "
                         "whose last layers are global average pooling and one linear layer")
    pools = [module for module in net.modules() if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d))]
    return (pools[-1] if pools else None), linears[-1]


def class_activation_maps(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """The class activation map of each image for its label, at the resolution of the last feature map.

    ``CAM_y(i, j) = w_y · F(i, j) + b_y`` with ``F`` the [C, h, w] feature map that global average pooling turns
    into the classifier's input and ``(w_y, b_y)`` the classifier's row for label y — so the map's mean is the
    logit of y. Each map is shifted so its minimum is 0 (SnapMix's normalisation, §3.2, before it rescales the
    map to sum 1); SnapMix and Attentive CutMix only use it up to scale.

    Args:
        model: a classifier (wrappers such as :class:`msda.models.Normalized` and DDP are looked through) whose
            last layers are global average pooling and a linear layer. Checked: the logits must equal the
            linear layer applied to the pooled feature map, else ValueError.
        images: [B, C, H, W] floating point.
        labels: [B] integer class indices.

    Returns [B, h, w] float32, non-negative, on the images' device. Runs under ``torch.no_grad``.
    """
    images, labels = _check_inputs(model, images, labels)
    net = unwrap(model)
    pool, classifier = _pool_and_classifier(net)
    captured = {}
    if pool is not None:
        handle = pool.register_forward_pre_hook(lambda module, args: captured.__setitem__("features", args[0]))
    else:
        try:
            layer = cam_layer(model)
        except ValueError:
            raise ValueError(f"{type(net).__name__}: no global pooling module and no known feature layer; class "
                             "activation maps need a model whose last layers are global average pooling and "
                             "one linear layer") from None
        handle = layer.register_forward_hook(lambda module, args, output: captured.__setitem__("features", output))
    try:
        with torch.no_grad():
            logits = _check_logits(model(images), images, labels)
    finally:
        handle.remove()
    features = captured.get("features")
    if not isinstance(features, Tensor) or features.ndim != 4 or features.shape[1] != classifier.in_features:
        raise ValueError(f"{type(net).__name__}: the last feature map ({describe(features)}) does not feed the "
                         f"final linear layer ({classifier.in_features} inputs); class activation maps need global "
                         "average pooling followed by one linear layer")
    tolerance = 1e-2 if features.dtype == torch.float32 and logits.dtype == torch.float32 else 5e-2  # AMP
    features = features.detach().float()
    weight = classifier.weight.detach().float()[labels]  # [B, C]
    bias = classifier.bias.detach().float()[labels] if classifier.bias is not None else torch.zeros_like(weight[:, 0])
    pooled_logit = (features.mean((2, 3)) * weight).sum(1) + bias
    own_logit = logits.float().gather(1, labels[:, None])[:, 0]
    scale = own_logit.abs().clamp_min(1.0)
    if not bool(((pooled_logit - own_logit).abs() <= tolerance * scale).all()):
        worst = ((pooled_logit - own_logit).abs() / scale).max().item()
        raise ValueError(f"{type(net).__name__}: its logits are not a linear layer applied to the global average "
                         f"of the last feature map (relative mismatch {worst:.3g}); class activation maps need "
                         "a model whose last layers are global average pooling and one linear layer")
    cams = torch.einsum("bc,bchw->bhw", weight, features) + bias[:, None, None]
    return cams - cams.flatten(1).min(1).values[:, None, None]
