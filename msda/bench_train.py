"""Training throughput per mixing method against no mixing, on the same device in one run.

    python -m msda.bench_train [--device cuda] [--arch resnet20] [--data shapes] [--size 32] [--batch 128]
                               [--steps 10] [--rounds 5] [--methods ...] [--json out.json]

Each method runs the real training step of ``msda.train`` (augmentation, mixing, forward, backward, SGD
update; bf16 autocast and channels_last on CUDA) on in-memory data for ``--steps`` timed steps after a
warmup, every sample mixed; all methods are timed round after round, interleaved, and the median round
counts. The ratio to ``none`` is the method's overhead. HardMix is timed with both ``--hardness forward``
(an extra no-grad forward per step, as in hardmix.md Alg. 1) and ``memory`` (no extra forward).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

import msda
from msda._devices import check_benchmark_args
from msda.bench import synchronize
from msda.models import ARCHS
from msda.models._factory import torchvision_names
from msda.models._registry import registered_names
from msda.models.timm_models import is_timm_arch
from msda.training.checkpoint import atomic_write
from msda.training.loop import Settings, Trainer
from msda.training.recipes import RECIPES


class _Run:
    """One method's trainer and its batches, stepped a few steps at a time."""

    def __init__(self, settings: Settings):
        self.trainer = Trainer(settings)
        order = torch.randperm(self.trainer.train_split.size, generator=torch.Generator().manual_seed(0))
        self.batches = list(self.trainer.train_split.batches(order, self.trainer.batch_size,
                                                             device=self.trainer.device, workers=0,
                                                             drop_last=True))
        if not self.batches:
            raise ValueError(f"--train-size must hold at least one batch of {settings.recipe.batch_size}")
        self.lr = settings.recipe.lr
        self.done = 0

    def seconds(self, count: int) -> float:
        synchronize(self.trainer.device)
        start = time.perf_counter()
        for _ in range(count):
            self.trainer.train_step(*self.batches[self.done % len(self.batches)], lr=self.lr)
            self.done += 1
        synchronize(self.trainer.device)
        return time.perf_counter() - start


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--root")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per method and round")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds; every method runs --steps steps per round, round after round, so that "
                             "changing machine load falls on all alike (medians reported)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--methods", nargs="*", default=list(msda.METHODS), choices=msda.METHODS)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    device = check_benchmark_args(parser, (("--batch", args.batch, 1), ("--size", args.size, 8),
                                           ("--train-size", args.train_size, 1), ("--steps", args.steps, 1),
                                           ("--rounds", args.rounds, 1), ("--warmup", args.warmup, 0)),
                                  args.device, args.json)
    # timm names are checked when the model is built (listing them means importing timm: seconds).
    known = is_timm_arch(args.arch) or args.arch in registered_names() or args.arch in torchvision_names()
    if not known:
        parser.error(f"--arch must be one of msda.models.list_models() (ours: {', '.join(ARCHS)}), got {args.arch!r}")
    cuda = device.type == "cuda"
    recipe = RECIPES["shapes"]
    recipe = type(recipe)(**{**recipe.to_dict(), "batch_size": args.batch, "prob": 1.0})  # every sample mixed

    runs = [("none", "none", {})]
    for method in args.methods:
        if msda.methods_info()[method].needs_logits:
            runs += [(f"{method} (forward)", method, {"hardness": "forward"}),
                     (f"{method} (memory)", method, {"hardness": "memory"})]
        else:
            runs.append((method, method, {}))

    print(f"msda.bench_train: {args.arch} on {args.data} {args.size}px, batch {args.batch}, {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if cuda else f" ({os.cpu_count()} cores)"))
    rates = {}
    with tempfile.TemporaryDirectory() as folder:
        trainers = {}
        for label, method, extra in runs:
            settings = Settings(data=args.data, root=args.root, arch=args.arch, method=method, recipe=recipe,
                                out=Path(folder) / "bench.safetensors", train_size=args.train_size,
                                test_size=args.batch, size=args.size, device=args.device, amp=cuda,
                                channels_last=cuda, progress=False, **extra)
            try:
                trainers[label] = _Run(settings)
            except ValueError as error:  # --arch, --data, --root or --size that the data or models refute
                parser.error(str(error))
            trainers[label].seconds(args.warmup)
        times = {label: [] for label in trainers}
        for _ in range(args.rounds):
            for label, run in trainers.items():
                times[label].append(run.seconds(args.steps))
    for label, seconds in times.items():
        rates[label] = args.steps * args.batch / statistics.median(seconds)
        overhead = 100 * (rates["none"] / rates[label] - 1)
        print(f"{label:<22}{rates[label]:>10.0f} images/s   overhead vs none {overhead:+6.1f}%", flush=True)
    result = {"device": str(device), "arch": args.arch, "data": args.data, "size": args.size, "batch": args.batch,
              "images_per_s": rates}
    if args.json:
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2)))
    return result


if __name__ == "__main__":
    main()
