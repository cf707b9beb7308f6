"""Pre-activation ResNet-18: BN → ReLU → conv inside each block, identity paths kept clean.

He, Zhang, Ren, Sun. "Identity Mappings in Deep Residual Networks", ECCV 2016. arXiv:1603.05027.

The CIFAR layout used by the mixing papers (Manifold Mixup, PuzzleMix): a 3×3 stem conv with 64 filters, four
stages ``layer1``..``layer4`` of two blocks with 64/128/256/512 channels at strides 1, 2, 2, 2, and — because a
pre-activation network's last block outputs an un-normalised sum — a final BN + ReLU before global pooling.
Where the shape changes, the shortcut is a strided 1×1 conv on the block's pre-activated input (option B).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import conv1x1, conv3x3

from .._checks import check_int
from ._init import kaiming_init
from ._registry import register_model


class PreActBlock(nn.Module):
    """Two 3×3 convs, each preceded by BN + ReLU; output = residual + shortcut (no activation after the sum)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.shortcut = (conv1x1(in_channels, out_channels, stride)
                         if stride != 1 or in_channels != out_channels else None)

    def forward(self, x: Tensor) -> Tensor:
        activated = F.relu(self.bn1(x))
        # A projection sees the activated input (as in the paper's Fig. 4e); an identity keeps x untouched.
        shortcut = x if self.shortcut is None else self.shortcut(activated)
        out = self.conv1(activated)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet(nn.Module):
    """Pre-activation ResNet with PreActBlocks; ``blocks`` per stage, e.g. (2, 2, 2, 2) for ResNet-18.

    Input [B, 3, H, W] (normalised), output logits [B, num_classes].
    """

    def __init__(self, blocks: tuple[int, ...] = (2, 2, 2, 2), num_classes: int = 10) -> None:
        super().__init__()
        num_classes = check_int("num_classes", num_classes, low=1)
        if len(blocks) != 4:
            raise ValueError(f"blocks must give the number of blocks of each of the 4 stages, got {blocks!r}")
        blocks = tuple(check_int("blocks per stage", count, low=1) for count in blocks)
        widths = (64, 128, 256, 512)
        self.conv1 = conv3x3(3, widths[0])
        in_channels = widths[0]
        for index, (width, count) in enumerate(zip(widths, blocks)):
            stride = 1 if index == 0 else 2
            stage = [PreActBlock(in_channels, width, stride)] + [PreActBlock(width, width) for _ in range(count - 1)]
            self.add_module(f"layer{index + 1}", nn.Sequential(*stage))
            in_channels = width
        self.final_norm = nn.BatchNorm2d(in_channels)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)
        kaiming_init(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv1(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = F.relu(self.final_norm(x))
        return self.fc(self.avgpool(x).flatten(1))


@register_model
def preact_resnet18(num_classes: int = 10) -> PreActResNet:
    """PreAct-ResNet-18: 11.17 M parameters at 10 classes."""
    return PreActResNet((2, 2, 2, 2), num_classes)
