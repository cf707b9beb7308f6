"""msda: mixed sample data augmentation, per-sample and batched, on whatever device the tensors live on.

The λ convention is stated once, in :mod:`msda.mixing`: ``mask`` is the weight of a sample's own image,
``x̃ = mask·x + (1 − mask)·x_partner`` and the own label's weight is ``lam = mask.mean((1, 2, 3))``.
"""

from . import methods as _methods  # noqa: F401  (registers every method)
from . import guidance
from .mixing import Mixer, MixOutput, soft_cross_entropy, soft_targets
from .registry import MethodInfo, Param, mask_functions, method_names, methods_info

__version__ = "0.1.0"

METHODS: tuple[str, ...] = method_names()
"""Names of all mixing methods, in registry order."""

MASKS = mask_functions()
"""Name → mask generator ``fn(lam, height, width, *, generator=None, **params) -> [B, 1, H, W]`` for the
methods whose mask needs no image."""

__all__ = ["METHODS", "MASKS", "Mixer", "MixOutput", "MethodInfo", "Param", "methods_info",
           "soft_cross_entropy", "soft_targets", "__version__"]
