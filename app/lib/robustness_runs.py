"""Robustness runs of the app: the data, a background thread with progress and cancellation, and the results
files (written like ``python -m analysis.robustness`` writes them, and read back from either).

The evaluation is :mod:`analysis.robustness`'s. The thread asks it for one (corruption, severity) cell at a
time — :func:`analysis.robustness.evaluate_corruptions` seeds every cell's corruptions from (seed,
corruption, severity, block of ``BATCH_SIZE`` images) alone, so cell by cell gives exactly the counts of
one call over the grid, and of the command line with the same seed — and files each cell's integer counts
into the grid of :class:`analysis.RobustnessResults`. Between cells it reports progress and honours a
cancellation. The thread owns copies of the models, so the cached models the other pages hook into stay
free, and one run at a time is evaluated per server (the others wait their turn).
"""

from __future__ import annotations

import copy
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, Subset

from .checkpoints import LoadedModel

SOURCES = {
    "shapes": "shapes test split, corrupted on the fly",
    "cifar-c": "CIFAR-10-C / CIFAR-100-C folder",
    "imagenet-c": "ImageNet-C folder",
}
BATCH_SIZE = 256
"""The command line's default: the corrupted images depend on it, so keeping it makes runs comparable."""
META_KEYS = ("path", "arch", "method", "dataset", "epochs", "test_accuracy", "data_seed", "layout")
_ONE_RUN_AT_A_TIME = threading.Lock()


@dataclass(frozen=True)
class RunRequest:
    """What to evaluate (the page's settings)."""

    source: str
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    n: int
    seed: int = 0
    fgsm: bool = False
    root: str = ""
    clean_root: str = ""


@dataclass
class PreparedData:
    """The images of a run: a clean set corrupted on the fly, or stored corrupted sets (and maybe clean ones)."""

    name: str
    description: str
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    images: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    stored: dict[tuple[str, int], Dataset] | None = None
    clean: Dataset | None = None
    alexnet: bool = False
    data_seed: int | None = None
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------- data


def _agreeing(models: list[LoadedModel], key: str) -> Any:
    values = {loaded.meta[key] for loaded in models}
    if len(values) > 1:
        listing = ", ".join(f"{loaded.name}: {loaded.meta[key]}" for loaded in models)
        raise ValueError(f"the checkpoints disagree on {key} ({listing}); compare models trained on the same data")
    return values.pop()


def prepare_data(request: RunRequest, models: list[LoadedModel]) -> PreparedData:
    """The images the request names, checked against the models; ValueError with a message for the page."""
    from analysis.corruptions import CORRUPTIONS

    if not models:
        raise ValueError("choose at least one checkpoint")
    if not request.corruptions:
        raise ValueError("choose at least one corruption")
    if not request.severities:
        raise ValueError("choose at least one severity (1 … 5)")
    num_classes, size = _agreeing(models, "num_classes"), _agreeing(models, "input_size")
    corruptions = tuple(sorted(request.corruptions, key=CORRUPTIONS.index))
    severities = tuple(sorted(request.severities))
    if request.source == "shapes":
        return _shapes(request, models, num_classes, size, corruptions, severities)
    root = Path(request.root.strip()).expanduser()
    if not request.root.strip() or not root.is_dir():
        raise ValueError(f"the {SOURCES[request.source]} {request.root.strip()!r} does not exist; type the path of "
                         "the folder on this machine")
    if request.source == "cifar-c":
        return _cifar_c(request, root, num_classes, size, corruptions, severities)
    return _imagenet_c(request, root, models, size, corruptions, severities)


def _shapes(request, models, num_classes, size, corruptions, severities) -> PreparedData:
    from msda.data import load_dataset

    if num_classes != 10:
        raise ValueError(f"the shapes dataset has 10 classes, the checkpoints {num_classes}")
    seeds = {loaded.meta.get("data_seed") for loaded in models}
    data_seed = seeds.pop() if len(seeds) == 1 and None not in seeds else 0
    dataset = load_dataset("shapes", "test", n=request.n, size=size, seed=data_seed)
    images, labels = dataset.as_tensors()
    return PreparedData("shapes-c", f"{request.n} shapes test images ({size} px, data seed {data_seed}) corrupted "
                                    f"on the fly (seed {request.seed})", corruptions, severities,
                        images=images, labels=labels, data_seed=data_seed)


