"""Robustness runs of the app: a background thread with progress and cancellation, a registry that outlives
the browser page, and the results files (read back from the page's downloads or the command line's files).

Everything but the thread is :mod:`analysis.robustness`'s: the data of a run come from
:func:`analysis.robustness.prepare_data` and its report from :func:`analysis.robustness.build_report`, as for
``python -m analysis.robustness``. The thread asks the evaluation for one (corruption, severity) cell at a time —
:func:`analysis.robustness.evaluate_corruptions` seeds every cell's corruptions from (seed, corruption,
severity, block of ``BATCH_SIZE`` images) alone, so cell by cell gives exactly the counts of one call over the
grid, and of the command line with the same seed — and between cells reports progress and honours a
cancellation. A cancelled run keeps the cells it finished (see :meth:`RobustnessRun.partial`). The thread owns
copies of the models, so the cached models the other pages hook into stay free.

Runs belong to the browser session that started them. A session gets an owner key (:func:`new_owner`, kept in
its ``st.session_state``) and each run an unguessable id (``secrets.token_urlsafe``, 128 bits); the registry is
keyed by owner, so :func:`find_run` and :func:`active_runs` give a session its own runs only. Another session
learns no more than that the machine is busy (:func:`server_queue`: how many runs of other sessions are queued
or running) — never a run's id, checkpoints, progress or results, and it has no way to cancel it. Runs are
evaluated one at a time per server, first come first served; a waiting run shows its place in the queue. A run
whose page is gone (the session's ``alive`` check fails for :data:`ORPHAN_GRACE_S`) is cancelled, so a closed
tab never holds the machine.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch

from .checkpoints import LoadedModel

SOURCES = {
    "shapes": "shapes test split, corrupted on the fly",
    "cifar-c": "CIFAR-10-C / CIFAR-100-C folder",
    "imagenet-c": "ImageNet-C folder",
}
BATCH_SIZE = 256
"""The command line's default: the corrupted images depend on it, so keeping it makes runs comparable."""
KEEP_FINISHED = 8
"""Finished runs the registry keeps over all sessions (their pages hold them anyway); older ones are let go."""
ORPHAN_GRACE_S = 60.0
"""How long a run's page may be gone (closed tab, lost connection) before the run is cancelled."""
POLL_S = 0.2
_REGISTRY: dict[str, dict[str, "RobustnessRun"]] = {}  # owner → run id → run
_QUEUE: list["RobustnessRun"] = []  # waiting and running runs of every session, first come first served
_CHANGED = threading.Condition()  # guards _REGISTRY and _QUEUE


