"""analysis: what you do with trained models — checkpoint loading, Grad-CAM, occlusion studies,
corruption robustness and FGSM. Functions return tensors on the inputs' device."""

from __future__ import annotations

# Bound after the submodule import, so that ``analysis.cam`` is the function and not the module cam.py.
from .cam import CAM_METHODS, cam
from .checkpoints import load_checkpoint
from .corrupted_data import CifarC, ImageNetC
from .corruptions import BENCHMARK_CORRUPTIONS, CORRUPTION_GROUPS, CORRUPTIONS, corrupt
from .occlusion import (OCCLUDER_KINDS, STUDY_METRICS, occlude, occluder_region, occlusion_sensitivity,
                        occlusion_study, sample_boxes)
from .robustness import (RobustnessResults, evaluate_corrupted_datasets, evaluate_corruptions, fgsm_curve,
                         fgsm_curves, summarise)

__all__ = ["load_checkpoint", "cam", "CAM_METHODS", "OCCLUDER_KINDS", "STUDY_METRICS", "occlude",
           "occluder_region", "occlusion_sensitivity", "occlusion_study", "sample_boxes", "CORRUPTIONS",
           "BENCHMARK_CORRUPTIONS", "CORRUPTION_GROUPS", "corrupt", "CifarC", "ImageNetC",
           "RobustnessResults", "evaluate_corruptions", "evaluate_corrupted_datasets", "fgsm_curve", "fgsm_curves",
           "summarise"]
