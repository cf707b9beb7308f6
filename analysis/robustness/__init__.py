"""Robustness of trained classifiers: common corruptions (CIFAR-10-C, CIFAR-100-C, ImageNet-C, or any dataset
corrupted on the fly on the device) and FGSM.

Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and Perturbations",
ICLR 2019, arXiv:1903.12261: top-1 error per corruption and severity, mean corrupted accuracy, and for
ImageNet-C the Corruption Error normalised by AlexNet's (CE, mCE, relative mCE; see
:mod:`analysis.robust_metrics` for the AlexNet table and its source). Goodfellow, Shlens & Szegedy,
"Explaining and Harnessing Adversarial Examples", ICLR 2015, arXiv:1412.6572: accuracy under the Fast
Gradient Sign Method as a function of ε on the [0, 1] pixel scale (the attack runs before the model's own
normalisation; adversarial images are clamped to [0, 1]).

The functions count correct predictions as integers, so shards of the test set evaluated by the ranks of a
``torchrun`` job add up exactly (``results.reduced(all_sum)``). On-the-fly corruption is seeded per
(corruption, severity, block of images): every model sees exactly the same corrupted images, and a rerun
with the same seed and batch size on the same kind of device sees them again.

    from analysis import load_checkpoint
    from analysis.robustness import evaluate_corruptions, fgsm_curves, summarise

    models = {"cutmix": load_checkpoint("cutmix.safetensors")[0]}
    results = evaluate_corruptions(models, images, labels, severities=(1, 3, 5), generator_seed=0)
    summarise(results)          # one row per model: clean error, mean corrupted accuracy (15, 19), groups
    fgsm_curves(models, images, labels)["cutmix"].accuracy

The data of a run and its report come from :mod:`.data` (:func:`prepare_data`, :func:`build_report`), shared
by the command line and the app's Robustness page. The command line keeps every model's per-item hits
(``robustness_outcomes.safetensors``); with several methods or seeds (metadata ``method`` and ``seed``) the
report gets a per-method table: each metric's mean with its 95 % interval and the paired difference to ``none``
with :func:`analysis.stats.compare`'s verdict (:func:`analysis.verdicts.method_table`), and with
``--replication-data-seed`` whether each verdict replicates on an independent test split.

From the command line (CSV + JSON + self-contained HTML report; ``torchrun --nproc_per_node N -m
analysis.robustness …`` shards the evaluation over N processes):

    python -m analysis.robustness --checkpoint checkpoints/*.safetensors --data shapes-c --out reports/robustness
    python -m analysis.robustness --checkpoint 'runs/shapes-scratch/*.safetensors' --n 100 --out reports/robustness
"""

from .data import (DATA_CHOICES, RobustnessData, build_report, check_count, checkpoint_info, evenly_spaced,
                   prepare_data, stored_corruptions)
from .evaluate import (DEFAULT_FGSM_EPS, DEFAULT_SEVERITIES, FGSMCurve, RobustnessResults, corruption_seed,
                       evaluate_corrupted_datasets, evaluate_corruptions, fgsm_curve, fgsm_curves, shard_blocks)
from .figures import error_heatmaps, fgsm_figure, summary_bars
from .reports import read_report
from .tables import SUMMARY_COLUMNS, alexnet_normalised, fgsm_table, long_table, summarise

__all__ = ["DATA_CHOICES", "RobustnessData", "build_report", "check_count", "checkpoint_info", "evenly_spaced",
           "prepare_data", "stored_corruptions", "DEFAULT_FGSM_EPS", "DEFAULT_SEVERITIES", "SUMMARY_COLUMNS", "FGSMCurve", "RobustnessResults",
           "alexnet_normalised", "corruption_seed", "error_heatmaps", "evaluate_corrupted_datasets",
           "evaluate_corruptions", "fgsm_curve", "fgsm_curves", "fgsm_figure", "fgsm_table", "long_table",
           "read_report", "shard_blocks", "summarise", "summary_bars"]
