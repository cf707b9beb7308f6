"""ResNet-18 / ResNet-50 with the 3×3 stem used for CIFAR in the mixing papers.

The networks are torchvision's ``resnet18`` / ``resnet50`` (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016, arXiv:1512.03385) with the ImageNet stem — 7×7 stride-2 conv and 3×3 max-pool, which
shrink 32×32 inputs to 8×8 before the first stage — replaced by a 3×3 stride-1 conv and no pooling, as in the
CIFAR setups of CutMix (arXiv:1905.04899) and HardMix (hardmix.md §4). Stages keep torchvision's names
``layer1``..``layer4``.
"""

from __future__ import annotations

import torchvision
from torch import nn
from torchvision.models import ResNet

from .._checks import check_int
from ._registry import register_model


def _with_cifar_stem(net: ResNet) -> ResNet:
    net.conv1 = nn.Conv2d(3, net.conv1.out_channels, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's scheme
    net.maxpool = nn.Identity()
    return net


@register_model
def cifar_resnet18(num_classes: int = 10, **kwargs) -> ResNet:
    """torchvision ResNet-18 with a 3×3 stride-1 stem and no max-pool: 11.17 M parameters at 10 classes.

    kwargs go to ``torchvision.models.resnet18`` (e.g. ``zero_init_residual``, ``norm_layer``).
    """
    num_classes = check_int("num_classes", num_classes, low=1)
    return _with_cifar_stem(torchvision.models.resnet18(weights=None, num_classes=num_classes, **kwargs))


@register_model
def cifar_resnet50(num_classes: int = 10, **kwargs) -> ResNet:
    """torchvision ResNet-50 with a 3×3 stride-1 stem and no max-pool: 23.5 M parameters at 10 classes.

    kwargs go to ``torchvision.models.resnet50``.
    """
    num_classes = check_int("num_classes", num_classes, low=1)
    return _with_cifar_stem(torchvision.models.resnet50(weights=None, num_classes=num_classes, **kwargs))
