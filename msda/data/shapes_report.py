"""The shapes dataset's design figures — object coverage and the invisible-label share of every method:

    python -m msda.data.shapes_report --versions 1 2 --n 1024

Coverage is the object mask's share of the image. The invisible-label share (:func:`msda.stats.invisible_label_share`)
is, for each method of ``msda.METHODS`` with its default parameters, the share of mixed samples whose label
gives at least 0.25 to an object less than 10 % visible, on the first `n` test images mixed as one batch
(Mixer seeded with 0, every sample mixed). HardMix pairs by the model's mistakes: it gets seeded random logits.
ResizeMix pastes the whole partner (shrunk), so its partner is fully visible and only the own object counts.
Cutout keeps its label, so it counts when the hole hides the object.
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor

import msda
from msda.stats import invisible_label_share

from .shapes import DATASET_VERSION, DESIGNS, Shapes


def coverage(masks: Tensor) -> dict[str, float]:
    """Mean, 10th percentile, median and minimum of the object masks' share of the image ([B, 1, H, W])."""
    area = masks.float().flatten(1).mean(1)
    return {"mean": float(area.mean()), "p10": float(area.quantile(0.1)), "median": float(area.median()),
            "min": float(area.min())}


def invisible_label_shares(images: Tensor, labels: Tensor, masks: Tensor, *, seed: int = 0, weight: float = 0.25,
                           visible: float = 0.1) -> dict[str, float]:
    """Method → invisible-label share on this batch (every method of msda.METHODS, default parameters)."""
    shares = {}
    for method in msda.METHODS:
        generator = torch.Generator(images.device).manual_seed(seed)
        mixer = msda.Mixer(method, num_classes=Shapes.num_classes, generator=generator)
        logits = None
        if msda.methods_info()[method].needs_logits:
            logits = torch.randn(labels.shape[0], Shapes.num_classes, generator=generator, device=images.device)
        out = mixer(images, labels, logits=logits)
        partner_visibility = torch.ones_like(out.lam) if method == "resizemix" else None
        shares[method] = float(invisible_label_share(out, masks, weight=weight, visible=visible,
                                                     partner_visibility=partner_visibility))
    return shares


def report(version: int, n: int = 1024, *, size: int = 32, seed: int = 0) -> dict:
    """Coverage and invisible-label shares of the first `n` test images of a dataset version."""
    images, labels, masks = Shapes("test", n=n, size=size, version=version).render(range(n))
    return {"version": version, "n": n, "coverage": coverage(masks),
            "invisible_label_share": invisible_label_shares(images, labels, masks, seed=seed)}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m msda.data.shapes_report", description=__doc__.split("\n\n")[0])
    p.add_argument("--versions", nargs="+", type=int, default=sorted(DESIGNS), choices=sorted(DESIGNS))
    p.add_argument("--n", type=int, default=1024, help="test images (one batch)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="the Mixer's generator seed")
    args = p.parse_args(argv)
    if args.n < 2:
        p.error(f"--n must be at least 2, got {args.n}")
    torch.set_num_threads(1)
    reports = [report(version, args.n, size=args.size, seed=args.seed) for version in args.versions]
    print("coverage (object share of the image): " + "; ".join(
        f"v{r['version']} mean {r['coverage']['mean']:.3f}, p10 {r['coverage']['p10']:.3f}, "
        f"median {r['coverage']['median']:.3f}, min {r['coverage']['min']:.3f}" for r in reports))
    print(f"{'method':<12}" + "".join(f"{'v' + str(r['version']):>8}" for r in reports)
          + "   (share of mixed samples with ≥ 0.25 label weight on an object < 10 % visible)")
    for method in msda.METHODS:
        print(f"{method:<12}" + "".join(f"{100 * r['invisible_label_share'][method]:7.1f}%" for r in reports))
    print(f"(default version: {DATASET_VERSION})")
    return reports


if __name__ == "__main__":
    main()
