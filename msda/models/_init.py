"""Weight initialisation shared by the model families of this package."""

from __future__ import annotations

from torch import nn


def kaiming_init(model: nn.Module) -> None:
    """He-normal (fan-out) convolutions, unit-scale norms, zero biases — torchvision's ResNet scheme.

    He, Zhang, Ren, Sun. "Delving Deep into Rectifiers", ICCV 2015. arXiv:1502.01852.
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.zeros_(module.bias)
