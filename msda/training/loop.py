"""The training loop behind ``python -m msda.train``: any method of msda.METHODS (or none), any dataset of
msda.data, any architecture of msda.models, on CPU or GPU, in one process or under torchrun.

Determinism: three generators drive everything — data order, augmentation and mixing — and their states
are part of the resume state, so an interrupted run resumed with ``--resume`` continues bit for bit as an
uninterrupted one would (on the CPU; GPU kernels are not bitwise deterministic).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import Tensor, nn
from tqdm import tqdm

import msda
from msda import data as msda_data
from msda.models import Normalized, build_model

from . import distributed
from .augment import pad_crop_flip, random_resized_crop_flip
from .checkpoint import (file_sha256, load_state, read_checkpoint_meta, remove_stale_temporaries, save_checkpoint,
                         save_state)
from .metrics import MetricsLog
from .recipes import Recipe, learning_rate

# Settings that must match for --resume to continue a run (the rest, e.g. the device or the output, may change).
_RESUME_KEYS = ("data", "root", "train_size", "test_size", "size", "data_seed", "arch", "method", "alpha", "prob",
                "label_smoothing", "method_params", "hardness", "recipe", "seed", "augment", "init")


@dataclass
class Settings:
    """Everything a run depends on, resolved from the command line and the recipe."""

    data: str
    arch: str
    method: str
    recipe: Recipe
    out: Path
    root: str | None = None
    train_size: int | None = None
    test_size: int | None = None
    size: int | None = None
    data_seed: int = 0
    alpha: float | None = None
    prob: float | None = None
    label_smoothing: float = 0.0
    method_params: dict = field(default_factory=dict)
    hardness: str = "forward"
    augment: str = "standard"
    device: str = "cpu"
    amp: bool = False
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    workers: int = 0
    resume: bool = False
    eval_every: int = 1
    progress: bool = True
    command: str = ""
    init: str | None = None  # start from this checkpoint's weights (same architecture and classes)

    def fingerprint(self) -> dict:
        values = dataclasses.asdict(self)
        values["recipe"] = self.recipe.to_dict()
        return {key: values[key] for key in _RESUME_KEYS}

    @property
    def state_path(self) -> Path:
        return self.out.with_name(self.out.name + ".state.pt")

    @property
    def metrics_stem(self) -> Path:
        return self.out.with_name(self.out.stem + ".metrics")


@dataclass
class Split:
    """A dataset split ready for batching: in memory (uint8 tensors on the device) or streamed."""

    size: int
    images: Tensor | None = None  # [N, 3, H, W] uint8 on the device
    labels: Tensor | None = None  # [N] int64 on the device
    dataset: Any = None  # a torch Dataset of (float image, label), streamed through a DataLoader

    def batches(self, order: Tensor, batch_size: int, *, device, workers: int, drop_last: bool,
                start: int = 0) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        """(indices, float images in [0, 1] on `device`, labels) for the batches of `order` from batch `start`."""
        count = len(order) // batch_size if drop_last else math.ceil(len(order) / batch_size)
        if self.images is not None:
            for step in range(start, count):
                index = order[step * batch_size:(step + 1) * batch_size].to(self.images.device)
                yield index, self.images[index].float().div_(255), self.labels[index]
            return
        chunks = [order[step * batch_size:(step + 1) * batch_size].tolist() for step in range(start, count)]
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=chunks, num_workers=workers,
                                             pin_memory=torch.device(device).type == "cuda")
        for chunk, (images, labels) in zip(chunks, loader):
            yield (torch.tensor(chunk, device=device), images.to(device, non_blocking=True),
                   labels.to(device, non_blocking=True))


def load_splits(settings: Settings, device: torch.device):
    """(train split, test split, dataset description) for the settings' dataset."""
    common = dict(root=settings.root, size=settings.size, seed=settings.data_seed)
    train = msda_data.load_dataset(settings.data, "train", n=settings.train_size, **common)
    test = msda_data.load_dataset(settings.data, "test", n=settings.test_size, **common)
    info = {"dataset": settings.data, "classes": list(train.classes), "num_classes": int(train.num_classes),
            "input_size": int(train.image_size), "mean": list(train.mean), "std": list(train.std),
            "train_images": len(train), "test_images": len(test)}
    if hasattr(train, "version"):  # a procedural dataset with design versions (shapes): which one was seen
        info["dataset_version"] = int(train.version)
    return _as_split(train, device), _as_split(test, device), info