def new_owner() -> str:
    """A key for one browser session's runs (keep it in the session's state; never show it)."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True)
class ServerQueue:
    """What a session may know of the runs on this server: counts, nothing of other sessions' runs.

    Attributes:
        others: runs of other sessions waiting or running.
        mine: this session's runs waiting or running.
    """

    others: int
    mine: int

    @property
    def busy(self) -> bool:
        return self.others > 0


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


def data_choice(request: RunRequest, models: list[LoadedModel]) -> str:
    """The command line's ``--data`` for the page's source."""
    if request.source == "shapes":
        return "shapes-c"
    if request.source == "imagenet-c":
        return "imagenet-c"
    classes = {len(loaded.classes) for loaded in models}
    sizes = {loaded.size for loaded in models}
    if classes - {10, 100} or sizes != {32} or len(classes) > 1:
        raise ValueError(f"CIFAR-10-C / CIFAR-100-C need 32-px checkpoints with 10 or 100 classes; these take "
                         f"{', '.join(map(str, sorted(sizes)))}-px images and have "
                         f"{', '.join(map(str, sorted(classes)))} classes")
    return "cifar10-c" if classes == {10} else "cifar100-c"


def prepare_data(request: RunRequest, models: list[LoadedModel]):
    """The request's images, by :func:`analysis.robustness.prepare_data` (ValueError with a message for the
    page): the same checks and the same refusals as the command line."""
    from analysis.robustness import prepare_data as prepare

    if not models:
        raise ValueError("choose at least one checkpoint")
    if not request.corruptions:
        raise ValueError("choose at least one corruption")
    if not request.severities:
        raise ValueError("choose at least one severity (1 … 5)")
    data = data_choice(request, models)
    root = request.root.strip() or None
    if data != "shapes-c" and root is None:
        raise ValueError(f"type the path of the {SOURCES[request.source]} on this machine")
    return prepare(data, [loaded.meta for loaded in models], root=root if data != "shapes-c" else None,
                   clean_root=request.clean_root.strip() or None, corruptions=request.corruptions,
                   severities=request.severities, n=request.n)


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
    """One evaluation in a background thread. The page reads ``status``, ``done``, ``total``, ``message`` and
    ``ahead``; the thread writes them. ``status``: waiting (for its turn), running, done, cancelled or failed.
    ``id`` (unguessable) names it in its owner's part of the registry.

    Args:
        owner: the key of the session that starts it (:func:`new_owner`).
        alive: whether the owner's page is still there (checked between steps); None: always.
    """

    def __init__(self, request: RunRequest, data, models: list[LoadedModel], *, owner: str,
                 alive: Callable[[], bool] | None = None):
        from analysis.robustness import checkpoint_info

        if not isinstance(owner, str) or len(owner) < 16:
            got = f"{len(owner)} characters" if isinstance(owner, str) else f"a {type(owner).__name__}"
            raise ValueError(f"owner must be a session's key from new_owner() (at least 16 characters), got {got}")
        self.id = secrets.token_urlsafe(16)
        self.owner = owner
        self._alive = alive
        self._gone_since: float | None = None
        self._orphaned = False
        self.request, self.data = request, data
        self.names = [loaded.name for loaded in models]
        self.checkpoints = checkpoint_info({loaded.name: loaded.meta for loaded in models})
        self.models = {}
        for loaded in models:
            with loaded.lock:  # a copy of its own: no other session's hooks, no lock held during the run
                self.models[loaded.name] = copy.deepcopy(loaded.model)
        self.notes = list(data.notes)
        self.total = len(data.corruptions) * len(data.severities) + int(self.fgsm_possible)
        self.done = 0
        self.status = "waiting"
        self.message = "waiting for its turn"
        self.ahead = 0  # runs ahead of it in the server's queue (any session's; a count only)
        self.error: str | None = None
        self.shown: Shown | None = None
        self.started = time.monotonic()
        self.seconds: float | None = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="msda-robustness-run", daemon=True)

    @property
    def fgsm_possible(self) -> bool:
        return self.request.fgsm and self.data.clean is not None

    @property
    def active(self) -> bool:
        return self.status in ("waiting", "running")

    def start(self) -> RobustnessRun:
        with _CHANGED:
            _register(self)
            _QUEUE.append(self)
            self.ahead = len(_QUEUE) - 1
            _CHANGED.notify_all()
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread ends (tests, scripts); returns whether it did."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            if not self._wait_for_turn():
                return
            self.status = "running"
            results, curves, complete = self._evaluate()
            if not complete:
                if results is not None:
                    self.shown = shown_from_run(self, results, curves)
                    cells = len(results.corruptions) * len(results.severities)
                    self._finish("cancelled", f"{self._why_cancelled()} after {self.done} of {self.total} steps; "
                                              f"the {cells} finished cell{'s' if cells != 1 else ''} are shown")
                else:
                    self._finish("cancelled", f"{self._why_cancelled()} after {self.done} of {self.total} steps, "
                                              "before a cell finished")
                return
            self.shown = shown_from_run(self, results, curves)
            self._finish("done", f"{self.total} steps in {time.monotonic() - self.started:.1f} s")
        except Exception as error:  # noqa: BLE001 — reported on the page; the app keeps running
            self.error = f"{type(error).__name__}: {error}" if not isinstance(error, ValueError) else str(error)
            self._finish("failed", "failed")
        finally:
            with _CHANGED:
                if self in _QUEUE:
                    _QUEUE.remove(self)
                _CHANGED.notify_all()

    def _wait_for_turn(self) -> bool:
        """Wait until this run heads the queue (False: cancelled, or its page gone, before that)."""
        with _CHANGED:
            while _QUEUE[0] is not self:
                if self._cancelled():
                    _QUEUE.remove(self)
                    _CHANGED.notify_all()
                    self._finish("cancelled", f"{self._why_cancelled()} before it started")
                    return False
                self.ahead = _QUEUE.index(self)
                self.message = (f"waiting for its turn: {self.ahead} run{'s' if self.ahead != 1 else ''} ahead of "
                                "it on this server")
                _CHANGED.wait(POLL_S)
            self.ahead = 0
        return True

    def _cancelled(self) -> bool:
        """Whether the run should stop: cancelled by its page, or its page gone for ORPHAN_GRACE_S."""
        if self._cancel.is_set():
            return True
        if self._alive is None:
            return False
        try:
            alive = bool(self._alive())
        except Exception:  # noqa: BLE001 — a failing check never stops a run
            alive = True
        now = time.monotonic()
        if alive:
            self._gone_since = None
        elif self._gone_since is None:
            self._gone_since = now
        elif now - self._gone_since >= ORPHAN_GRACE_S:
            self._orphaned = True
            self._cancel.set()
            return True
        return False

    def _why_cancelled(self) -> str:
        return "cancelled (its page was closed)" if self._orphaned else "cancelled"

    def _finish(self, status: str, message: str) -> None:
        self.seconds = time.monotonic() - self.started
        self.message = message
        self.models = {}  # the run stays in the registry: let go of the models and the images
        self.data = None
        self.status = status

    def _evaluate(self):
        """(results, FGSM curves, complete). On a cancellation the results hold the finished cells as a complete
        grid — the corruptions finished at every severity, or, before the first is, the finished severities of
        the first — and no FGSM; None when no cell finished."""
        from analysis import RobustnessResults, evaluate_corrupted_datasets, evaluate_corruptions, fgsm_curves

        data = self.data
        corruptions, severities = data.corruptions, data.severities
        correct = torch.zeros(len(self.models), len(corruptions), len(severities), dtype=torch.int64)
        total = torch.zeros(len(corruptions), len(severities), dtype=torch.int64)
        clean_correct, clean_total = torch.zeros(len(self.models), dtype=torch.int64), torch.zeros((), dtype=torch.int64)
        items, clean_items = None, None  # per-item hits (on-the-fly corruptions): the per-method verdicts need them

        def finished(rows: int, columns: int):
            if rows == 0 or columns == 0:
                return None
            return RobustnessResults(tuple(self.models), corruptions[:rows], severities[:columns],
                                     correct[:, :rows, :columns].clone(), total[:rows, :columns].clone(),
                                     clean_correct, clean_total,
                                     items=None if items is None else items[:, :rows, :columns].clone(),
                                     clean_items=clean_items)

        for ci, name in enumerate(corruptions):
            for si, severity in enumerate(severities):
                if self._cancelled():
                    return (finished(ci, len(severities)) if ci else finished(1, si)), {}, False
                self.message = f"{name.replace('_', ' ')}, severity {severity}"
                first = ci == 0 and si == 0
                if data.stored is None:
                    cell = evaluate_corruptions(self.models, data.clean, data.labels, corruptions=[name],
                                                severities=[severity], generator_seed=self.request.seed,
                                                batch_size=BATCH_SIZE, clean=first, keep_items=True)
                    if items is None:
                        items = torch.zeros(*correct.shape, cell.items.shape[-1], dtype=torch.bool)
                    items[:, ci, si] = cell.items[:, 0, 0].cpu()
                else:
                    cell = evaluate_corrupted_datasets(self.models, {(name, severity): data.stored[name, severity]},
                                                       clean=data.clean if first else None, batch_size=BATCH_SIZE)
                correct[:, ci, si], total[ci, si] = cell.correct[:, 0, 0], cell.total[0, 0]
                if first:
                    clean_correct, clean_total = cell.clean_correct, cell.clean_total
                    clean_items = None if cell.clean_items is None else cell.clean_items.cpu()
                self.done += 1
        results = finished(len(corruptions), len(severities))
        curves = {}
        if self.fgsm_possible:
            if self._cancelled():
                return results, {}, False
            self.message = "FGSM"
            curves = fgsm_curves(self.models, data.clean, data.labels, batch_size=BATCH_SIZE,
                                 keep_items=data.stored is None)
            self.done += 1
        return results, curves, True


def _register(run: RobustnessRun) -> None:
    """Add `run` under its owner and let the oldest finished runs go (caller holds _CHANGED)."""
    _REGISTRY.setdefault(run.owner, {})[run.id] = run
    finished = [(other.started, owner, key) for owner, runs in _REGISTRY.items() for key, other in runs.items()
                if not other.active]
    for _, owner, key in sorted(finished)[:max(0, len(finished) - KEEP_FINISHED)]:
        del _REGISTRY[owner][key]
        if not _REGISTRY[owner]:
            del _REGISTRY[owner]


def find_run(owner: str | None, run_id: str | None) -> RobustnessRun | None:
    """This session's run with this id, or None (another session's, unknown, forgotten, or the server
    restarted): a run id alone reaches nothing."""
    if not isinstance(owner, str) or not isinstance(run_id, str):
        return None
    with _CHANGED:
        return _REGISTRY.get(owner, {}).get(run_id)


def active_runs(owner: str | None) -> list[RobustnessRun]:
    """This session's runs waiting or running on this server, oldest first."""
    if not isinstance(owner, str):
        return []
    with _CHANGED:
        return [run for run in _QUEUE if run.owner == owner]


