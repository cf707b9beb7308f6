"""Counting correct predictions under common corruptions and under FGSM, for several models at once.

Corruptions: Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common Corruptions and
Perturbations", ICLR 2019, arXiv:1903.12261. FGSM: Goodfellow, Shlens & Szegedy, "Explaining and Harnessing
Adversarial Examples", ICLR 2015, arXiv:1412.6572.

Every result is an integer count (correct predictions, images), so results computed on disjoint shards of
the images — the ranks of a ``torchrun`` job — add up exactly to the single-process result.

**Blocks and seeds.** The N images are cut into blocks of ``batch_size`` consecutive images; block k holds
images k·batch_size … (k + 1)·batch_size − 1 and is one batch. A shard ``(rank, world_size)`` takes blocks
rank, rank + world_size, … On-the-fly corruption draws its random numbers from one torch.Generator per
(corruption, severity), re-seeded for every block with :func:`corruption_seed` (seed, corruption, severity,
block). So a corrupted image depends only on the seed, its block (the batch size) and the device type —
not on the order of evaluation, on the shard, or on which other corruptions run — and every model sees
exactly the same corrupted images. A DataLoader (any iterable of batches) sets the blocks itself: its k-th
batch is block k, and shard r of w takes every w-th batch.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from msda._checks import check_choice, check_int, check_real, describe, same_device

from ..cam import evaluation_mode
from ..corruptions import CORRUPTIONS, corrupt
from ..corruptions._params import PROFILES

DEFAULT_SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
DEFAULT_FGSM_EPS: tuple[float, ...] = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255)
"""ε on the [0, 1] pixel scale; 0 is the clean accuracy, as a check on the curve."""

Reduce = Callable[[Tensor], Tensor]


# ----------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RobustnessResults:
    """Correct-prediction counts of several models on corrupted images.

    Attributes:
        models: model names, in order.
        corruptions: corruption names, in :data:`~analysis.corruptions.CORRUPTIONS` order.
        severities: severities, ascending.
        correct: int64 [M, C, S] correct predictions per model, corruption and severity.
        total: int64 [C, S] images per corruption and severity.
        clean_correct: int64 [M] correct predictions on the clean images.
        clean_total: int64 [] clean images (0 when no clean images were evaluated).
        items: with ``keep_items``, bool [M, C, S, N]: whether each model classified image n correctly under each
            corruption and severity (the per-item outcomes of the counts); else None.
        clean_items: with ``keep_items`` and clean images, bool [M, N]; else None.
    """

    models: tuple[str, ...]
    corruptions: tuple[str, ...]
    severities: tuple[int, ...]
    correct: Tensor
    total: Tensor
    clean_correct: Tensor
    clean_total: Tensor
    items: Tensor | None = None
    clean_items: Tensor | None = None

    def errors(self) -> Tensor:
        """float64 [M, C, S] top-1 error (total − correct) / total (CPU)."""
        total = self.total.cpu()
        return (total - self.correct.cpu()).double() / total.double()

    def accuracies(self) -> Tensor:
        """float64 [M, C, S] top-1 accuracy correct / total (CPU)."""
        return self.correct.cpu().double() / self.total.cpu().double()

    def clean_errors(self) -> Tensor | None:
        """float64 [M] clean top-1 error, or None when no clean images were evaluated."""
        if int(self.clean_total) == 0:
            return None
        total = self.clean_total.cpu()
        return (total - self.clean_correct.cpu()).double() / total.double()

    def reduced(self, reduce: Reduce) -> RobustnessResults:
        """The counts passed through `reduce` in one call (e.g. ``msda.training.distributed.all_sum`` to add
        the shards of all ranks), returned on the CPU."""
        packed = reduce(torch.cat([self.correct.flatten(), self.total.flatten(), self.clean_correct.flatten(),
                                   self.clean_total.reshape(1)]))
        sizes = [self.correct.numel(), self.total.numel(), self.clean_correct.numel(), 1]
        correct, total, clean_correct, clean_total = packed.cpu().split(sizes)
        return replace(self, correct=correct.view(self.correct.shape), total=total.view(self.total.shape),
                       clean_correct=clean_correct.view(self.clean_correct.shape),
                       clean_total=clean_total.view(()), items=_reduced_items(self.items, reduce),
                       clean_items=_reduced_items(self.clean_items, reduce))


@dataclass(frozen=True)
class FGSMCurve:
    """Correct predictions of one model on FGSM images, per ε.

    Attributes:
        eps: the step sizes ε on the [0, 1] pixel scale, in the order evaluated.
        correct: int64 [E] correct predictions per ε.
        total: int64 [] images.
        items: with ``keep_items``, bool [E, N]: whether each image was still classified correctly at each ε.
    """

    eps: tuple[float, ...]
    correct: Tensor
    total: Tensor
    items: Tensor | None = None

    @property
    def accuracy(self) -> Tensor:
        """float64 [E] top-1 accuracy per ε (CPU)."""
        return self.correct.double().cpu() / float(self.total)

    def reduced(self, reduce: Reduce) -> FGSMCurve:
        """The counts passed through `reduce` in one call (see :meth:`RobustnessResults.reduced`)."""
        packed = reduce(torch.cat([self.correct.flatten(), self.total.reshape(1)])).cpu()
        return replace(self, correct=packed[:-1].clone(), total=packed[-1].clone(),
                       items=_reduced_items(self.items, reduce))


def _reduced_items(items: Tensor | None, reduce: Reduce) -> Tensor | None:
    """Per-item hits summed over the shards (each shard fills only its own images, the rest are 0), on the CPU."""
    return None if items is None else reduce(items.to(torch.uint8)).cpu().bool()


class _ItemHits:
    """Per-item hits of a run, written at each block's image positions: [*shape, N] bool, N known up front for a
    tensor or dataset; for an iterable of batches (one process) the blocks are appended in order."""

    def __init__(self, shape: tuple[int, ...], images, batch_size: int, shard: tuple[int, int], device):
        self.shape, self.batch_size, self.device = shape, batch_size, device
        self.sized = isinstance(images, (Tensor, Dataset))
        if not self.sized and shard[1] > 1:
            raise ValueError("keep_items needs a tensor or dataset of images when sharded (an iterable of batches "
                             "does not say where each shard's images sit)")
        self.hits = torch.zeros(*shape, len(images), dtype=torch.bool, device=device) if self.sized else None
        self.parts: list[Tensor] = []

    def put(self, block: int, values: Tensor) -> None:
        """`values` [*shape, b]: the hits of block `block`."""
        if self.sized:
            start = block * self.batch_size
            self.hits[..., start:start + values.shape[-1]] = values
        else:
            self.parts.append(values)

    def result(self) -> Tensor:
        if self.sized:
            return self.hits
        return torch.cat(self.parts, -1) if self.parts else torch.zeros(*self.shape, 0, dtype=torch.bool)


# ----------------------------------------------------------------------------------------------- blocks


def corruption_seed(seed: int, corruption: str, severity: int, block: int) -> int:
    """The generator seed for one block of images at one corruption and severity: a 63-bit hash of the four,
    so that streams for different blocks, corruptions or severities do not overlap."""
    key = f"robustness/{seed}/{corruption}/{severity}/{block}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") >> 1


def shard_blocks(n: int, batch_size: int, rank: int = 0, world_size: int = 1) -> list[tuple[int, range]]:
    """(block number, image positions) of the blocks of one shard: blocks of `batch_size` consecutive
    positions of 0 … n − 1, shard `rank` of `world_size` taking blocks rank, rank + world_size, …"""
    count = -(-n // batch_size)
    return [(block, range(block * batch_size, min(n, (block + 1) * batch_size)))
            for block in range(rank, count, world_size)]


# ----------------------------------------------------------------------------------------------- corruptions


def evaluate_corruptions(models: Mapping[str, nn.Module], images: Tensor | Dataset | Iterable, labels: Tensor | None = None,
                         *, corruptions: Sequence[str] = CORRUPTIONS,
                         severities: Sequence[int] = DEFAULT_SEVERITIES, generator_seed: int = 0,
                         device: torch.device | str | None = None, batch_size: int = 256, profile: str = "auto",
                         frost_dir: str | Path | None = None, clean: bool = True, shard: tuple[int, int] = (0, 1),
                         workers: int = 0, progress: bool = False, keep_items: bool = False) -> RobustnessResults:
    """Accuracy of every model on clean images and on each corruption × severity rendered on the fly.

    Each block of images (see the module docstring) is loaded once, moved to `device`, classified clean,
    then corrupted once per (corruption, severity) with :func:`analysis.corrupt` — a seeded generator per
    (corruption, severity, block) — and the same corrupted batch goes through every model.

    Args:
        models: name → classifier taking images in [0, 1] (e.g. from :func:`analysis.load_checkpoint`), all on
            `device`. Run in eval mode; their modes are restored.
        images: float [N, 3, H, W] in [0, 1] or uint8 [N, 3, H, W] (with `labels`); or a map-style dataset of
            ``(image [3, H, W], label, …)`` items; or an iterable of ``(images [b, 3, H, W], labels [b], …)``
            batches such as a DataLoader, whose k-th batch is block k (its batches then set the blocks:
            `batch_size` and `workers` do not apply, and a shard takes every world-size-th batch). With a
            dataset or batches, `labels` must be None.
        labels: int [N] true classes, for a tensor of images.
        corruptions: names from :data:`analysis.CORRUPTIONS` (kept in that order).
        severities: 1 … 5 (sorted).
        generator_seed: seed of the corruptions' random draws (see :func:`corruption_seed`).
        device: where images are corrupted and classified; default the first model's device.
        batch_size: images per block (one batch); the corrupted images depend on it.
        profile, frost_dir: passed to :func:`analysis.corrupt`.
        clean: also count correct predictions on the clean images.
        shard: (rank, world size): evaluate only this shard's blocks.
        workers: DataLoader worker processes for a dataset (0: load in this process).
        progress: show a tqdm bar.
        keep_items: also keep whether each model got each image right in each cell (``items``, ``clean_items``:
            the per-item outcomes a paired comparison needs).

    Returns :class:`RobustnessResults` with the counts of this shard, on `device`.
    """
    from tqdm.auto import tqdm

    models = _check_models(models)
    device = _check_device(device, models)
    corruptions = _check_corruptions(corruptions)
    severities = _check_severities(severities)
    generator_seed = check_int("generator_seed", generator_seed)
    check_choice("profile", profile, PROFILES)
    batch_size = check_int("batch_size", batch_size, low=1)
    rank, world_size = _check_shard(shard)
    workers = check_int("workers", workers, low=0)
    _check_source(images, labels)
    shard = (rank, world_size)

    counts = _empty_counts(len(models), len(corruptions), len(severities), device)
    correct, total, clean_correct, clean_total = counts
    cells = _cells(corruptions, severities)
    items = _ItemHits((len(models), len(corruptions), len(severities)), images, batch_size, shard, device) \
        if keep_items else None
    clean_items = _ItemHits((len(models),), images, batch_size, shard, device) if keep_items and clean else None
    generator = torch.Generator(device=device)  # reseeded for every block and cell
    batches = _batch_count(images, batch_size, shard)
    steps = None if batches is None else batches * (int(clean) + len(cells))
    bar = tqdm(total=steps, unit="batch", desc="corruptions", disable=not progress)
    try:
        with _eval_modes(models.values()), torch.no_grad():
            for block, batch, targets in _batches(images, labels, batch_size, shard, device, workers):
                if clean:
                    hits = _hits(models, batch, targets)
                    clean_correct += hits.sum(1)
                    clean_total += targets.numel()
                    if clean_items is not None:
                        clean_items.put(block, hits)
                    bar.update(1)
                block_hits = []
                for (ci, name), (si, severity) in cells:
                    generator.manual_seed(corruption_seed(generator_seed, name, severity, block))
                    corrupted = corrupt(batch, name, severity, profile=profile, generator=generator,
                                        frost_dir=frost_dir)
                    hits = _hits(models, corrupted, targets)
                    correct[:, ci, si] += hits.sum(1)
                    total[ci, si] += targets.numel()
                    block_hits.append(hits)
                    bar.update(1)
                if items is not None and block_hits:
                    items.put(block, torch.stack(block_hits, 1).view(len(models), len(corruptions),
                                                                     len(severities), -1))
    finally:
        bar.close()
    return RobustnessResults(tuple(models), corruptions, severities, *counts,
                             items=None if items is None else items.result(),
                             clean_items=None if clean_items is None else clean_items.result())


def evaluate_corrupted_datasets(models: Mapping[str, nn.Module],
                                datasets: Mapping[tuple[str, int], Dataset | Iterable], *,
                                clean: Dataset | Iterable | None = None, device: torch.device | str | None = None,
                                batch_size: int = 256, shard: tuple[int, int] = (0, 1), workers: int = 0,
                                progress: bool = False) -> RobustnessResults:
    """Accuracy of every model on stored corrupted test sets (e.g. :class:`analysis.CifarC`,
    :class:`analysis.ImageNetC`) and optionally on the clean test set.

    Args:
        models: name → classifier taking images in [0, 1], all on `device` (eval mode during the run).
        datasets: (corruption, severity) → dataset of ``(image [3, H, W] in [0, 1] or uint8, label, …)`` (or
            an iterable of batches, as `images` of :func:`evaluate_corruptions`); the keys must form a full
            grid of corruptions × severities.
        clean: the clean test set (a dataset or batches), or None.
        device, batch_size, shard, workers, progress: as in :func:`evaluate_corruptions` (blocks are cut in
            each dataset separately).

    Returns :class:`RobustnessResults` with the counts of this shard, on `device`.
    """
    from tqdm.auto import tqdm

    models = _check_models(models)
    device = _check_device(device, models)
    if not isinstance(datasets, Mapping) or not datasets:
        raise ValueError(f"datasets must be a non-empty dict (corruption, severity) → dataset, got "
                         f"{describe(datasets)}")
    for key in datasets:
        if not (isinstance(key, tuple) and len(key) == 2):
            raise ValueError(f"datasets keys must be (corruption, severity) pairs, got {key!r}")
    corruptions = _check_corruptions(list(dict.fromkeys(name for name, _ in datasets)))
    severities = _check_severities(sorted({severity for _, severity in datasets}))
    missing = [f"{name}/{severity}" for name in corruptions for severity in severities
               if (name, severity) not in datasets]
    if missing:
        raise ValueError(f"datasets must cover every corruption at every severity; missing "
                         f"{', '.join(missing[:6])}{' …' if len(missing) > 6 else ''}")
    batch_size = check_int("batch_size", batch_size, low=1)
    rank, world_size = _check_shard(shard)
    workers = check_int("workers", workers, low=0)
    sources = [(None, clean)] if clean is not None else []
    sources += [((ci, si), datasets[name, severity]) for ci, name in enumerate(corruptions)
                for si, severity in enumerate(severities)]
    for _, data in sources:
        _check_source(data, None)
    shard = (rank, world_size)

    counts = _empty_counts(len(models), len(corruptions), len(severities), device)
    correct, total, clean_correct, clean_total = counts
    counts_per_source = [_batch_count(data, batch_size, shard) for _, data in sources]
    steps = None if None in counts_per_source else sum(counts_per_source)
    bar = tqdm(total=steps, unit="batch", desc="corrupted sets", disable=not progress)
    try:
        with _eval_modes(models.values()), torch.no_grad():
            for cell, data in sources:
                for _, batch, targets in _batches(data, None, batch_size, shard, device, workers):
                    hits = _count_correct(models, batch, targets)
                    if cell is None:
                        clean_correct += hits
                        clean_total += targets.numel()
                    else:
                        correct[:, cell[0], cell[1]] += hits
                        total[cell] += targets.numel()
                    bar.update(1)
    finally:
        bar.close()
    return RobustnessResults(tuple(models), corruptions, severities, *counts)


# ----------------------------------------------------------------------------------------------- FGSM


def fgsm_curves(models: Mapping[str, nn.Module], images: Tensor | Dataset | Iterable, labels: Tensor | None = None, *,
                eps: Sequence[float] = DEFAULT_FGSM_EPS, device: torch.device | str | None = None,
                batch_size: int = 256, shard: tuple[int, int] = (0, 1), workers: int = 0,
                progress: bool = False, keep_items: bool = False) -> dict[str, FGSMCurve]:
    """Accuracy under FGSM (Goodfellow et al. 2015) as a function of ε, for every model.

    The attack works on the [0, 1] pixel scale, before the model's own normalisation:
    ``x_adv = clamp(x + ε·sign(∇_x CE(f(x), y)), 0, 1)`` with the loss summed over the batch — the images of
    :func:`analysis.robust_metrics.fgsm`, whose gradient is computed here once per batch and model and
    reused for every ε. ε = 0 leaves the images unchanged (the clean accuracy).

    Args:
        models: name → classifier taking images in [0, 1], all on `device` (eval mode during the attack; the
            parameters' gradients are neither needed nor touched).
        images, labels, device, batch_size, shard, workers, progress: as in :func:`evaluate_corruptions`.
        eps: step sizes ε ≥ 0 on the [0, 1] scale (e.g. 8/255).
        keep_items: also keep whether each image was classified correctly at each ε (``FGSMCurve.items``).

    Returns name → :class:`FGSMCurve` with the counts of this shard, on `device`.
    """
    from tqdm.auto import tqdm

    models = _check_models(models)
    device = _check_device(device, models)
    if isinstance(eps, (int, float)) or not isinstance(eps, Sequence) or not eps:
        raise ValueError(f"eps must be a non-empty list of step sizes ≥ 0, got {describe(eps)}")
    eps = tuple(check_real("eps", value, low=0.0) for value in eps)
    batch_size = check_int("batch_size", batch_size, low=1)
    rank, world_size = _check_shard(shard)
    workers = check_int("workers", workers, low=0)
    _check_source(images, labels)
    shard = (rank, world_size)

    correct = torch.zeros(len(models), len(eps), dtype=torch.int64, device=device)
    total = torch.zeros((), dtype=torch.int64, device=device)
    items = _ItemHits((len(models), len(eps)), images, batch_size, shard, device) if keep_items else None
    batches = _batch_count(images, batch_size, shard)
    bar = tqdm(total=None if batches is None else batches * len(models), unit="batch", desc="FGSM",
               disable=not progress)
    try:
        with _eval_modes(models.values()), _frozen(models.values()):
            for block, batch, targets in _batches(images, labels, batch_size, shard, device, workers):
                block_hits = []
                for mi, model in enumerate(models.values()):
                    direction = _loss_gradient_sign(model, batch, targets)
                    with torch.no_grad():
                        hits = torch.stack([model(batch if step == 0 else (batch + step * direction).clamp_(0, 1))
                                            .argmax(1) == targets for step in eps])  # [E, b]
                    correct[mi] += hits.sum(1)
                    block_hits.append(hits)
                    bar.update(1)
                if items is not None:
                    items.put(block, torch.stack(block_hits))
                total += targets.numel()
    finally:
        bar.close()
    kept = None if items is None else items.result()
    return {name: FGSMCurve(eps, correct[mi], total, items=None if kept is None else kept[mi])
            for mi, name in enumerate(models)}


def fgsm_curve(model: nn.Module, images: Tensor | Dataset | Iterable, labels: Tensor | None = None,
               eps: Sequence[float] = DEFAULT_FGSM_EPS, **options) -> FGSMCurve:
    """:func:`fgsm_curves` for one model; `options` are its keyword arguments."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return fgsm_curves({"model": model}, images, labels, eps=eps, **options)["model"]


def _loss_gradient_sign(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """sign(∇_x Σ CE(f(x), y)) at the images, in float32 (as robust_metrics.fgsm computes it)."""
    with torch.enable_grad():
        x = images.detach().float().requires_grad_(True)
        loss = F.cross_entropy(model(x).float(), labels, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad.sign_()


# ----------------------------------------------------------------------------------------------- helpers


def _count_correct(models: Mapping[str, nn.Module], images: Tensor, labels: Tensor) -> Tensor:
    """int64 [M] correct top-1 predictions of each model on one batch."""
    return torch.stack([(model(images).argmax(1) == labels).sum() for model in models.values()])


def _hits(models: Mapping[str, nn.Module], images: Tensor, labels: Tensor) -> Tensor:
    """bool [M, b]: whether each model's top-1 prediction is right, per image of one batch."""
    return torch.stack([model(images).argmax(1) == labels for model in models.values()])


def _empty_counts(models: int, corruptions: int, severities: int, device: torch.device) -> tuple[Tensor, ...]:
    zeros = lambda *shape: torch.zeros(shape, dtype=torch.int64, device=device)
    return zeros(models, corruptions, severities), zeros(corruptions, severities), zeros(models), zeros()


def _cells(corruptions: Sequence[str], severities: Sequence[int]) -> list[tuple[tuple[int, str], tuple[int, int]]]:
    return [((ci, name), (si, severity)) for ci, name in enumerate(corruptions)
            for si, severity in enumerate(severities)]


def _batches(images, labels: Tensor | None, batch_size: int, shard: tuple[int, int], device: torch.device,
             workers: int) -> Iterator[tuple[int, Tensor, Tensor]]:
    """(block number, float32 images [b, 3, H, W] in [0, 1], int64 labels [b]) on `device`, for this shard's
    blocks: slices of a tensor, batches of a dataset, or every world_size-th batch of an iterable."""
    rank, world_size = shard
    if isinstance(images, Tensor):
        for block, positions in shard_blocks(len(images), batch_size, rank, world_size):
            part = slice(positions.start, positions.stop)
            yield block, _as_float(images[part].to(device, non_blocking=True)), labels[part].to(device).long()
        return
    if isinstance(images, Dataset):
        blocks = shard_blocks(len(images), batch_size, rank, world_size)
        batches = DataLoader(images, batch_sampler=[list(positions) for _, positions in blocks],
                             num_workers=workers, pin_memory=device.type == "cuda")
        numbered = zip((block for block, _ in blocks), batches, strict=True)
    else:
        numbered = ((block, batch) for block, batch in enumerate(images) if block % world_size == rank)
    for block, batch in numbered:
        if not isinstance(batch, (list, tuple)) or len(batch) < 2:
            raise ValueError(f"batches must be (images, labels, …); got {describe(batch)}")
        pictures, targets = batch[0], torch.as_tensor(batch[1])
        if not isinstance(pictures, Tensor) or pictures.ndim != 4 or pictures.shape[0] != targets.shape[0]:
            raise ValueError(f"batches must hold images [b, 3, H, W] and labels [b]; got images "
                             f"{describe(pictures)} and labels {describe(targets)}")
        yield block, _as_float(pictures.to(device, non_blocking=True)), targets.to(device).long()


def _batch_count(images, batch_size: int, shard: tuple[int, int]) -> int | None:
    """How many batches this shard evaluates (None for an iterable without a length)."""
    rank, world_size = shard
    if isinstance(images, (Tensor, Dataset)):
        return len(shard_blocks(len(images), batch_size, rank, world_size))
    try:
        return len(range(rank, len(images), world_size))
    except TypeError:
        return None


def _as_float(images: Tensor) -> Tensor:
    return images.float().div_(255) if images.dtype == torch.uint8 else images.float()


@contextlib.contextmanager
def _eval_modes(models: Iterable[nn.Module]):
    with contextlib.ExitStack() as stack:
        for model in models:
            stack.enter_context(evaluation_mode(model))
        yield


@contextlib.contextmanager
def _frozen(models: Iterable[nn.Module]):
    """Parameters without requires_grad inside the block (the attack differentiates the input only)."""
    parameters = [p for model in models for p in model.parameters()]
    flags = [p.requires_grad for p in parameters]
    try:
        for p in parameters:
            p.requires_grad_(False)
        yield
    finally:
        for p, flag in zip(parameters, flags, strict=True):
            p.requires_grad_(flag)


# ----------------------------------------------------------------------------------------------- checks


def _check_models(models) -> dict[str, nn.Module]:
    if not isinstance(models, Mapping) or not models:
        raise ValueError(f"models must be a non-empty dict name → torch.nn.Module, got {describe(models)}")
    for name, model in models.items():
        if not isinstance(name, str) or not isinstance(model, nn.Module):
            raise ValueError(f"models must map names (str) to torch.nn.Module, got {name!r} → "
                             f"{type(model).__name__}")
    return dict(models)


def _check_device(device, models: Mapping[str, nn.Module]) -> torch.device:
    if device is None:
        first = next((p for model in models.values() for p in model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be a torch.device or a string like 'cpu' or 'cuda:0', got {device!r}") from None
    for name, model in models.items():
        found = next(iter(model.parameters()), None)
        if found is not None and not same_device(found.device, device):
            raise ValueError(f"model {name!r} is on {found.device} but device is {device}; move it with .to()")
    return device


def _check_corruptions(corruptions) -> tuple[str, ...]:
    if isinstance(corruptions, str) or not isinstance(corruptions, Sequence) or not corruptions:
        raise ValueError(f"corruptions must be a non-empty list of names from {', '.join(CORRUPTIONS)}; "
                         f"got {corruptions!r}")
    for name in corruptions:
        check_choice("corruption", name, CORRUPTIONS)
    if len(set(corruptions)) != len(corruptions):
        raise ValueError(f"corruptions must not repeat a name, got {list(corruptions)}")
    return tuple(sorted(corruptions, key=CORRUPTIONS.index))


def _check_severities(severities) -> tuple[int, ...]:
    if isinstance(severities, (str, int)) or not isinstance(severities, Sequence) or not severities:
        raise ValueError(f"severities must be a non-empty list of integers in 1 … 5, got {severities!r}")
    checked = []
    for severity in severities:
        if isinstance(severity, bool):
            raise ValueError(f"severity must be an integer in [1, 5], got {severity!r}")
        checked.append(check_int("severity", severity, low=1, high=5))
    if len(set(checked)) != len(checked):
        raise ValueError(f"severities must not repeat a value, got {list(severities)}")
    return tuple(sorted(checked))


def _check_shard(shard) -> tuple[int, int]:
    if not isinstance(shard, Sequence) or len(shard) != 2:
        raise ValueError(f"shard must be (rank, world_size), got {shard!r}")
    world_size = check_int("world size", shard[1], low=1)
    rank = check_int("rank", shard[0], low=0, high=world_size - 1)
    return rank, world_size


def _check_source(images, labels) -> None:
    """ValueError for a malformed tensor/labels pair, or labels given with a dataset or loader."""
    if isinstance(images, Tensor):
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[0] < 1 or not (
                images.is_floating_point() or images.dtype == torch.uint8):
            raise ValueError(f"images must be a float (in [0, 1]) or uint8 tensor [N, 3, H, W] with N ≥ 1, got "
                             f"{describe(images)}")
        n = images.shape[0]
        if (not isinstance(labels, Tensor) or labels.shape != (n,) or labels.is_floating_point()
                or labels.is_complex() or labels.dtype == torch.bool):
            raise ValueError(f"labels must be an integer tensor of shape [{n}], got {describe(labels)}")
        if bool((labels < 0).any()):
            raise ValueError(f"labels must be class indices ≥ 0, got {describe(labels)}")
        return
    if not isinstance(images, (Dataset, Iterable)):
        raise ValueError(f"images must be a tensor [N, 3, H, W], a map-style dataset or an iterable of "
                         f"(images, labels) batches such as a DataLoader, got {type(images).__name__}")
    if labels is not None:
        raise ValueError("labels must be None when images is a dataset or a loader (its items carry the labels)")
    if isinstance(images, Dataset) and len(images) < 1:
        raise ValueError("the dataset holds no images")