def _as_split(dataset, device: torch.device) -> Split:
    if hasattr(dataset, "as_tensors"):
        images, labels = dataset.as_tensors()
        return Split(size=len(dataset), images=images.to(device), labels=labels.to(device).long())
    return Split(size=len(dataset), dataset=dataset)


@contextlib.contextmanager
def frozen_batchnorm_statistics(model: nn.Module):
    """Batch statistics are still used, but running statistics are not updated (momentum 0)."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    kept = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in zip(norms, kept):
            m.momentum = momentum


class Trainer:
    def __init__(self, settings: Settings):
        self.settings = settings
        device = torch.device(settings.device)
        self.rank, self.world, self.device = distributed.setup(device)
        if self.rank == 0:
            self._remove_stale_temporaries()
        self.train_split, self.test_split, self.info = load_splits(settings, self.device)
        recipe = settings.recipe
        if recipe.batch_size % self.world:
            raise ValueError(f"batch size {recipe.batch_size} must be divisible by the {self.world} processes")
        self.batch_size = recipe.batch_size // self.world
        self.steps_per_epoch = self.train_split.size // recipe.batch_size
        if self.steps_per_epoch == 0:
            raise ValueError(f"--train-size {self.train_split.size} is smaller than one batch ({recipe.batch_size})")

        # Layer initialisers draw from torch's global generator: seed it for the construction only.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            net = build_model(settings.arch, self.info["num_classes"])
        self.init_meta = None
        if settings.init is not None:
            self.init_meta = load_initial_weights(net, settings.init, arch=settings.arch, info=self.info)
        self.net = net
        model = Normalized(net, self.info["mean"], self.info["std"]).to(self.device)
        if settings.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        decay, no_decay = [], []
        for name, param in model.named_parameters():
            (no_decay if param.ndim <= 1 else decay).append(param)
        self.optimizer = torch.optim.SGD(
            [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov)
        self.forward_model = model
        if self.world > 1:
            self.forward_model = nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if settings.compile:
            self.forward_model = torch.compile(self.forward_model)

        # One generator for the data order (the same on every rank, so ranks agree on the global
        # permutation) and one each for augmentation and mixing (different per rank).
        self.order_generator = torch.Generator().manual_seed(settings.seed)
        self.augment_generator = torch.Generator(self.device).manual_seed(settings.seed * 1000 + 1 + self.rank)
        self.mixer = None
        # Cutout's reference code cuts after Normalize, so its zeros are the dataset's mean colour: give the
        # mean the model normalises with (in [0, 1] image space) unless --param fill says otherwise.
        self.implied_params = ({"fill": tuple(float(v) for v in self.info["mean"])}
                               if settings.method == "cutout" and "fill" not in settings.method_params else {})
        if settings.method != "none":
            self.mixer = msda.Mixer(settings.method, num_classes=self.info["num_classes"], alpha=settings.alpha,
                                    prob=recipe.prob if settings.prob is None else settings.prob,
                                    label_smoothing=settings.label_smoothing,
                                    generator=torch.Generator(self.device).manual_seed(
                                        settings.seed * 1000 + 500 + self.rank),
                                    check_values=False,  # labels are checked once below, not every step
                                    **settings.method_params, **self.implied_params)
        needs = msda.methods_info()[settings.method].needs if self.mixer is not None else ()
        self.needs_logits = "logits" in needs
        # PuzzleMix's saliency and the CAMs of SnapMix / Attentive CutMix come from the model being trained:
        # one extra forward and backward (saliency) or one extra no-grad forward (CAMs) on the clean batch.
        self.guidance = tuple(need for need in needs if need != "logits")
        # What --hardness memory rebuilds logits for: HardMix's own `hardness` criterion (loss or misclassified).
        self.memory_criterion = (settings.method_params.get("hardness", self.mixer.method.info.param("hardness")
                                                            .default) if self.needs_logits else None)
        # MiAMix self-mixing pairs a sample with "two distinct random data augmentations" of itself
        # (miamix.md §3.2): a second, independent pass of the training augmentation over the un-augmented
        # batch. Without augmentation (--augment none) MiAMix makes its own random view instead.
        self.second_view = settings.method == "miamix" and settings.augment != "none"
        # HardMix --hardness memory: each sample's prediction and loss from its previous visit.
        self.memory_pred = torch.full((self.train_split.size,), -1, dtype=torch.long, device=self.device)
        self.memory_loss = torch.zeros(self.train_split.size, device=self.device)
        self._check_labels()

        self.epoch, self.step = 0, 0
        self.running = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss·n, correct, n
        self.metrics = MetricsLog(settings.metrics_stem)
        self.epoch_order_state = self.order_generator.get_state()

    # ------------------------------------------------------------------ state
    def _remove_stale_temporaries(self) -> None:
        """A run killed mid-write (SIGKILL, power loss) leaves its temporary file behind; the next start of
        the same output clears them so they do not pile up (a resume state can be gigabytes)."""
        settings = self.settings
        metrics = MetricsLog(settings.metrics_stem)
        removed = [path for target in (settings.out, settings.state_path, *metrics.paths)
                   for path in remove_stale_temporaries(target)]
        if not settings.resume:
            metrics.discard_partial()  # an earlier attempt's progress; this run writes its own
        if removed and settings.progress:
            print(f"removed {len(removed)} temporary file(s) left by an interrupted write next to {settings.out}",
                  file=sys.stderr, flush=True)

    def _check_labels(self) -> None:
        labels = self.train_split.labels
        if labels is not None:
            bad = (labels < 0) | (labels >= self.info["num_classes"])
            if bool(bad.any()):
                raise ValueError(f"training labels must be in [0, {self.info['num_classes'] - 1}], "
                                 f"found {labels[bad][0].item()}")

    def state(self) -> dict:
        return {
            "fingerprint": self.settings.fingerprint(), "epoch": self.epoch, "step": self.step,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "order_generator_at_epoch_start": self.epoch_order_state,
            "augment_generator": self.augment_generator.get_state(),
            "mix_generator": self.mixer.generator.get_state() if self.mixer else torch.zeros(0, dtype=torch.uint8),
            "memory_pred": self.memory_pred, "memory_loss": self.memory_loss, "running": self.running,
            "metrics": self.metrics.rows,
        }

    def restore(self, state: dict) -> None:
        path = self.settings.state_path
        missing = [key for key in self.state() if key not in state]
        if missing:
            raise ValueError(f"--resume: {path} is not a resume state this program wrote (it lacks {missing})")
        expected = self.settings.fingerprint()
        differing = sorted(k for k in expected if state["fingerprint"].get(k) != expected[k])
        if differing:
            details = ", ".join(f"{k}: {state['fingerprint'].get(k)!r} → {expected[k]!r}" for k in differing)
            raise ValueError(f"--resume: the saved run differs in {details}; resume with the same settings")
        epoch, step = state["epoch"], state["step"]
        if (not isinstance(epoch, int) or not isinstance(step, int) or not 0 <= epoch <= self.settings.recipe.epochs
                or not 0 <= step <= self.steps_per_epoch):
            raise ValueError(f"--resume: {path} holds epoch {epoch!r}, step {step!r}, outside this run's "
                             f"{self.settings.recipe.epochs} epochs of {self.steps_per_epoch} steps")
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            raise ValueError(f"--resume: the model or optimiser in {path} does not fit this run ({error})") from None
        self.epoch, self.step = epoch, step
        self.epoch_order_state = state["order_generator_at_epoch_start"]
        self.augment_generator.set_state(state["augment_generator"].to(self.augment_generator.get_state().device))
        if self.mixer:
            self.mixer.generator.set_state(state["mix_generator"])
        self.memory_pred.copy_(state["memory_pred"])
        self.memory_loss.copy_(state["memory_loss"])
        self.running.copy_(state["running"])
        self.metrics = MetricsLog(self.settings.metrics_stem, state["metrics"])

    def save_state(self) -> None:
        if self.rank == 0:
            save_state(self.settings.state_path, self.state())
        distributed.barrier()

    # ------------------------------------------------------------------ steps
    def _augment(self, images: Tensor) -> Tensor:
        if self.settings.augment == "none":
            return images
        if self.test_split.images is not None or images.shape[-1] <= 64:
            return pad_crop_flip(images, padding=max(1, images.shape[-1] // 8), generator=self.augment_generator)
        return random_resized_crop_flip(images, images.shape[-1], generator=self.augment_generator)

    def _autocast(self):
        enabled = self.settings.amp
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def train_step(self, index: Tensor, images: Tensor, labels: Tensor, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        raw, images = images, self._augment(images)
        images_b = self._augment(raw) if self.second_view else None  # drawn after the first view: resumable
        if self.settings.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
            if images_b is not None:
                images_b = images_b.contiguous(memory_format=torch.channels_last)
        if self.mixer is not None:
            logits = self._memory_or_forward_logits(index, images, labels)
            out = self.mixer(images, labels, logits=logits, images_b=images_b, **self._guidance(images, labels))
            inputs, targets = out.images, out.targets
        else:
            inputs = images
            targets = msda.soft_targets(labels, self.info["num_classes"], label_smoothing=self.settings.label_smoothing,
                                        check_values=False)
        with self._autocast():
            logits = self.forward_model(inputs)
        loss = msda.soft_cross_entropy(logits, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            logits = logits.float().detach()
            if self.needs_logits and self.settings.hardness == "memory":
                self.memory_pred[index] = logits.argmax(1)
                self.memory_loss[index] = F.cross_entropy(logits, labels, reduction="none")
            count = len(labels)
            correct = (logits.argmax(1) == targets.argmax(1)).sum()
            self.running += torch.stack([loss.detach().double() * count, correct.double(),
                                         torch.tensor(float(count), dtype=torch.float64, device=self.device)])

    def _guidance(self, images: Tensor, labels: Tensor) -> dict:
        """The model-derived inputs the mixer needs (msda.guidance), from the model in training mode with its
        batch-norm running statistics untouched: the extra pass must not count as training data."""
        out = {}
        with frozen_batchnorm_statistics(self.model), self._autocast():
            if "saliency" in self.guidance:
                out["saliency"] = msda.guidance.input_gradient_saliency(self.model, images, labels)
            if "cams" in self.guidance:
                out["cams"] = msda.guidance.class_activation_maps(self.model, images, labels)
        return out

    def _memory_or_forward_logits(self, index, images, labels) -> Tensor | None:
        """Logits for HardMix's pairing: an extra forward (hardmix.md Alg. 1 line 7), or from memory."""
        if not self.needs_logits:
            return None
        if self.settings.hardness == "forward":
            with torch.no_grad(), frozen_batchnorm_statistics(self.model), self._autocast():
                return self.forward_model(images).float()
        num_classes = self.info["num_classes"]
        # Memory: logits rebuilt from each sample's previous visit (its prediction on its mixed image then);
        # unseen samples count as correctly classified with loss 0.
        if self.memory_criterion == "loss":
            # true-class logit −loss, others 0: the cross-entropy against the label increases with the loss
            return -F.one_hot(labels, num_classes).float() * self.memory_loss[index, None]
        remembered = self.memory_pred[index]
        return F.one_hot(torch.where(remembered >= 0, remembered, labels), num_classes).float()

    @torch.no_grad()
    def evaluate(self) -> dict:
        self.model.eval()
        totals = torch.zeros(3, dtype=torch.float64, device=self.device)  # loss·n, correct, n
        order = torch.arange(self.test_split.size)[self.rank::self.world]
        for _, images, labels in self.test_split.batches(order, max(self.batch_size, 256), device=self.device,
                                                         workers=self.settings.workers, drop_last=False):
            if self.settings.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                logits = self.model(images).float()
            totals += torch.stack([F.cross_entropy(logits, labels, reduction="sum").double(),
                                   (logits.argmax(1) == labels).sum().double(),
                                   torch.tensor(float(len(labels)), dtype=torch.float64, device=self.device)])
        self.model.train()
        distributed.all_sum(totals)
        loss, correct, count = totals.tolist()
        return {"test_loss": loss / count, "test_acc": correct / count, "test_images": int(count)}

    # ------------------------------------------------------------------ the run
    def run(self) -> dict:
        settings, recipe = self.settings, self.settings.recipe
        if settings.resume:
            self.restore(load_state(settings.state_path))
        self.model.train()
        last_eval = {}
        interrupt = _InterruptFlag()
        try:
            while self.epoch < recipe.epochs:
                self.order_generator.set_state(self.epoch_order_state)
                order = torch.randperm(self.train_split.size, generator=self.order_generator)
                order = order[: self.steps_per_epoch * recipe.batch_size][self.rank::self.world]
                started = time.perf_counter()
                start_step = self.step
                batches = self.train_split.batches(order, self.batch_size, device=self.device,
                                                   workers=settings.workers, drop_last=True, start=self.step)
                bar = tqdm(batches, total=self.steps_per_epoch - self.step, leave=False, dynamic_ncols=True,
                           desc=f"epoch {self.epoch + 1}/{recipe.epochs}",
                           disable=not settings.progress or self.rank != 0)
                for index, images, labels in bar:
                    self.train_step(index, images, labels, self.learning_rate(self.step))
                    self.step += 1
                    if self._stop_requested(interrupt):
                        raise _GracefulStop
                seconds = time.perf_counter() - started
                totals = distributed.all_sum(self.running.clone())
                self._stop_if_not_finite(totals)
                loss_sum, correct, count = totals.tolist()
                # The epoch's row reports the rate of its last step; from the step itself, not from a variable
                # of the loop above, which does not run when a state saved after the last step is resumed.
                row = {"epoch": self.epoch + 1, "lr": self.learning_rate(self.steps_per_epoch - 1),
                       "train_loss": loss_sum / count,
                       "train_acc": correct / count,
                       "images_per_s": (self.step - start_step) * recipe.batch_size / max(seconds, 1e-9),
                       "epoch_s": seconds}
                if (self.epoch + 1) % settings.eval_every == 0 or self.epoch + 1 == recipe.epochs:
                    last_eval = self.evaluate()
                    row.update({k: v for k, v in last_eval.items() if k != "test_images"})
                self.epoch += 1
                self.step = 0
                self.running.zero_()
                self.epoch_order_state = self.order_generator.get_state()
                if self.rank == 0:
                    self.metrics.append(row)
                    if settings.progress:
                        tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in row.items()))
                self.save_state()
        except _GracefulStop:
            self._stop_if_not_finite(distributed.all_sum(self.running.clone()))
            self.save_state()
            if self.rank == 0:
                print(f"\ninterrupted at epoch {self.epoch + 1}, step {self.step}: state saved to "
                      f"{settings.state_path}; continue with the same command and --resume", flush=True)
            raise
        except KeyboardInterrupt:  # a second Ctrl-C: the state may be mid-step, keep the last saved one
            if self.rank == 0:
                print(f"\nstopped; the last saved state (end of epoch {self.epoch}) is in {settings.state_path}",
                      flush=True)
            raise
        finally:
            interrupt.release()
        if not last_eval:
            last_eval = self.evaluate()
        if self.rank == 0:
            self.write_checkpoint(last_eval)
            settings.state_path.unlink(missing_ok=True)  # the run is complete: nothing left to resume
        distributed.barrier()
        return {**last_eval, "out": str(settings.out)}

    def learning_rate(self, step: int) -> float:
        """The rate of step `step` of the current epoch."""
        recipe = self.settings.recipe
        return learning_rate(recipe.lr, recipe.schedule, self.epoch + step / self.steps_per_epoch, recipe.epochs,
                             milestones=recipe.milestones, gamma=recipe.gamma, warmup_epochs=recipe.warmup_epochs)

    def _stop_if_not_finite(self, totals: Tensor) -> None:
        """Refuse to save a state or checkpoint once the loss or a weight is NaN or infinite (one host sync per
        epoch): the files from the last good epoch stay as they are."""
        finite = torch.isfinite(totals).all() & torch.stack([torch.isfinite(p).all() for p in
                                                             self.model.parameters()]).all()
        if bool(distributed.all_sum(finite.logical_not().float().reshape(1)).item() == 0):
            return
        kept = (f"the state saved before it is kept in {self.settings.state_path} (--resume continues from it)"
                if self.settings.state_path.exists() else "nothing was saved")
        raise NonFiniteTraining(f"the training loss or the weights became NaN or infinite in epoch {self.epoch + 1} "
                                f"(lr {self.settings.recipe.lr:g}); stopped without writing: {kept}. Lower --lr "
                                f"(or raise --warmup-epochs) and start again")

    def _stop_requested(self, interrupt: "_InterruptFlag") -> bool:
        """Whether any rank got Ctrl-C (ranks agree, so none is left waiting in a collective)."""
        if self.world == 1:
            return interrupt.requested
        flag = torch.tensor([float(interrupt.requested)], device=self.device)
        return bool(distributed.all_sum(flag).item() > 0)

    def write_checkpoint(self, final_eval: dict) -> None:
        settings = self.settings
        meta = {
            **self.info, "arch": settings.arch, "method": settings.method,
            "method_params": {**settings.method_params, **self.implied_params},
            "alpha": self.mixer.alpha if self.mixer else None,
            "prob": self.mixer.prob if self.mixer else None,
            "label_smoothing": settings.label_smoothing, "hardness": settings.hardness if self.needs_logits else None,
            "recipe": settings.recipe.to_dict(), "augment": settings.augment, "epochs": settings.recipe.epochs,
            "seed": settings.seed, "data_seed": settings.data_seed,
            "test_accuracy": final_eval["test_acc"], "test_images": final_eval["test_images"],
            "command": settings.command, "msda_version": msda.__version__, "torch_version": torch.__version__,
        }
        if self.init_meta is not None:
            meta["init"] = self.init_meta
        save_checkpoint(settings.out, self.net.state_dict(), meta)
        self.metrics.commit()  # the run's metrics replace the previous run's only beside its checkpoint