def _present(root: Path, corruptions, stored_as_folders: bool) -> tuple[tuple[str, ...], list[str]]:
    from analysis.corruptions import CORRUPTIONS

    found = [name for name in CORRUPTIONS
             if ((root / name).is_dir() if stored_as_folders else (root / f"{name}.npy").is_file())]
    chosen = tuple(name for name in corruptions if name in found)
    notes = []
    missing = [name for name in corruptions if name not in found]
    if missing:
        notes.append(f"Not in {root}, so left out: {', '.join(missing)}.")
    if not chosen:
        layout = "<corruption>/<severity>/<wnid>/*.JPEG" if stored_as_folders else "<corruption>.npy"
        raise ValueError(f"{root} holds none of the chosen corruptions (expected {layout}; found "
                         f"{', '.join(found) or 'none'})")
    return chosen, notes


def _cifar_c(request, root, num_classes, size, corruptions, severities) -> PreparedData:
    from analysis import CifarC
    from msda.data import load_dataset

    if num_classes not in (10, 100) or size != 32:
        raise ValueError(f"CIFAR-10-C / CIFAR-100-C need 32-px checkpoints with 10 or 100 classes; these take "
                         f"{size}-px images and have {num_classes} classes")
    base = "cifar10" if num_classes == 10 else "cifar100"
    chosen, notes = _present(root, corruptions, stored_as_folders=False)
    stored = {}
    for name in chosen:
        for severity in severities:
            dataset = CifarC(root, name, severity)
            stored[name, severity] = Subset(dataset, range(min(request.n, len(dataset))))
    clean = None
    if request.clean_root.strip():
        clean_set = load_dataset(base, "test", root=request.clean_root.strip())
        clean = Subset(clean_set, range(min(request.n, len(clean_set))))
    else:
        notes.append("No clean test set given: no clean error (type the CIFAR folder to get it).")
    return PreparedData(f"{base}-c", f"{base.upper()}-C at {root}, the first {request.n} images per cell", chosen,
                        severities, stored=stored, clean=clean, notes=notes)


