"""Training throughput per mixing method against no mixing, on the same device in one run.

    python -m msda.bench_train [--device cuda] [--arch resnet20] [--data shapes] [--size 32] [--batch 128]
                               [--steps 30] [--methods ...] [--json out.json]

Each method runs the real training step of ``msda.train`` (augmentation, mixing, forward, backward, SGD
update; bf16 autocast and channels_last on CUDA) on in-memory data for ``--steps`` timed steps after a
warmup; the ratio to ``none`` is the method's overhead. HardMix is timed with both ``--hardness forward``
(an extra no-grad forward per step, as in hardmix.md Alg. 1) and ``memory`` (no extra forward).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

import msda
from msda.training.loop import Settings, Trainer
from msda.training.recipes import RECIPES


def steps_per_second(settings: Settings, steps: int, warmup: int) -> float:
    trainer = Trainer(settings)
    recipe = settings.recipe
    order = torch.randperm(trainer.train_split.size, generator=torch.Generator().manual_seed(0))
    batches = list(trainer.train_split.batches(order, trainer.batch_size, device=trainer.device, workers=0,
                                               drop_last=True))
    if not batches:
        raise ValueError(f"--train-size must hold at least one batch of {recipe.batch_size}")

    def run(count):
        for i in range(count):
            trainer.train_step(*batches[i % len(batches)], lr=recipe.lr)

    run(warmup)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    start = time.perf_counter()
    run(steps)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    return steps / (time.perf_counter() - start)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--data", default="shapes")
    parser.add_argument("--root")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--train-size", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--methods", nargs="*", default=list(msda.METHODS), choices=msda.METHODS)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    recipe = RECIPES["shapes"]
    recipe = type(recipe)(**{**recipe.to_dict(), "batch_size": args.batch})

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
        for label, method, extra in runs:
            settings = Settings(data=args.data, root=args.root, arch=args.arch, method=method, recipe=recipe,
                                out=Path(folder) / "bench.safetensors", train_size=args.train_size,
                                test_size=args.batch, size=args.size, device=args.device, amp=cuda,
                                channels_last=cuda, progress=False, **extra)
            rates[label] = steps_per_second(settings, args.steps, args.warmup) * args.batch
            overhead = 100 * (rates["none"] / rates[label] - 1)
            print(f"{label:<22}{rates[label]:>10.0f} images/s   overhead vs none {overhead:+6.1f}%", flush=True)
    result = {"device": str(device), "arch": args.arch, "data": args.data, "size": args.size, "batch": args.batch,
              "images_per_s": rates}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