def server_queue(owner: str | None) -> ServerQueue:
    """How many runs of other sessions and of this one are waiting or running: all another session may know."""
    with _CHANGED:
        mine = sum(run.owner == owner for run in _QUEUE)
        return ServerQueue(others=len(_QUEUE) - mine, mine=mine)


def start_run(request: RunRequest, models: list[LoadedModel], *, owner: str,
              alive: Callable[[], bool] | None = None) -> RobustnessRun:
    """Check the request, load its data and start the thread for the session `owner` (see
    :class:`RobustnessRun`); ValueError with a message for the page."""
    return RobustnessRun(request, prepare_data(request, models), models, owner=owner, alive=alive).start()


# ----------------------------------------------------------------------------------------------- files


def shown_from_run(run: RobustnessRun, results, curves: dict) -> Shown:
    from analysis.robustness import build_report

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
                          settings=settings, written_by="MSDA Lab, Robustness page")
    return Shown(results, curves, data.alexnet, data.description, run.checkpoints, "this session's run", report)


def report_json(report: dict) -> bytes:
    """The document as JSON text (NaN written as null), UTF-8."""
    from analysis.report import to_jsonable

    return (json.dumps(to_jsonable(report), indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def report_csv(report: dict) -> bytes:
    """The long table (one row per count) as CSV, as the command line's robustness.csv."""
    import pandas as pd

    from analysis.untrusted import csv_safe_frame

    rows = report["rows"]
    table = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    return csv_safe_frame(table).to_csv(index=False).encode("utf-8")


def read_results(data: bytes, name: str) -> Shown:
    """Results from a file the page or ``python -m analysis.robustness`` wrote: its JSON (the long table under
    ``rows``) or its CSV (the long table), read by :func:`analysis.robustness.reports.read_report` (bounded
    and checked; ValueError with a message naming the file and what is wrong)."""
    from analysis.robustness import build_report
    from analysis.robustness.reports import read_report

    document, results, curves = read_report(data, name)
    data_info, checkpoints = document["data"], document["checkpoints"]
    if not checkpoints and name.lower().endswith(".csv"):
        checkpoints = _methods_from_csv(data, results.models)
    alexnet = data_info.get("name") == "imagenet-c"
    report = build_report(results, curves, alexnet=alexnet, data=data_info, checkpoints=checkpoints,
                          settings=document["settings"], command=document["command"] or None,
                          written_by="MSDA Lab, Robustness page (reloaded)")
    description = data_info.get("description")
    if not isinstance(description, str) or not description:
        description = f"{len(results.corruptions)} corruptions from {name}"
    return Shown(results, curves, alexnet, description, checkpoints, f"the file {name}", report)


def _methods_from_csv(data: bytes, models) -> dict[str, dict]:
    """model → {method, seed} from a long table's ``method`` and ``seed`` columns (the CSV has no metadata
    block), so a reloaded CSV of a seed sweep gets its per-method table too; {} when the columns are absent.
    `data` has passed :func:`read_report`'s bounds already."""
    import io
    import math

    import pandas as pd

    try:
        table = pd.read_csv(io.BytesIO(data), usecols=lambda column: column in ("model", "method", "seed"))
    except ValueError:
        return {}
    if "method" not in table.columns:
        return {}
    first = table.drop_duplicates("model").set_index("model")
    found = {}
    for model in models:
        if model not in first.index:
            continue
        method = first.loc[model, "method"]
        seed = first.loc[model, "seed"] if "seed" in first.columns else None
        found[model] = {"method": None if not isinstance(method, str) else method,
                        "seed": None if seed is None or (isinstance(seed, float) and math.isnan(seed)) else int(seed)}
    return found
