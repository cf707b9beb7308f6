"""Mixing speed: every method per batch, against torchvision's and timm's mixers and a ResNet-50 step.

    python -m msda.bench [--device cuda] [--batch 128] [--size 224] [--repeats 20] [--json out.json]

Every mixer is called once per round, round after round, so that changing machine load falls on all of them
alike; medians are reported. Prints, per method, milliseconds per batch and images per second of ``msda.Mixer`` (per-sample λ, default
settings, labels as class indices), and the ratio to one ResNet-50 training step (forward, backward, SGD
update; bf16 autocast and channels_last on CUDA) at the same batch on the same device. In the same run it
times torchvision.transforms.v2 ``MixUp``/``CutMix`` (one λ and one box per batch) and, when timm is
installed, timm's ``Mixup`` in ``elem`` mode (per-sample, a Python loop over the batch), and prints the ratios
the project's speed targets are stated in.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

import msda
from msda._devices import check_benchmark_args


MIN_SIZE = 8
"""Smallest image side benchmarked: the grid and smoothing methods need a few pixels per cell."""

CUTMIX_MULTIPLES = {"gmix": 4.0, "agmix": 4.0, "fmix": 4.0, "lmix": 4.0, "gridmix": 4.0, "resizemix": 4.0,
                    "saliencymix": 8.0, "miamix": 8.0}
"""Targets for the image-only masks' time per batch as a multiple of CutMix's in the same run (B = 64, 224 px):
an FFT, a Gaussian fit or a resize per sample may cost a few CutMixes, the saliency detector and MiAMix's
multi-layer masks a few more."""


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int = 3) -> float:
    """Median wall time of fn() over `repeats` calls, each waited for on the device."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def resnet50_step_seconds(batch: int, size: int, device: torch.device, steps: int) -> float:
    """Median time of one ResNet-50 training step (1000 classes) on random data."""
    from torchvision.models import resnet50

    model = resnet50(num_classes=1000).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    images = torch.rand(batch, 3, size, size, device=device)
    labels = torch.randint(0, 1000, (batch,), device=device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return median_seconds(step, device, repeats=steps, warmup=1)


def interleaved_medians(calls: dict[str, tuple[Callable[[], object], Callable[[object], object]]],
                        device: torch.device, repeats: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds of each call, the calls taken round-robin so that changes in machine load hit all alike.

    Each entry is ``(prepare, call)``: ``prepare()`` runs untimed and its result is passed to ``call``.
    """
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(warmup + repeats):
        for name, (prepare, call) in calls.items():
            argument = prepare()
            synchronize(device)
            start = time.perf_counter()
            call(argument)
            synchronize(device)
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def peer_calls(images: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """torchvision's per-batch mixers and, when installed, timm's per-sample ``elem`` mode."""
    from torchvision.transforms import v2

    none = lambda: None  # noqa: E731
    mixup, cutmix = v2.MixUp(num_classes=num_classes), v2.CutMix(num_classes=num_classes)
    calls = {
        "torchvision MixUp (per batch)": (none, lambda _: mixup(images, labels)),
        "torchvision CutMix (per batch)": (none, lambda _: cutmix(images, labels)),
    }
    try:
        from timm.data import Mixup
    except ImportError:
        return calls
    for name, kwargs in (("timm Mixup elem (mixup)", dict(mixup_alpha=1.0, cutmix_alpha=0.0)),
                         ("timm Mixup elem (cutmix)", dict(mixup_alpha=0.0, cutmix_alpha=1.0))):
        mixer = Mixup(mode="elem", label_smoothing=0.0, num_classes=num_classes, **kwargs)
        # timm mixes in place: each call gets a fresh copy, made outside the timed region.
        calls[name] = (images.clone, lambda fresh, mixer=mixer: mixer(fresh, labels))
    return calls


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=15,
                        help="timed rounds; every method and peer is called once per round (medians reported)")
    parser.add_argument("--model-steps", type=int, default=3, help="timed ResNet-50 steps (0: skip)")
    parser.add_argument("--methods", nargs="*", default=list(msda.METHODS), choices=msda.METHODS)
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    device = check_benchmark_args(parser, (("--batch", args.batch, 2), ("--size", args.size, MIN_SIZE),
                                           ("--repeats", args.repeats, 1), ("--model-steps", args.model_steps, 0),
                                           ("--num-classes", args.num_classes, 1)), args.device, args.json)
    if args.batch % 2:
        parser.error(f"--batch must be even (timm's elem mode needs it), got {args.batch}")

    g = torch.Generator(device=device).manual_seed(0)
    images = torch.rand(args.batch, 3, args.size, args.size, device=device, generator=g)
    labels = torch.randint(0, args.num_classes, (args.batch,), device=device, generator=g)
    logits = torch.randn(args.batch, args.num_classes, device=device, generator=g)
    # The model-derived inputs as a training step would pass them (ResNet-50 at 224 px: a 7 × 7 CAM); their own
    # cost (an extra backward for PuzzleMix's saliency, an extra forward for CAMs) is in msda.bench_train.
    guidance = {"logits": logits,
                "saliency": torch.rand(args.batch, args.size, args.size, device=device, generator=g),
                "cams": torch.rand(args.batch, 7, 7, device=device, generator=g)}

    cpu = platform.processor() or platform.machine()
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu}, {os.cpu_count()} cores"
    print(f"msda.bench: batch {args.batch}, {args.size}×{args.size}, {device} ({where}), torch {torch.__version__}")

    step = resnet50_step_seconds(args.batch, args.size, device, args.model_steps) if args.model_steps else None
    if step:
        print(f"ResNet-50 training step: {step * 1e3:.1f} ms")

    none = lambda: None  # noqa: E731
    calls = {}
    for method in args.methods:
        mixer = msda.Mixer(method, num_classes=args.num_classes, generator=g)
        inputs = {need: guidance[need] for need in msda.methods_info()[method].needs}
        calls[method] = (none, lambda _, mixer=mixer, inputs=inputs: mixer(images, labels, **inputs))
    peers_calls = peer_calls(images, labels, args.num_classes)
    measured = interleaved_medians({**calls, **peers_calls}, device, args.repeats)
    ours = {name: measured[name] for name in calls}
    peers = {name: measured[name] for name in peers_calls}

    cutmix = ours.get("cutmix")
    header = (f"{'method':<32}{'ms/batch':>10}{'images/s':>12}" + (f"{'× cutmix':>10}" if cutmix else "")
              + (f"{'% of R50 step':>15}" if step else ""))
    print("\n" + header + "\n" + "-" * len(header))
    for name, seconds in list(ours.items()) + list(peers.items()):
        row = f"{name:<32}{seconds * 1e3:>10.2f}{args.batch / seconds:>12.0f}"
        if cutmix:
            row += f"{seconds / cutmix:>9.1f}×"
        if step:
            row += f"{100 * seconds / step:>14.2f}%"
        print(row)

    print("\nTargets")
    checks = []

    def check(label, value, limit, fmt="{:.2f}×"):
        ok = value <= limit
        checks.append({"check": label, "value": value, "limit": limit, "ok": ok})
        print(f"  [{'ok' if ok else 'MISSED'}] {label}: {fmt.format(value)} (target ≤ {fmt.format(limit)})")

    pairs = (("cutmix", "torchvision CutMix (per batch)", "timm Mixup elem (cutmix)"),
             ("mixup", "torchvision MixUp (per batch)", "timm Mixup elem (mixup)"))
    for method, tv_name, timm_name in pairs:
        if method not in ours:
            continue
        check(f"{method} per-sample vs {tv_name}", ours[method] / peers[tv_name], 1.5)
        if timm_name in peers:
            check(f"{method} per-sample vs {timm_name}", ours[method] / peers[timm_name], 1.0)
    if cutmix:  # the mask generators' own cost against the simplest box, measured in the same rounds
        for method, seconds in ours.items():
            if method in CUTMIX_MULTIPLES:
                check(f"{method} vs cutmix", seconds / cutmix, CUTMIX_MULTIPLES[method], fmt="{:.1f}×")
    if step:
        for method, seconds in ours.items():
            check(f"{method} mixing vs one ResNet-50 step", 100 * seconds / step, 3.0, fmt="{:.2f}%")

    result = {"device": str(device), "device_name": where, "batch": args.batch, "size": args.size,
              "torch": torch.__version__, "resnet50_step_s": step, "msda_s": ours, "peers_s": peers,
              "checks": checks}
    if args.json:
        from msda.training.checkpoint import atomic_write

        atomic_write(args.json, lambda tmp: Path(tmp).write_text(json.dumps(result, indent=2)))
    return result


if __name__ == "__main__":
    main()
