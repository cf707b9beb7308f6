"""Wide ResNets: pre-activation ResNets with k-times wider stages and dropout between the two convs.

Zagoruyko, Komodakis. "Wide Residual Networks", BMVC 2016. arXiv:1605.07146.

WRN-d-k: a 3×3 stem conv with 16 filters, three stages ``layer1``..``layer3`` of (d − 4)/6 wide blocks with
16k/32k/64k channels at strides 1, 2, 2, a final BN + ReLU, global pooling and a linear classifier. A strided
1×1 conv on the pre-activated input is the shortcut where the shape changes, as in the authors' code.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import conv1x1, conv3x3

from .._checks import check_int, check_real
from ._init import kaiming_init
from ._registry import register_model


class WideBlock(nn.Module):
    """BN → ReLU → conv3×3 → BN → ReLU → dropout → conv3×3, plus the shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.shortcut = (conv1x1(in_channels, out_channels, stride)
                         if stride != 1 or in_channels != out_channels else None)

    def forward(self, x: Tensor) -> Tensor:
        activated = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(activated)
        out = self.conv1(activated)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + shortcut


class WideResNet(nn.Module):
    """WRN-depth-widen_factor. Input [B, 3, H, W] (normalised), output logits [B, num_classes].

    Args:
        depth: 6n + 4 with n ≥ 1 (16, 22, 28, 40, …).
        widen_factor: k, the width multiplier of the three stages.
        dropout: dropout probability between the two convs of each block (the paper uses 0.3 in some runs).
        num_classes: outputs of the linear classifier.
    """

    def __init__(self, depth: int = 28, widen_factor: int = 10, *, dropout: float = 0.0,
                 num_classes: int = 10) -> None:
        super().__init__()
        depth = check_int("depth", depth, low=10)
        if (depth - 4) % 6:
            raise ValueError(f"depth must be 6n + 4 (16, 22, 28, 40, …), got {depth}")
        widen_factor = check_int("widen_factor", widen_factor, low=1)
        dropout = check_real("dropout", dropout, low=0.0, high=1.0, high_open=True)
        num_classes = check_int("num_classes", num_classes, low=1)
        blocks_per_stage = (depth - 4) // 6
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)

        self.conv1 = conv3x3(3, 16)
        in_channels = 16
        for index, width in enumerate(widths):
            stride = 1 if index == 0 else 2
            stage = [WideBlock(in_channels, width, stride, dropout)]
            stage += [WideBlock(width, width, 1, dropout) for _ in range(blocks_per_stage - 1)]
            self.add_module(f"layer{index + 1}", nn.Sequential(*stage))
            in_channels = width
        self.final_norm = nn.BatchNorm2d(in_channels)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        kaiming_init(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.relu(self.final_norm(x))
        return self.fc(self.avgpool(x).flatten(1))


@register_model
def wrn28_10(num_classes: int = 10, *, dropout: float = 0.0) -> WideResNet:
    """WRN-28-10: 36.5 M parameters at 10 classes."""
    return WideResNet(28, 10, dropout=dropout, num_classes=num_classes)
