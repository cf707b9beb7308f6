"""Calibration of trained classifiers: ECE, MCE, NLL and Brier score before and after temperature scaling,
reliability diagrams, and confidence against accuracy on corrupted images.

The claims it tests. Thulasidasan et al., "On Mixup Training: Improved Calibration and Predictive Uncertainty
for Deep Neural Networks", NeurIPS 2019 (arXiv:1905.11001): mixup lowers the ECE and the over-confidence on
out-of-distribution data. Wang et al., "On the Pitfall of Mixup for Uncertainty Calibration", CVPR 2023: once
temperature scaling (Guo et al., "On Calibration of Modern Neural Networks", ICML 2017, arXiv:1706.04599) is
applied, mixing can leave a model *worse* calibrated than one trained without it. So every metric is reported
before and after a temperature fitted on a calibration split disjoint from the test split.

ECE and MCE are torchmetrics' (15 equal-width bins); NLL is ``F.cross_entropy``; the temperature is fitted by
L-BFGS on the NLL (:mod:`.metrics`). The study (:mod:`.study`) keeps every model's per-image outcomes and
compares methods with :func:`analysis.stats.compare` — intervals over seeds and images, Holm-corrected verdicts
against ``none``; the ECE is recomputed on every bootstrap replicate (``metric=``).

    python -m analysis.calibration --checkpoints 'checkpoints/seeds/*.safetensors' --n 2000 --n-calibration 1000 \\
        --corrupted-n 200 --out reports/calibration --manifest checkpoints/manifest.json
"""

from .figures import confidence_histogram, reliability_figure, severity_figure
from .metrics import (N_BINS, brier_scores, calibration_error_metric, calibration_metrics, check_logits,
                      expected_calibration_error, fit_temperature, item_outcomes, max_calibration_error,
                      reliability_bins, top_confidence)
from .study import METRICS, calibration_study, check_splits, method_table, model_logits, severity_table

__all__ = ["N_BINS", "METRICS", "brier_scores", "calibration_error_metric", "calibration_metrics",
           "calibration_study", "check_logits", "check_splits", "confidence_histogram", "expected_calibration_error",
           "fit_temperature", "item_outcomes", "max_calibration_error", "method_table", "model_logits",
           "reliability_bins", "reliability_figure", "severity_figure", "severity_table", "top_confidence"]
