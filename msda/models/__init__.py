"""Classifiers for the training and analysis code: our CIFAR architectures and torchvision's, by name.

Ours (one file per family): the CIFAR ResNets of He et al. 2016 (``resnet20/32/56``, :mod:`.cifar_resnet`),
torchvision's ResNet-18/50 with a 3×3 stem (``cifar_resnet18/50``, :mod:`.cifar_stem_resnet`), PreAct-ResNet-18
(:mod:`.preact_resnet`) and WRN-28-10 (:mod:`.wide_resnet`). Every stage is named ``layer1``..``layerN``, so the
last stage is the Grad-CAM layer (:func:`cam_layer`). torchvision's classifiers go by their names, timm's by
``"timm/<name>"`` (:mod:`.timm_models`). Models never name a device: move them with ``.to()``.

Adding an architecture: one file with a ``@register_model`` constructor, one import line below.
"""

from . import cifar_resnet, cifar_stem_resnet, preact_resnet, wide_resnet  # noqa: F401  (register the archs)
from ._factory import build_model, list_models, torchvision_names
from ._registry import register_model, registered_names
from .cam import TIMM_FAMILIES, CamTarget, cam_layer, cam_layer_name, cam_layer_names, cam_reshape, vit_tokens_to_map
from .cifar_resnet import CifarResNet
from .normalized import Normalized
from .preact_resnet import PreActResNet
from .timm_models import TIMM_PREFIX, fixed_input_size, timm_data_config, timm_names
from .wide_resnet import WideResNet

ARCHS: tuple[str, ...] = registered_names()
"""Our architecture names, in registry order."""

__all__ = ["ARCHS", "CamTarget", "CifarResNet", "Normalized", "PreActResNet", "TIMM_FAMILIES", "TIMM_PREFIX",
           "WideResNet", "build_model", "cam_layer", "cam_layer_name", "cam_layer_names", "cam_reshape",
           "fixed_input_size", "list_models", "register_model", "timm_data_config", "timm_names",
           "torchvision_names", "vit_tokens_to_map"]
