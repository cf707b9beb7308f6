"""Throughput of the batched corruptions against the ``imagecorruptions`` package, in one run on the same
photos.

The corruptions are those of Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to Common
Corruptions and Perturbations", ICLR 2019, arXiv:1903.12261. ``imagecorruptions`` (PyPI) ports their
generators to one numpy/OpenCV call per image; :func:`analysis.corruptions.corrupt` renders a whole batch
with torch on the device. Both run every severity 1–5; images/s is images over seconds summed over the
five. Ours starts from a float batch on the device, theirs from a uint8 HWC array — each one's native
input. Threads (torch and OpenCV) are limited to ``--threads`` for both, 1 by default, so the comparison
is one core against one core.

    python -m analysis.bench_corruptions [--device cpu|cuda] [--size 224] [--batch 32] [--n-images 16]
    python -m analysis.bench_corruptions --sweep [--sweep-images 10000]   # 19 × 5 sweep over 32-px images
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from .corruptions import CORRUPTIONS, corrupt

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def photos(size: int) -> list[np.ndarray]:
    """The skimage.data photos, shorter side resized to `size` and centre-cropped: uint8 [size, size, 3]."""
    import skimage.data
    from PIL import Image

    out = []
    for name in PHOTOS:
        image = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        scale = size / min(image.size)
        width, height = max(size, round(image.width * scale)), max(size, round(image.height * scale))
        image = image.resize((width, height), Image.BICUBIC)
        left, top = (width - size) // 2, (height - size) // 2
        out.append(np.asarray(image.crop((left, top, left + size, top + size))))
    return out


def batch_of(images: list[np.ndarray], batch: int, device: torch.device) -> torch.Tensor:
    """[batch, 3, S, S] float32 in [0, 1], cycling through the photos."""
    stack = np.stack([images[i % len(images)] for i in range(batch)])
    return torch.from_numpy(stack).permute(0, 3, 1, 2).float().div(255).to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_pair(name: str, x: torch.Tensor, images: list[np.ndarray], repeats: int,
              count: int) -> tuple[float, float | str]:
    """Images per second over severities 1–5 of ours (`repeats` batches per severity) and of
    imagecorruptions (`count` images per severity), or the error that stops imagecorruptions, as
    "n/a (fails: …)". Both are warmed up first, then timed severity by severity in alternation, so that a
    change in the machine's load hits both alike."""
    from imagecorruptions import corrupt as their_corrupt

    generator = torch.Generator(device=x.device).manual_seed(0)
    np.random.seed(0)
    failure = None
    for severity in range(1, 6):
        corrupt(x, name, severity, generator=generator)
        if failure is None:
            try:
                their_corrupt(images[0], corruption_name=name, severity=severity)
            except Exception as error:  # noqa: BLE001  (any failure of the third-party code is reported)
                message = str(error).split("\n")[0]
                failure = f"n/a (fails: {type(error).__name__}: {message[:90]})"
    _sync(x.device)
    ours_seconds = theirs_seconds = 0.0
    for severity in range(1, 6):
        start = time.perf_counter()
        for _ in range(repeats):
            corrupt(x, name, severity, generator=generator)
        _sync(x.device)
        ours_seconds += time.perf_counter() - start
        if failure is None:
            start = time.perf_counter()
            for i in range(count):
                their_corrupt(images[i % len(images)], corruption_name=name, severity=severity)
            theirs_seconds += time.perf_counter() - start
    ours = 5 * repeats * x.shape[0] / ours_seconds
    return ours, failure if failure is not None else 5 * count / theirs_seconds


def table(args, device: torch.device) -> None:
    images = photos(args.size)
    x = batch_of(images, args.batch, device)
    names = args.corruptions or CORRUPTIONS
    print(f"device={device} size={args.size} batch={args.batch} threads={torch.get_num_threads()} "
          f"torch={torch.__version__} imagecorruptions images per severity={args.n_images}")
    print(f"{'corruption':<18} {'ours img/s':>11} {'imagecorruptions img/s':>24} {'ratio':>7}")
    for name in names:
        ours, theirs = time_pair(name, x, images, args.repeats, args.n_images)
        if isinstance(theirs, str):
            print(f"{name:<18} {ours:>11.1f} {theirs}")
        else:
            print(f"{name:<18} {ours:>11.1f} {theirs:>24.1f} {ours / theirs:>6.1f}×")


def sweep(args, device: torch.device) -> None:
    """Time the full 19 corruptions × 5 severities over `sweep_images` 32×32 images on the device."""
    images = photos(32)
    x = batch_of(images, args.sweep_batch, device)
    generator = torch.Generator(device=device).manual_seed(0)
    for name in CORRUPTIONS:  # warm-up: caches, kernels, the frost bank
        corrupt(x[:2], name, 1, generator=generator)
    _sync(device)
    start = time.perf_counter()
    for name in CORRUPTIONS:
        for severity in range(1, 6):
            done = 0
            while done < args.sweep_images:
                count = min(args.sweep_batch, args.sweep_images - done)
                corrupt(x[:count], name, severity, generator=generator)
                done += count
    _sync(device)
    seconds = time.perf_counter() - start
    total = 19 * 5 * args.sweep_images
    print(f"sweep: 19 corruptions × 5 severities × {args.sweep_images} images of 32×32 on {device} "
          f"(batches of {args.sweep_batch}, threads={torch.get_num_threads()}): {seconds:.1f} s, "
          f"{total / seconds:.0f} images/s")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--size", type=int, default=224, help="image side in pixels (default 224)")
    parser.add_argument("--batch", type=int, default=32, help="our batch size (default 32)")
    parser.add_argument("--n-images", type=int, default=16,
                        help="images per severity for imagecorruptions (default 16)")
    parser.add_argument("--repeats", type=int, default=3, help="our batches per severity (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads (default 1)")
    parser.add_argument("--corruptions", nargs="+", choices=CORRUPTIONS, metavar="NAME",
                        help="a subset of the 19 corruptions (default all)")
    parser.add_argument("--sweep", action="store_true", help="time the 19×5 sweep over 32-px images instead")
    parser.add_argument("--sweep-images", type=int, default=10000, help="images in the sweep (default 10000)")
    parser.add_argument("--sweep-batch", type=int, default=1000, help="batch size in the sweep (default 1000)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available")
    for name in ("size", "batch", "n_images", "repeats", "threads", "sweep_images", "sweep_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.size < 8:
        parser.error(f"--size must be at least 8, got {args.size}")
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="imagecorruptions")
    warnings.filterwarnings("ignore", message=".*pkg_resources.*")
    if not args.sweep:
        import cv2  # imagecorruptions' OpenCV: same thread budget as torch

        cv2.setNumThreads(args.threads)
    device = torch.device(args.device)
    if args.sweep:
        sweep(args, device)
    else:
        table(args, device)


if __name__ == "__main__":
    main()