def load_initial_weights(net: nn.Module, path: str | os.PathLike, *, arch: str, info: dict) -> dict:
    """Load the weights of an msda.train checkpoint into `net` (the run's architecture, classes and input
    size must match); returns what the new checkpoint records about its starting point."""
    path = Path(path)
    if path.suffix != ".safetensors" or not path.is_file():
        raise ValueError(f"--init must be an existing .safetensors checkpoint written by msda.train, got {str(path)!r}")
    try:
        meta = read_checkpoint_meta(path)
    except ValueError as error:
        raise ValueError(f"--init: {error}") from None
    if meta is None:
        raise ValueError(f"--init {str(path)!r} has no msda metadata: only checkpoints written by msda.train can "
                         f"start a run")
    expected = {"arch": arch, "num_classes": info["num_classes"], "input_size": info["input_size"],
                "dataset": info["dataset"]}
    differs = {key: (meta.get(key), value) for key, value in expected.items() if meta.get(key) != value}
    if differs:
        details = ", ".join(f"{key} {theirs!r} (this run: {ours!r})" for key, (theirs, ours) in differs.items())
        raise ValueError(f"--init {str(path)!r} does not fit this run: {details}")
    try:
        weights = load_file(str(path))
        net.load_state_dict(weights, strict=True)
    except (SafetensorError, RuntimeError, OSError) as error:  # damaged data, or names/shapes its metadata denies
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"--init {str(path)!r}: its weights do not load into {arch} ({first})") from None
    bad = [name for name, tensor in weights.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        raise ValueError(f"--init {str(path)!r}: {len(bad)} weight tensor(s) hold NaN or inf (first: {bad[0]})")
    return {"file": path.name, "sha256": file_sha256(path),
            **{key: meta.get(key) for key in ("method", "epochs", "test_accuracy", "command")}}


class NonFiniteTraining(ValueError):
    """The loss or the weights turned NaN or infinite; nothing was overwritten."""


class _GracefulStop(KeyboardInterrupt):
    """Raised between steps after Ctrl-C, once the state is consistent."""


class _InterruptFlag:
    """Turns Ctrl-C into a request honoured between steps, so the saved state is always a step boundary
    (a second Ctrl-C stops at once)."""

    def __init__(self):
        self.requested = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: finishing this step, then saving (Ctrl-C again to stop at once)", file=sys.stderr,
              flush=True)

    def release(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train(settings: Settings) -> dict:
    """Train, write the checkpoint (rank 0) and return the final test metrics."""
    try:
        return Trainer(settings).run()
    finally:
        distributed.teardown()
