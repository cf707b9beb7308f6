"""The shapes dataset's design figures — object coverage and the invisible-label share of every method:

    python -m msda.data.shapes_report --versions 1 2 --n 1024

Coverage is the object mask's share of the image. The invisible-label share (:func:`msda.stats.invisible_label_share`)
is, for each method of ``msda.METHODS`` with its default parameters, the share of mixed samples whose label
gives at least 0.25 to an object less than 10 % visible, on the first `n` test images mixed as one batch
(Mixer seeded with 0, every sample mixed). HardMix pairs by the model's mistakes: it gets seeded random logits.
ResizeMix pastes the whole partner (shrunk), so its partner is fully visible and only the own object counts.
Cutout keeps its label, so it counts when the hole hides the object.

The model-guided methods take their guidance from a trained model, ``--guide`` (default: the shipped ``none``
model, as the app's cards): PuzzleMix its input-gradient saliency, SnapMix and Attentive CutMix its class
activation maps. Their visibility follows what they do to the objects: PuzzleMix's transport moves the object
masks' blocks as it moves the images', SnapMix's partner is visible as far as its object lies in the box that was
cut from it (the box is pasted whole, resized), and SnapMix's label weights are its CAM shares.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor, nn

import msda
from msda.stats import invisible_label_share

from .shapes import DATASET_VERSION, DESIGNS, Shapes


def coverage(masks: Tensor) -> dict[str, float]:
    """Mean, 10th percentile, median and minimum of the object masks' share of the image ([B, 1, H, W])."""
    area = masks.float().flatten(1).mean(1)
    return {"mean": float(area.mean()), "p10": float(area.quantile(0.1)), "median": float(area.median()),
            "min": float(area.min())}


def load_guide(path: str | Path) -> nn.Module:
    """A classifier from one of this project's .safetensors checkpoints (weights only; no code is loaded)."""
    from safetensors.torch import load_file

    from msda.models import Normalized, build_model
    from msda.training.checkpoint import read_checkpoint_meta

    meta = read_checkpoint_meta(path)
    if meta is None:
        raise ValueError(f"--guide: {path} is not a checkpoint of this project (no msda metadata)")
    net = build_model(meta["arch"], num_classes=meta["num_classes"])
    net.load_state_dict(load_file(str(path)))
    return Normalized(net, meta["mean"], meta["std"]).eval()


def _guidance(method: str, images: Tensor, labels: Tensor, guide: nn.Module | None, generator) -> dict:
    needs = msda.methods_info()[method].needs
    inputs = {}
    if "logits" in needs:
        inputs["logits"] = torch.randn(labels.shape[0], Shapes.num_classes, generator=generator, device=images.device)
    if ("saliency" in needs or "cams" in needs) and guide is None:
        raise ValueError(f"{method} needs a model for its guidance: pass guide=")
    if "saliency" in needs:
        inputs["saliency"] = msda.guidance.input_gradient_saliency(guide, images, labels)
    if "cams" in needs:
        inputs["cams"] = msda.guidance.class_activation_maps(guide, images, labels)
    return inputs


def _visibility(method: str, out, masks: Tensor) -> dict:
    """Visibility overrides where a method rearranges the objects instead of masking them in place."""
    objects = masks.float()
    area = objects.flatten(1).sum(1).clamp_min(1e-12)
    if method == "resizemix":
        return {"partner_visibility": torch.ones_like(out.lam)}
    if method == "puzzlemix" and "plan_own" in out.params:
        from msda.methods.puzzlemix import move_blocks

        side = out.details["transport_side"]
        own = move_blocks(objects, out.params["plan_own"], side)
        partner = move_blocks(objects[out.partner], out.params["plan_partner"], side)
        return {"own_visibility": (out.mask * own).flatten(1).sum(1) / area,
                "partner_visibility": ((1 - out.mask) * partner).flatten(1).sum(1) / area[out.partner]}
    if method == "snapmix":
        x0, y0, x1, y1 = out.details["box_partner"].T
        height, width = masks.shape[-2:]
        xs, ys = torch.arange(width, device=masks.device), torch.arange(height, device=masks.device)
        inside = (((ys[None, :, None] >= y0[:, None, None]) & (ys[None, :, None] < y1[:, None, None]))
                  & ((xs[None, None, :] >= x0[:, None, None]) & (xs[None, None, :] < x1[:, None, None])))
        pasted = (out.mask < 1).flatten(1).any(1)
        kept = (objects[out.partner][:, 0] * inside).flatten(1).sum(1) / area[out.partner]
        return {"partner_visibility": torch.where(pasted, kept, torch.zeros_like(kept))}
    return {}