def _evenly_spaced(dataset: Dataset, n: int) -> Dataset:
    """n images spread over the whole dataset (folders are sorted by class: the first n would cover few)."""
    total = len(dataset)
    return dataset if n >= total else Subset(dataset, [i * total // n for i in range(n)])


def _imagenet_c(request, root, models, size, corruptions, severities) -> PreparedData:
    from analysis import ImageNetC
    from msda.data import load_dataset

    chosen, notes = _present(root, corruptions, stored_as_folders=True)
    first = ImageNetC(root, chosen[0], severities[0])
    classes = models[0].classes
    # Labels index the checkpoints' classes when those are the wnids, else the sorted wnids (torchvision's order).
    labels = classes if set(first.classes) <= set(classes) else list(first.classes)
    if len(labels) != len(classes):
        raise ValueError(f"the ImageNet-C folder has {len(labels)} classes, the checkpoints {len(classes)}")
    stored = {(name, severity): _evenly_spaced(ImageNetC(root, name, severity, classes=labels), request.n)
              for name in chosen for severity in severities}
    image_size = first[0][0].shape[-1]
    if image_size != size:
        raise ValueError(f"the ImageNet-C images are {image_size} px, the checkpoints take {size} px")
    clean = None
    if request.clean_root.strip():
        clean_set = load_dataset("imagefolder", "test", root=request.clean_root.strip(), size=size)
        clean = _evenly_spaced(clean_set, request.n)
    else:
        notes.append("No clean ImageNet folder given: no clean error and no relative mCE.")
    return PreparedData("imagenet-c", f"ImageNet-C at {root}, {request.n} images per cell", chosen, severities,
                        stored=stored, clean=clean, alexnet=True, notes=notes)


# ----------------------------------------------------------------------------------------------- the run


@dataclass
class Shown:
    """Results ready to show: from this session's run or from a reloaded file.

    Attributes:
        results: the counts (:class:`analysis.RobustnessResults`).
        curves: model → :class:`analysis.robustness.FGSMCurve` (empty without FGSM).
        alexnet: whether mCE applies (ImageNet-C).
        description: the data, in words.
        checkpoints: model → its metadata (method, arch, …) as far as known.
        origin: where the results come from, in words.
        report: the JSON document (what the download holds).
    """

    results: Any
    curves: dict[str, Any]
    alexnet: bool
    description: str
    checkpoints: dict[str, dict]
    origin: str
    report: dict


class RobustnessRun:
    """One evaluation in a background thread. The page reads ``status``, ``done``, ``total`` and ``message``;
    the thread writes them. ``status``: waiting (for another run), running, done, cancelled or failed."""

    def __init__(self, request: RunRequest, data: PreparedData, models: list[LoadedModel]):
        self.request, self.data = request, data
        self.names = [loaded.name for loaded in models]
        self.checkpoints = {loaded.name: {key: loaded.meta.get(key) for key in META_KEYS} for loaded in models}
        self.models = {}
        for loaded in models:
            with loaded.lock:  # a copy of its own: no other session's hooks, no lock held during the run
                self.models[loaded.name] = copy.deepcopy(loaded.model)
        self.total = len(data.corruptions) * len(data.severities) + int(self.fgsm_possible)
        self.done = 0
        self.status = "waiting"
        self.message = "waiting for another run on this server to finish"
        self.error: str | None = None
        self.shown: Shown | None = None
        self.started = time.monotonic()
        self.seconds: float | None = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="msda-robustness-run", daemon=True)

    @property
    def fgsm_possible(self) -> bool:
        return self.request.fgsm and (self.data.images is not None or self.data.clean is not None)

    @property
    def active(self) -> bool:
        return self.status in ("waiting", "running")

    def start(self) -> RobustnessRun:
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread ends (tests, scripts); returns whether it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not _ONE_RUN_AT_A_TIME.acquire(timeout=0.2):
            if self._cancel.is_set():
                self._finish("cancelled", "cancelled before it started")
                return
        try:
            self.status = "running"
            results, curves = self._evaluate()
            if results is None:
                self._finish("cancelled", f"cancelled after {self.done} of {self.total} steps")
                return
            self.shown = shown_from_run(self, results, curves)
            self._finish("done", f"{self.total} steps in {time.monotonic() - self.started:.1f} s")
        except Exception as error:  # noqa: BLE001 — reported on the page; the app keeps running
            self.error = f"{type(error).__name__}: {error}" if not isinstance(error, ValueError) else str(error)
            self._finish("failed", "failed")
        finally:
            _ONE_RUN_AT_A_TIME.release()

    def _finish(self, status: str, message: str) -> None:
        self.seconds = time.monotonic() - self.started
        self.message = message
        self.models = {}  # the run object stays in the session: let go of the models and the images
        self.data.images = self.data.labels = self.data.stored = self.data.clean = None
        self.status = status

    def _evaluate(self):
        from analysis import RobustnessResults, evaluate_corrupted_datasets, evaluate_corruptions, fgsm_curves

        data = self.data
        corruptions, severities = data.corruptions, data.severities
        correct = torch.zeros(len(self.models), len(corruptions), len(severities), dtype=torch.int64)
        total = torch.zeros(len(corruptions), len(severities), dtype=torch.int64)
        clean_correct, clean_total = torch.zeros(len(self.models), dtype=torch.int64), torch.zeros((), dtype=torch.int64)
        for ci, name in enumerate(corruptions):
            for si, severity in enumerate(severities):
                if self._cancel.is_set():
                    return None, None
                self.message = f"{name.replace('_', ' ')}, severity {severity}"
                first = ci == 0 and si == 0
                if data.stored is None:
                    cell = evaluate_corruptions(self.models, data.images, data.labels, corruptions=[name],
                                                severities=[severity], generator_seed=self.request.seed,
                                                batch_size=BATCH_SIZE, clean=first)
                else:
                    cell = evaluate_corrupted_datasets(self.models, {(name, severity): data.stored[name, severity]},
                                                       clean=data.clean if first else None, batch_size=BATCH_SIZE)
                correct[:, ci, si], total[ci, si] = cell.correct[:, 0, 0], cell.total[0, 0]
                if first:
                    clean_correct, clean_total = cell.clean_correct, cell.clean_total
                self.done += 1
        curves = {}
        if self.fgsm_possible:
            if self._cancel.is_set():
                return None, None
            self.message = "FGSM"
            source = (data.images, data.labels) if data.images is not None else (data.clean, None)
            curves = fgsm_curves(self.models, *source, batch_size=BATCH_SIZE)
            self.done += 1
        results = RobustnessResults(tuple(self.models), corruptions, severities, correct, total, clean_correct,
                                    clean_total)
        return results, curves


def start_run(request: RunRequest, models: list[LoadedModel]) -> RobustnessRun:
    """Check the request, load its data and start the thread; ValueError with a message for the page."""
    return RobustnessRun(request, prepare_data(request, models), models).start()


# ----------------------------------------------------------------------------------------------- files


def build_report(results, curves: dict, *, alexnet: bool, data: dict, checkpoints: dict, settings: dict) -> dict:
    """The JSON document of a run, in the layout ``python -m analysis.robustness`` writes (its ``rows`` are the
    long table; a file of either is read back by :func:`read_results`)."""
    from analysis.robustness import SUMMARY_COLUMNS, alexnet_normalised, fgsm_table, long_table, summarise

    summary = summarise(results, alexnet=alexnet)
    report = {"command": None, "written_by": "MSDA Lab, Robustness page", "settings": settings, "data": data,
              "checkpoints": checkpoints,
              "columns": {key: text for key, text in SUMMARY_COLUMNS.items() if key in summary.columns},
              "summary": summary}
    if alexnet:
        report["alexnet_normalised"] = alexnet_normalised(results)
    if curves:
        report["fgsm"] = fgsm_table(curves)
    report["rows"] = long_table(results, curves or None)
    return report


def shown_from_run(run: RobustnessRun, results, curves: dict) -> Shown:
    data, request = run.data, run.request
    images = int(results.total.max()) if results.total.numel() else 0
    data_info = {"name": data.name, "description": data.description, "images_per_cell": images,
                 "clean_images": int(results.clean_total), "corruptions": list(results.corruptions),
                 "severities": list(results.severities), "data_seed": data.data_seed,
                 "corruption_seed": request.seed if data.stored is None else None}
    settings = {"data": data.name, "root": request.root or None, "clean_root": request.clean_root or None,
                "corruptions": list(data.corruptions), "severities": list(data.severities), "n": request.n,
                "seed": request.seed, "batch_size": BATCH_SIZE, "fgsm": bool(curves)}
    report = build_report(results, curves, alexnet=data.alexnet, data=data_info, checkpoints=run.checkpoints,
                          settings=settings)
    return Shown(results, curves, data.alexnet, data.description, run.checkpoints, "this session's run", report)


def report_json(report: dict) -> bytes:
    """The document as JSON text (NaN written as null), UTF-8."""
    from analysis.report import to_jsonable

    return (json.dumps(to_jsonable(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def report_csv(report: dict) -> bytes:
    """The long table (one row per count) as CSV, as the command line's robustness.csv."""
    import pandas as pd

    rows = report["rows"]
    table = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    return table.to_csv(index=False).encode("utf-8")


def read_results(data: bytes, name: str) -> Shown:
    """Results from a file the page or ``python -m analysis.robustness`` wrote: its JSON (the long table under
    ``rows``) or its CSV (the long table), read by :func:`analysis.robustness.reports.read_report` (bounded
    and checked; ValueError with a message naming the file and what is wrong)."""
    from analysis.robustness.reports import read_report

    document, results, curves = read_report(data, name)
    data_info, checkpoints = document["data"], document["checkpoints"]
    alexnet = data_info.get("name") == "imagenet-c"
    report = build_report(results, curves, alexnet=alexnet, data=data_info, checkpoints=checkpoints,
                          settings=document["settings"])
    if document["command"]:
        report["command"] = document["command"]
    description = data_info.get("description")
    if not isinstance(description, str) or not description:
        description = f"{len(results.corruptions)} corruptions from {name}"
    return Shown(results, curves, alexnet, description, checkpoints, f"the file {name}", report)
