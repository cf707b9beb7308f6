"""Train a classifier with any mixing method:

    python -m msda.train --data shapes --arch resnet20 --method cutmix --recipe shapes-scratch --train-size 2000 --out runs/cutmix.safetensors

``--method none`` is the baseline. ``--recipe`` picks a paper's setup (hardmix, miamix, smoothmix) or the
shipped checkpoints' (shapes-scratch); any flag given overrides the recipe. Runs on CPU or GPU (``--device``; bf16
autocast with ``--amp``, ``--channels-last``, ``--compile``), and unchanged under
``torchrun --nproc_per_node N python -m msda.train ...`` (DistributedDataParallel; gloo on CPU, nccl on GPU).
Writes the checkpoint (.safetensors with metadata), the per-epoch metrics (``<out stem>.metrics.partial.csv``/
``.jsonl`` during the run, renamed to ``<out stem>.metrics.csv``/``.jsonl`` with the checkpoint, so a failed re-run
keeps the previous run's pair) and a resume state ``<out>.state.pt`` after every epoch and on Ctrl-C;
``--resume`` continues from it. A full disk ends the run with one line naming the file and the free space.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import math
import shlex
import sys
from pathlib import Path

import torch

import msda
from msda._devices import check_device
from msda.data import DATASETS
from msda.training.distributed import world
from msda.training.loop import Settings, train
from msda.training.outputs import DiskFull, is_disk_full
from msda.training.recipes import RECIPES

MAX_LR = 10.0
"""Largest accepted --lr: SGD on these networks diverges far below it (the papers use 0.1–0.25); anything
larger is a typo (1e30), not an experiment, and turns every weight into NaN within a step."""

MAX_WEIGHT_DECAY = 1.0
"""Largest accepted --weight-decay: at 1 the decay alone halves a weight every few steps at lr 0.1; the
papers use 1e-4–5e-4."""

def parse_param(text: str) -> tuple[str, object]:
    """``name=value`` with value a Python literal (number, bool, string, tuple); bare words stay strings."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--param expects name=value, got {text!r}")
    name, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return name.strip(), value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m msda.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, choices=DATASETS)
    p.add_argument("--root", help="dataset folder (cifar10/cifar100/imagefolder)")
    p.add_argument("--train-size", type=int, help="shapes: number of training images")
    p.add_argument("--test-size", type=int, help="shapes: number of test images")
    p.add_argument("--size", type=int, help="image side (shapes: 32, 64, 224…; imagefolder: crop size)")
    p.add_argument("--data-seed", type=int, default=0, help="shapes: dataset seed")
    p.add_argument("--arch", required=True, help="msda.models.list_models() lists the choices: ours, torchvision's, "
                                                  "timm's as timm/<name> (e.g. timm/convnext_tiny)")
    p.add_argument("--method", required=True, choices=("none",) + msda.METHODS)
    p.add_argument("--param", action="append", default=[], type=parse_param, metavar="NAME=VALUE",
                   help="a parameter of the method, repeatable (e.g. --param decay=2)")
    p.add_argument("--alpha", type=float, help="λ prior concentration (default: the method's)")
    p.add_argument("--prob", type=float, help="probability of mixing a sample (default: the recipe's)")
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--hardness", choices=("forward", "memory"), default="forward",
                   help="hardmix: predictions from an extra no-grad forward, or from each sample's last visit")
    p.add_argument("--recipe", choices=tuple(RECIPES), default="shapes")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--momentum", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", choices=("cosine", "multistep"))
    p.add_argument("--warmup-epochs", type=float)
    p.add_argument("--augment", choices=("standard", "none"),
                   help="standard: pad-crop-flip (≤ 64 px, in-memory data) or random-resized-crop-flip")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", action=argparse.BooleanOptionalAction, default=None,
                   help="bf16 autocast (default: on for CUDA)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="default: on for CUDA")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers for streamed datasets")
    p.add_argument("--eval-every", type=int, default=1, help="evaluate every N epochs (and after the last)")
    p.add_argument("--out", required=True, type=Path, help="checkpoint path (.safetensors)")
    p.add_argument("--resume", action="store_true", help="continue from <out>.state.pt")
    p.add_argument("--init", type=Path, help="start from the weights of this msda.train checkpoint (same "
                                             "architecture, classes and input size), e.g. to fine-tune (the "
                                             "shapes-finetune recipe)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or per-epoch lines")
    return p