def invisible_label_shares(images: Tensor, labels: Tensor, masks: Tensor, *, seed: int = 0, weight: float = 0.25,
                           visible: float = 0.1, guide: nn.Module | None = None,
                           methods=None) -> dict[str, float]:
    """Method → invisible-label share on this batch (every method of msda.METHODS, default parameters).

    ``guide``: the model the model-guided methods take their saliency or CAMs from (required for them).
    """
    shares = {}
    for method in methods or msda.METHODS:
        generator = torch.Generator(images.device).manual_seed(seed)
        mixer = msda.Mixer(method, num_classes=Shapes.num_classes, generator=generator)
        out = mixer(images, labels, **_guidance(method, images, labels, guide, generator))
        shares[method] = float(invisible_label_share(out, masks, weight=weight, visible=visible,
                                                     **_visibility(method, out, masks)))
    return shares


def report(version: int, n: int = 1024, *, size: int = 32, seed: int = 0, guide: nn.Module | None = None) -> dict:
    """Coverage and invisible-label shares of the first `n` test images of a dataset version."""
    images, labels, masks = Shapes("test", n=n, size=size, version=version).render(range(n))
    methods = [m for m in msda.METHODS if guide is not None or not msda.methods_info()[m].model_guided]
    return {"version": version, "n": n, "coverage": coverage(masks),
            "invisible_label_share": invisible_label_shares(images, labels, masks, seed=seed, guide=guide,
                                                            methods=methods)}


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(prog="python -m msda.data.shapes_report", description=__doc__.split("\n\n")[0])
    p.add_argument("--versions", nargs="+", type=int, default=sorted(DESIGNS), choices=sorted(DESIGNS))
    p.add_argument("--n", type=int, default=1024, help="test images (one batch)")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0, help="the Mixer's generator seed")
    p.add_argument("--guide", default=str(Path(__file__).resolve().parents[2] / "checkpoints" / "none.safetensors"),
                   help="checkpoint the model-guided methods take their saliency / CAMs from (default: the shipped "
                        "none model); 'none' leaves those methods out")
    args = p.parse_args(argv)
    if args.n < 2:
        p.error(f"--n must be at least 2, got {args.n}")
    torch.set_num_threads(1)
    guide = None
    if args.guide != "none":
        try:
            guide = load_guide(args.guide)
        except (ValueError, OSError) as error:
            p.error(f"--guide: {error}")
    reports = [report(version, args.n, size=args.size, seed=args.seed, guide=guide) for version in args.versions]
    print("coverage (object share of the image): " + "; ".join(
        f"v{r['version']} mean {r['coverage']['mean']:.3f}, p10 {r['coverage']['p10']:.3f}, "
        f"median {r['coverage']['median']:.3f}, min {r['coverage']['min']:.3f}" for r in reports))
    print(f"{'method':<17}" + "".join(f"{'v' + str(r['version']):>8}" for r in reports)
          + "   (share of mixed samples with ≥ 0.25 label weight on an object < 10 % visible)")
    for method in msda.METHODS:
        if all(method in r["invisible_label_share"] for r in reports):
            print(f"{method:<17}" + "".join(f"{100 * r['invisible_label_share'][method]:7.1f}%" for r in reports))
    print(f"(default version: {DATASET_VERSION})")
    return reports


if __name__ == "__main__":
    main()
