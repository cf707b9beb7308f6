"""The CIFAR ResNets of He et al.: resnet20, resnet32, resnet56.

He, Zhang, Ren, Sun. "Deep Residual Learning for Image Recognition", CVPR 2016, §4.2. arXiv:1512.03385.

A 3×3 stem conv with 16 filters, then three stages (``layer1``..``layer3``) of n BasicBlocks with 16, 32 and
64 channels at strides 1, 2, 2, global average pooling and a linear classifier: depth 6n + 2. The blocks are
torchvision's ``BasicBlock``; only the stage layout and the shortcut differ from torchvision's ResNet.

Shortcuts where the shape changes: ``shortcut="A"`` (default, as in the paper's CIFAR experiments) subsamples
by the stride and pads the new channels with zeros — no parameters, so resnet20/56 have the published 0.27 M /
0.85 M parameters; ``shortcut="B"`` uses a strided 1×1 conv + BatchNorm (a few thousand more parameters).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, conv1x1, conv3x3

from .._checks import check_choice, check_int
from ._init import kaiming_init
from ._registry import register_model

SHORTCUTS = ("A", "B")


class ZeroPadShortcut(nn.Module):
    """Option-A shortcut: keep every `stride`-th pixel and append zero channels up to `out_channels`."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        # F.pad's 6-tuple pads (W, H, C) from the last dim inwards: only the channel dim grows.
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))

    def extra_repr(self) -> str:
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


class CifarResNet(nn.Module):
    """ResNet-(6n + 2) for 32×32 inputs (any size ≥ 8 works: the head pools globally).

    Args:
        depth: 6n + 2 with n ≥ 1 (20, 32, 44, 56, 110, …).
        num_classes: outputs of the linear classifier.
        shortcut: "A" (zero-padding identity, parameter-free) or "B" (1×1 conv + BN) where the shape changes.
        zero_init_residual: start each block's last BN at zero, so every block begins as the identity.

    Input [B, 3, H, W] (normalised), output logits [B, num_classes].
    """

    def __init__(self, depth: int, num_classes: int = 10, *, shortcut: str = "A",
                 zero_init_residual: bool = False) -> None:
        super().__init__()
        depth = check_int("depth", depth, low=8)
        if (depth - 2) % 6:
            raise ValueError(f"depth must be 6n + 2 (20, 32, 44, 56, 110, …), got {depth}")
        num_classes = check_int("num_classes", num_classes, low=1)
        self.shortcut = check_choice("shortcut", shortcut, SHORTCUTS)
        blocks_per_stage = (depth - 2) // 6

        self.conv1 = conv3x3(3, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._stage(16, 16, blocks_per_stage, stride=1)
        self.layer2 = self._stage(16, 32, blocks_per_stage, stride=2)
        self.layer3 = self._stage(32, 64, blocks_per_stage, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)

        kaiming_init(self)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, BasicBlock):
                    nn.init.zeros_(module.bn2.weight)

    def _stage(self, in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or in_channels != out_channels:
            if self.shortcut == "A":
                downsample = ZeroPadShortcut(in_channels, out_channels, stride)
            else:
                downsample = nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
        layers = [BasicBlock(in_channels, out_channels, stride, downsample)]
        layers += [BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


@register_model
def resnet20(num_classes: int = 10, *, shortcut: str = "A", zero_init_residual: bool = False) -> CifarResNet:
    """ResNet-20 (n = 3), 0.27 M parameters with option-A shortcuts. See :class:`CifarResNet`."""
    return CifarResNet(20, num_classes, shortcut=shortcut, zero_init_residual=zero_init_residual)


@register_model
def resnet32(num_classes: int = 10, *, shortcut: str = "A", zero_init_residual: bool = False) -> CifarResNet:
    """ResNet-32 (n = 5), 0.46 M parameters with option-A shortcuts. See :class:`CifarResNet`."""
    return CifarResNet(32, num_classes, shortcut=shortcut, zero_init_residual=zero_init_residual)


@register_model
def resnet56(num_classes: int = 10, *, shortcut: str = "A", zero_init_residual: bool = False) -> CifarResNet:
    """ResNet-56 (n = 9), 0.85 M parameters with option-A shortcuts. See :class:`CifarResNet`."""
    return CifarResNet(56, num_classes, shortcut=shortcut, zero_init_residual=zero_init_residual)