def settings_from_args(args: argparse.Namespace, argv: list[str]) -> Settings:
    if args.out.suffix != ".safetensors":
        raise ValueError(f"--out must end in .safetensors, got {str(args.out)!r}")
    recipe = RECIPES[args.recipe]
    overrides = {field: getattr(args, field) for field in
                 ("epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule", "warmup_epochs", "augment")
                 if getattr(args, field) is not None}
    recipe = dataclasses.replace(recipe, **overrides)
    for name, value, low in (("epochs", recipe.epochs, 1), ("batch_size", recipe.batch_size, 1),
                             ("eval_every", args.eval_every, 1), ("workers", args.workers, 0)):
        if value < low:
            raise ValueError(f"--{name.replace('_', '-')} must be at least {low}, got {value}")
    check_optimiser_settings(recipe)
    if not (math.isfinite(args.label_smoothing) and 0.0 <= args.label_smoothing < 1.0):
        raise ValueError(f"--label-smoothing must be in [0, 1), got {args.label_smoothing}")
    check_device(args.device)
    check_arch_input_size(args.arch, args.data, args.size)
    method_params = dict(args.param)
    if args.method == "none" and method_params:
        raise ValueError(f"--param {sorted(method_params)} given with --method none, which takes no parameters")
    if args.method != "none":  # check the method's options before any data is loaded
        msda.Mixer(args.method, num_classes=2, alpha=args.alpha, prob=1.0 if args.prob is None else args.prob,
                   label_smoothing=args.label_smoothing, **method_params)
    cuda = torch.device(args.device).type == "cuda"
    return Settings(
        data=args.data, arch=args.arch, method=args.method, recipe=recipe, out=args.out, root=args.root,
        train_size=args.train_size, test_size=args.test_size, size=args.size, data_seed=args.data_seed,
        alpha=args.alpha, prob=args.prob, label_smoothing=args.label_smoothing, method_params=method_params,
        hardness=args.hardness, augment=recipe.augment, device=args.device,
        amp=cuda if args.amp is None else args.amp,
        channels_last=cuda if args.channels_last is None else args.channels_last,
        compile=args.compile, seed=args.seed, workers=args.workers, resume=args.resume,
        eval_every=args.eval_every, progress=not args.no_progress,
        command=shlex.join(["python", "-m", "msda.train", *argv]),
        init=None if args.init is None else str(args.init),
    )


def check_arch_input_size(arch: str, data: str, size: int | None) -> None:
    """Refuse, before any data is loaded, a timm architecture that is unknown or takes one input side only (ViT,
    DeiT, Swin: position embeddings and attention windows are built for their ``img_size``) at another side."""
    from msda.models import TIMM_PREFIX, build_model, fixed_input_size

    if not arch.startswith(TIMM_PREFIX):
        return  # ours and torchvision's are checked when the model is built (torchvision's ViTs included)
    with torch.device("meta"):
        net = build_model(arch, 2)  # ValueError with close names for an unknown one
    fixed = fixed_input_size(net)
    side = size if size is not None else 224 if data == "imagefolder" else 32
    if fixed is not None and side != fixed:
        raise ValueError(f"--arch {arch} takes {fixed} × {fixed} images only (its position embeddings are built "
                         f"for that side), got {side} px: pass --size {fixed}")


def check_optimiser_settings(recipe) -> None:
    """Refuse learning rates, momenta, weight decays and warmups no run could learn with (NaN, inf, negative,
    momentum ≥ 1) before any data is loaded."""
    bounds = {"lr": (recipe.lr, 0.0, MAX_LR, "]"), "momentum": (recipe.momentum, 0.0, 1.0, ")"),
              "weight_decay": (recipe.weight_decay, 0.0, MAX_WEIGHT_DECAY, "]"),
              "warmup_epochs": (recipe.warmup_epochs, 0.0, float(recipe.epochs), "]")}
    for name, (value, low, high, right) in bounds.items():
        inside = math.isfinite(value) and low <= value and (value <= high if right == "]" else value < high)
        if not inside:
            what = " (at most --epochs)" if name == "warmup_epochs" else ""
            raise ValueError(f"--{name.replace('_', '-')} must be a number in [{low:g}, {high:g}{right}{what}, "
                             f"got {value}")


def main(argv: list[str] | None = None) -> dict:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args, argv)
    except ValueError as error:
        parser.error(str(error))
    try:
        result = train(settings)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except DiskFull as error:  # one line, without the usage text: the settings were fine
        raise SystemExit(f"error: {error}") from None
    except OSError as error:
        if not is_disk_full(error):
            raise
        raise SystemExit(f"error: {DiskFull(error.filename or settings.out, error)}") from None
    except ValueError as error:  # settings that only the data, a saved state or --init can refute
        parser.error(str(error))
    if settings.progress and world()[0] == 0:
        print(f"test accuracy {result['test_acc']:.4f} on {result['test_images']} images → {result['out']}")
    return result


if __name__ == "__main__":
    main()
