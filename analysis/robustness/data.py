"""The images of a robustness run, and its report: one engine for ``python -m analysis.robustness`` and the app.

:func:`prepare_data` turns a data choice (shapes or a dataset corrupted on the fly; stored CIFAR-10-C /
CIFAR-100-C / ImageNet-C) into :class:`RobustnessData`, checked against the checkpoints' metadata:
stored sets are discovered with :func:`stored_corruptions`; folders of images are subsampled with
:func:`evenly_spaced` (one rule: ``n == len`` keeps the dataset, ``n > len`` is refused); a count larger than
what a stored set holds is refused (:func:`check_count`), never capped; ImageNet-C's labels are checked against
the checkpoints' classes. :func:`build_report` makes the JSON document both write (its ``rows`` carry the
``method`` and ``seed`` of each model; with per-item outcomes and several methods or seeds, a per-method table
with the intervals and verdicts against ``none`` of :mod:`analysis.verdicts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from msda.data import DATASETS

from ..corruptions import CORRUPTIONS
from .evaluate import DEFAULT_SEVERITIES

__all__ = ["DATA_CHOICES", "ON_THE_FLY", "SHAPES_DEFAULT_N", "STORED", "RobustnessData", "build_report",
           "check_count", "checkpoint_info", "evenly_spaced", "prepare_data", "stored_corruptions"]

STORED = ("cifar10-c", "cifar100-c", "imagenet-c")
ON_THE_FLY = ("shapes-c",) + tuple(f"{name}+corrupt" for name in DATASETS)
DATA_CHOICES = ON_THE_FLY + STORED
SHAPES_DEFAULT_N = 1000
SUMMARY_METRICS = ("clean_error", "corrupted_accuracy", "mean_corrupted_accuracy_15", "mean_corrupted_accuracy_19",
                   "mce", "relative_mce")
META_KEYS = ("path", "arch", "method", "seed", "dataset", "epochs", "test_accuracy", "data_seed", "layout")


@dataclass
class RobustnessData:
    """What to evaluate.

    Attributes:
        name: the data choice (``DATA_CHOICES``).
        description: the data in words.
        num_classes: classes the labels index.
        corruptions, severities: the grid (stored sets: the chosen corruptions present in the folder).
        clean: on the fly: the clean images (a [N, C, H, W] uint8/float tensor or a Dataset) to corrupt; stored:
            the clean test set or None.
        labels: the labels of a `clean` tensor, else None.
        stored: stored sets: (corruption, severity) → Dataset; None on the fly.
        alexnet: whether mCE applies (ImageNet-C).
        data_seed: shapes: the dataset seed.
        notes: what the caller should tell the user (corruptions left out, no clean set).
    """

    name: str
    description: str
    num_classes: int
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    clean: torch.Tensor | Dataset | None
    labels: torch.Tensor | None = None
    stored: dict | None = None
    alexnet: bool = False
    data_seed: int | None = None
    notes: list[str] = field(default_factory=list)


def stored_corruptions(root: str | Path, data: str) -> list[str]:
    """The corruptions a stored set's folder holds, in ``CORRUPTIONS`` order: ``<name>.npy`` files for
    CIFAR-10-C / CIFAR-100-C, ``<name>/`` folders for ImageNet-C."""
    if data not in STORED:
        raise ValueError(f"data must be one of {', '.join(STORED)}, got {data!r}")
    root = Path(root)
    if data == "imagenet-c":
        return [name for name in CORRUPTIONS if (root / name).is_dir()]
    return [name for name in CORRUPTIONS if (root / f"{name}.npy").is_file()]


def evenly_spaced(dataset: Dataset, n: int) -> Dataset:
    """n items spread over the whole dataset (folders are sorted by class: the first n would cover few): items
    ``i · len // n``; the dataset itself when n equals its length. ValueError when n is not in 1 … len."""
    total = len(dataset)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= total:
        raise ValueError(f"n must be an integer in 1 … {total} (the dataset's size), got {n!r}")
    return dataset if n == total else Subset(dataset, [i * total // n for i in range(n)])


def check_count(n: int | None, available: int, data: str) -> int:
    """n itself (None → all `available`); ValueError when a stored set holds fewer (never silently capped)."""
    if n is None:
        return available
    if n > available:
        raise ValueError(f"n must be at most {available} for {data} (that is all it holds), got {n}")
    return n


def prepare_data(data: str, metas: Sequence[dict], *, root: str | Path | None = None,
                 clean_root: str | Path | None = None, corruptions: Sequence[str] | None = None,
                 severities: Sequence[int] = DEFAULT_SEVERITIES, n: int | None = None,
                 data_seed: int | None = None) -> RobustnessData:
    """The images `data` names, checked against the checkpoints' metadata `metas` (``num_classes``,
    ``input_size``, ``classes``, ``data_seed``).

    Args:
        data: one of ``DATA_CHOICES``.
        metas: the checkpoints' metadata; they must agree on ``num_classes`` and ``input_size``.
        root: the dataset's folder (``+corrupt`` sets other than shapes, and stored sets).
        clean_root: stored sets: the clean test set (CIFAR folder, or an ImageNet folder with ``val/``).
        corruptions: the corruptions to evaluate (default all; stored sets: those present). Stored sets leave
            out the chosen corruptions their folder lacks, with a note; none present is an error.
        severities: 1 … 5.
        n: images (shapes: default ``SHAPES_DEFAULT_N``; others: all; folders: evenly spaced). More than a set
            holds is an error.
        data_seed: shapes: the dataset seed (default: the checkpoints' ``data_seed`` when they agree, else 0).

    Returns :class:`RobustnessData`. ValueError with one sentence for the user on any mismatch.
    """
    if data not in DATA_CHOICES:
        raise ValueError(f"data must be one of {', '.join(DATA_CHOICES)}, got {data!r}")
    if not metas:
        raise ValueError("choose at least one checkpoint")
    for key in ("num_classes", "input_size"):
        values = {meta[key] for meta in metas}
        if len(values) > 1:
            raise ValueError(f"the checkpoints disagree on {key} ({sorted(values)}); compare models trained on the "
                             "same data")
    explicit = corruptions is not None
    corruptions = tuple(CORRUPTIONS) if corruptions is None else tuple(corruptions)
    unknown = [name for name in corruptions if name not in CORRUPTIONS]
    if unknown:
        raise ValueError(f"unknown corruption {unknown[0]!r}; allowed: {', '.join(CORRUPTIONS)}")
    if not corruptions:
        raise ValueError("choose at least one corruption")
    corruptions = tuple(sorted(set(corruptions), key=CORRUPTIONS.index))
    severities = tuple(sorted(set(int(s) for s in severities)))
    if not severities or not all(1 <= s <= 5 for s in severities):
        raise ValueError(f"severities must be integers in 1 … 5 (at least one), got {list(severities)}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"n must be a positive integer, got {n!r}")
    size, num_classes = int(metas[0]["input_size"]), int(metas[0]["num_classes"])
    if data in STORED:
        return _stored(data, metas, Path(root) if root else None, clean_root, corruptions if explicit else None,
                       severities, n, size)
    name = "shapes" if data == "shapes-c" else data.removesuffix("+corrupt")
    from msda.data import Shapes, load_dataset

    if name == "shapes":
        from ..shapes_version import shapes_version

        seeds = {meta.get("data_seed") for meta in metas}
        seed = data_seed if data_seed is not None else (seeds.pop() if len(seeds) == 1 else None) or 0
        count = n or SHAPES_DEFAULT_N
        dataset = Shapes("test", n=count, size=size, seed=seed,
                         version=shapes_version(meta.get("classes") for meta in metas))
        images, labels = dataset.as_tensors()
        result = RobustnessData(data, f"{count} shapes test images (version {dataset.version}, {size} px, data seed "
                                      f"{seed}) corrupted on the fly", dataset.num_classes, corruptions, severities,
                                images, labels, data_seed=seed)
    elif name in ("cifar10", "cifar100"):
        dataset = load_dataset(name, "test", root=root)
        _check_size(data, 32, size)
        images, labels = dataset.as_tensors()
        count = check_count(n, len(labels), data)
        result = RobustnessData(data, f"the first {count} {name} test images corrupted on the fly",
                                dataset.num_classes, corruptions, severities, images[:count], labels[:count])
    else:
        dataset = load_dataset("imagefolder", "test", root=root, size=size)
        count = check_count(n, len(dataset), data)
        result = RobustnessData(data, f"{count} images of {root}/val ({size} px) corrupted on the fly",
                                dataset.num_classes, corruptions, severities, evenly_spaced(dataset, count))
    _check_classes(result.num_classes, num_classes, data)
    return result


def _stored(data, metas, root, clean_root, corruptions, severities, n, size) -> RobustnessData:
    from msda.data import load_dataset

    from ..corrupted_data import CifarC, ImageNetC

    if root is None or not root.is_dir():
        raise ValueError(f"the {data} folder {str(root) if root else ''!r} does not exist; give the folder that "
                         "holds its files")
    present = stored_corruptions(root, data)
    corruptions = tuple(present) if corruptions is None else corruptions
    chosen = tuple(name for name in corruptions if name in present)
    notes = []
    missing = [name for name in corruptions if name not in present]
    layout = "<corruption>/<severity>/<wnid>/*.JPEG" if data == "imagenet-c" else "<corruption>.npy"
    if not present:
        raise ValueError(f"{root} holds no {data} corruption ({layout} for any of {', '.join(CORRUPTIONS)})")
    if not chosen:
        raise ValueError(f"{root} holds none of the chosen corruptions (expected {layout}; found "
                         f"{', '.join(present) or 'none'})")
    if missing:
        notes.append(f"Not in {root}, so left out: {', '.join(missing)}.")
    classes = list(metas[0].get("classes") or [])
    stored = {}
    if data == "imagenet-c":
        first = ImageNetC(root, chosen[0], severities[0])
        # Labels index the checkpoints' classes when those are the wnids (our imagefolder training), else the
        # sorted wnids (torchvision's ImageNet order).
        labels = classes if classes and set(first.classes) <= set(classes) else list(first.classes)
        _check_classes(len(labels), int(metas[0]["num_classes"]), data)
        _check_size(data, first[0][0].shape[-1], size)
        for name in chosen:
            for severity in severities:
                dataset = ImageNetC(root, name, severity, classes=labels)
                stored[name, severity] = evenly_spaced(dataset, check_count(n, len(dataset), data))
        clean = None
        if clean_root:
            clean_set = load_dataset("imagefolder", "test", root=clean_root, size=size)
            if list(clean_set.classes) != labels:
                raise ValueError(f"the clean folder {clean_root}: its classes ({len(clean_set.classes)}, from "
                                 f"{clean_set.classes[0]}) are not the {len(labels)} classes the ImageNet-C labels "
                                 f"index ({'the checkpoints' if labels == classes else 'sorted wnids'})")
            clean = evenly_spaced(clean_set, check_count(n, len(clean_set), "the clean ImageNet folder"))
        else:
            notes.append("No clean ImageNet folder given: no clean error and no relative mCE.")
        count = len(next(iter(stored.values())))
        return RobustnessData(data, f"ImageNet-C at {root}, {count} images per cell", len(labels), chosen, severities,
                              clean, stored=stored, alexnet=True, notes=notes)
    base = data.removesuffix("-c")
    _check_classes(10 if base == "cifar10" else 100, int(metas[0]["num_classes"]), data)
    _check_size(data, 32, size)
    for name in chosen:
        for severity in severities:
            dataset = CifarC(root, name, severity)
            stored[name, severity] = Subset(dataset, range(check_count(n, len(dataset), data)))
    clean = None
    if clean_root:
        clean_set = load_dataset(base, "test", root=clean_root)
        clean = Subset(clean_set, range(check_count(n, len(clean_set), f"the clean {base} test set")))
    else:
        notes.append(f"No clean test set given: no clean error (give the {base.upper()} folder to get it).")
    count = len(next(iter(stored.values())))
    return RobustnessData(data, f"{base.upper()}-C at {root}, the first {count} images per cell",
                          10 if base == "cifar10" else 100, chosen, severities, clean, stored=stored, notes=notes)


def _check_size(data: str, image_size: int, input_size: int) -> None:
    if image_size != input_size:
        raise ValueError(f"{data} has {image_size}-px images but the checkpoints take {input_size}-px inputs")


def _check_classes(data_classes: int, model_classes: int, data: str) -> None:
    if data_classes != model_classes:
        raise ValueError(f"the checkpoints have {model_classes} classes, {data} has {data_classes}")


# ----------------------------------------------------------------------------------------------- the report


def build_report(results, curves: dict | None, *, alexnet: bool, data: dict, checkpoints: dict[str, dict],
                 settings: dict, command: str | None = None, written_by: str | None = None,
                 replication: tuple | None = None) -> dict[str, Any]:
    """The JSON document of a run, as the command line and the app write it and
    :func:`analysis.robustness.read_report` reads it back.

    Keys: ``command``, ``written_by``, ``settings``, ``data``, ``checkpoints`` (model → metadata), ``columns``
    (the summary's definitions), ``summary`` (one row per model, with ``method``, ``seed`` and ``arch``),
    ``alexnet_normalised`` (ImageNet-C), ``fgsm`` (with FGSM); when the run kept per-item outcomes
    (``keep_items``) and holds two methods or several seeds of one, ``interval`` and ``methods``: per method
    and metric (the summary's, each group's and corruption's accuracy, each ε's FGSM accuracy as
    ``fgsm_<ε·255>_255``) the mean with its 95 % interval and :func:`analysis.stats.compare`'s paired
    difference and verdict against ``none`` (:func:`analysis.verdicts.method_table`); with `replication`
    (the (results, curves) of the same run on an independent split) also whether each verdict replicates.
    Last ``rows``: the long table with ``method`` and ``seed`` columns.
    """
    from ..verdicts import INTERVAL_NOTE, method_table, wants_method_table
    from .tables import (HIGHER_IS_BETTER, SUMMARY_COLUMNS, alexnet_normalised, fgsm_table, item_outcomes,
                         long_table, metric_cells, summarise)

    summary = summarise(results, alexnet=alexnet)
    for position, key in enumerate(("method", "seed", "arch")):
        summary.insert(1 + position, key, [checkpoints.get(name, {}).get(key) for name in summary["model"]])
    report: dict[str, Any] = {"command": command, "written_by": written_by, "settings": settings, "data": data,
                              "checkpoints": checkpoints,
                              "columns": {key: text for key, text in SUMMARY_COLUMNS.items() if key in summary.columns},
                              "summary": summary}
    if alexnet:
        report["alexnet_normalised"] = alexnet_normalised(results)
    if curves:
        report["fgsm"] = fgsm_table(curves)
    methods_of = {name: checkpoints.get(name, {}).get("method") for name in summary["model"]}
    eps = next(iter(curves.values())).eps if curves else ()
    outcomes = item_outcomes(results, curves)
    if outcomes and wants_method_table(methods_of):
        def cells(run_results, run_curves):
            return metric_cells(item_outcomes(run_results, run_curves), results.corruptions, results.severities, eps)

        report["interval"] = INTERVAL_NOTE
        report["methods"] = method_table(
            cells(results, curves), methods=methods_of, higher_is_better=HIGHER_IS_BETTER,
            seeds={name: checkpoints.get(name, {}).get("seed") for name in summary["model"]},
            replication=None if replication is None else cells(*replication))
    rows = long_table(results, curves or None)
    for position, key in enumerate(("method", "seed")):
        rows.insert(1 + position, key, [checkpoints.get(name, {}).get(key) for name in rows["model"]])
    report["rows"] = rows
    return report


def checkpoint_info(metas: dict[str, dict]) -> dict[str, dict]:
    """model → the metadata a report keeps (``META_KEYS``)."""
    return {name: {key: meta.get(key) for key in META_KEYS} for name, meta in metas.items()}
