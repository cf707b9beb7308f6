"""Checks of each method against its paper's reading, as figures: ``python -m msda.audit``.

Prints, from seeded draws:

- LMix: the share of mixed-image pixels outside [0, 1] on real photos, and partner regions per mask against
  FMix's at the same λ and δ (the high boost of eq. 5 shapes the mask, not the image);
- GridMix: the share of masks whose holes merged into one region (a single rectangle), overall, for λ < 0.5 and
  near λ = 0.2, and the mean |λ_eff − λ|;
- MiAMix: the smoothing windows drawn at 64 and 224 px (§4.7);
- PuzzleMix: the two-label graph cut's energy against the brute-force minimum on random 3 × 3 problems, how
  often the three-label swap reaches the global minimum on 2 × 2 ones, whether the transport plans are
  permutations, and the share of both images' saliency the mix shows with and without transport (shapes test
  images, the shipped ``none`` model's input-gradient saliency);
- SnapMix: its label weights against the CAM mass inside its boxes recomputed by hand, and how far the weights'
  sum strays from 1 (the paper's loss is not normalised);
- Attentive CutMix: the share of samples whose pasted cells are the partner's top k.

SaliencyMix's agreement with OpenCV's detector needs OpenCV: ``python -m pytest -q -s tests/test_saliency.py -k
agreement``.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from . import MASKS, Mixer
from .stats import connected_regions


def _photos(size: int) -> torch.Tensor:
    from skimage import data

    pictures = [data.astronaut(), data.chelsea(), data.coffee(), data.rocket()]
    batch = [torch.from_numpy(p).permute(2, 0, 1)[None].float() / 255 for p in pictures]
    return torch.cat([F.interpolate(x, size=(size, size), mode="bilinear", antialias=True) for x in batch]).clamp(0, 1)


def lmix_figures(size: int, n: int = 1000) -> dict:
    images = _photos(size).repeat(64, 1, 1, 1)
    out = Mixer("lmix", num_classes=2, generator=torch.Generator().manual_seed(0))(
        images, torch.zeros(len(images), dtype=torch.long))
    lam = torch.full((n,), 0.5)
    fmix = MASKS["fmix"](lam, size, size, generator=torch.Generator().manual_seed(1))
    lmix = MASKS["lmix"](lam, size, size, generator=torch.Generator().manual_seed(1))
    return {"outside": ((out.images < 0) | (out.images > 1)).float().mean().item(),
            "range": (out.images.min().item(), out.images.max().item()),
            "fmix_regions": connected_regions(fmix).float().mean().item(),
            "lmix_regions": connected_regions(lmix).float().mean().item()}


def gridmix_figures(size: int, n: int = 1000) -> dict:
    lam = torch.rand(n, generator=torch.Generator().manual_seed(2))
    masks = MASKS["gridmix"](lam, size, size, generator=torch.Generator().manual_seed(0))
    single = (connected_regions(masks) <= 1).float()
    return {"single": single.mean().item(), "single_below_half": single[lam < 0.5].mean().item(),
            "single_near_0.2": single[(lam - 0.2).abs() < 0.05].mean().item(),
            "lam_error": (masks.mean((1, 2, 3)) - lam).abs().mean().item()}


def miamix_windows(size: int) -> list[float]:
    images = _photos(size)[:2].repeat(32, 1, 1, 1)
    out = Mixer("miamix", num_classes=2, p_smooth=1.0, generator=torch.Generator().manual_seed(0))(
        images, torch.zeros(64, dtype=torch.long))
    return sorted(set(out.details["window"][out.details["smoothed"]].tolist()))


def puzzlemix_figures(n: int = 200) -> dict:
    import itertools

    from ._graphcut import labelling_energy, labelling_problem, solve_labelling

    def problems(blocks, n_labels, seed):
        g = torch.Generator().manual_seed(seed)
        own = torch.rand(n, blocks, blocks, generator=g) ** 3
        own = own / own.flatten(1).sum(1)[:, None, None]
        images = torch.rand(n, 3, 4 * blocks, 4 * blocks, generator=g)
        return labelling_problem(own, own.roll(1, 0), images, images.roll(1, 0), torch.rand(n, generator=g),
                                 blocks=blocks, n_labels=n_labels, beta=1.2, gamma=0.5, eta=0.2, neigh_size=2)

    def brute(unary, edge_v, edge_h):
        blocks, n_labels = unary.shape[1], unary.shape[-1]
        every = torch.tensor(list(itertools.product(range(n_labels), repeat=blocks * blocks))).reshape(-1, blocks, blocks)
        return torch.stack([labelling_energy(every, unary[b].expand(len(every), -1, -1, -1),
                                             edge_v[b].expand(len(every), -1, -1), edge_h[b].expand(len(every), -1, -1)
                                             ).min() for b in range(len(unary))])

    two = problems(3, 2, 0)
    gap2 = labelling_energy(solve_labelling(*two), *two) - brute(*two)
    three = problems(2, 3, 1)
    gap3 = labelling_energy(solve_labelling(*three), *three) - brute(*three)
    from pathlib import Path

    from .data.shapes import Shapes
    from .data.shapes_report import load_guide
    from .guidance import input_gradient_saliency

    images, labels, _ = Shapes("test", n=256, size=32).render(range(256))
    guide = load_guide(Path(__file__).resolve().parents[1] / "checkpoints" / "none.safetensors")
    saliency = input_gradient_saliency(guide, images, labels)
    shown, moved = {}, 0.0
    for transport in (False, True):
        out = Mixer("puzzlemix", num_classes=10, transport=transport, generator=torch.Generator().manual_seed(0))(
            images, labels, saliency=saliency)
        if transport:
            from .methods.puzzlemix import move_blocks

            side = out.details["transport_side"]
            permutations = all(torch.equal(p.sort(1).values, torch.arange(side * side).expand_as(p))
                               for p in (out.params["plan_own"], out.params["plan_partner"]))
            identity = torch.arange(side * side)
            moved = ((out.params["plan_own"] != identity).float().sum(1)
                     + (out.params["plan_partner"] != identity).float().sum(1)).mean().item() / 2
            own = move_blocks(saliency[:, None], out.params["plan_own"], side)
            other = move_blocks(saliency[out.partner][:, None], out.params["plan_partner"], side)
        else:
            own, other = saliency[:, None], saliency[out.partner][:, None]
        total = saliency.flatten(1).sum(1)
        shown[transport] = (((out.mask * own).flatten(1).sum(1) + ((1 - out.mask) * other).flatten(1).sum(1))
                            / (total + total[out.partner])).mean().item()
    return {"gap2": gap2.max().item(), "optimal3": (gap3 <= 4 / 4000 + 1e-9).float().mean().item(),
            "permutations": permutations, "shown_mask_only": shown[False], "shown_transport": shown[True],
            "moved": moved}


def snapmix_figures(n: int = 512) -> dict:
    from .methods.snapmix import semantic_percentage

    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 3, 32, 32, generator=g)
    labels = torch.arange(n) % 10
    cams = torch.rand(n, 8, 8, generator=g) ** 4
    out = Mixer("snapmix", num_classes=10, generator=torch.Generator().manual_seed(1))(images, labels, cams=cams)
    percentage = semantic_percentage(cams, 32, 32)
    error = 0.0
    for b in range(n):
        x0, y0, x1, y1 = out.details["box_own"][b].long().tolist()
        px0, py0, px1, py1 = out.details["box_partner"][b].long().tolist()
        if (out.mask[b] < 1).any():
            rho_own = 1 - percentage[b, y0:y1, x0:x1].sum().item()
            rho_partner = percentage[out.partner[b], py0:py1, px0:px1].sum().item()
        else:
            rho_own, rho_partner = 1.0, 0.0
        error = max(error, abs(out.details["rho_own"][b].item() - rho_own),
                    abs(out.details["rho_partner"][b].item() - rho_partner))
    mass = out.details["label_mass"]
    return {"error": error, "mass_low": mass.quantile(0.05).item(), "mass_high": mass.quantile(0.95).item(),
            "far_from_area": ((out.lam - out.mask.mean((1, 2, 3))).abs() > 0.1).float().mean().item()}


def attentive_figures(n: int = 512) -> float:
    g = torch.Generator().manual_seed(0)
    cams = torch.rand(n, 7, 7, generator=g)
    out = Mixer("attentive_cutmix", num_classes=2, generator=torch.Generator().manual_seed(1))(
        torch.rand(n, 3, 28, 28, generator=g), torch.zeros(n, dtype=torch.long), cams=cams)
    pasted = out.mask[:, 0, 2::4, 2::4].flatten(1) == 0
    top = torch.zeros_like(pasted).scatter_(1, cams[out.partner].flatten(1).topk(6).indices, True)
    return (pasted == top).all(1).float().mean().item()


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    torch.set_num_threads(1)
    for size in (32, 224):
        f = lmix_figures(size)
        print(f"lmix {size:>3} px: mixed pixels outside [0, 1] {f['outside']:.1%}, range "
              f"[{f['range'][0]:.2f}, {f['range'][1]:.2f}]; partner regions per mask at λ = 0.5 (n = 1000): "
              f"fmix {f['fmix_regions']:.2f}, lmix {f['lmix_regions']:.2f}")
    for size in (32, 224):
        f = gridmix_figures(size)
        print(f"gridmix {size:>3} px: single-region masks {f['single']:.1%} (λ < 0.5: {f['single_below_half']:.1%}, "
              f"λ ≈ 0.2: {f['single_near_0.2']:.1%}); mean |λ_eff − λ| {f['lam_error']:.3f}")
    for size in (64, 224):
        print(f"miamix {size:>3} px: smoothing windows drawn {[int(w) for w in miamix_windows(size)]}")
    f = puzzlemix_figures()
    print(f"puzzlemix: two-label cut vs brute force (200 random 3×3 problems) max energy gap {f['gap2']:.2e}; "
          f"three-label swap at the global minimum (200 random 2×2) {f['optimal3']:.1%}; transport plans are "
          f"permutations: {f['permutations']}; input-gradient saliency shown (shapes, the shipped none model) "
          f"{f['shown_mask_only']:.1%} mask only, {f['shown_transport']:.1%} with transport "
          f"({f['moved']:.2f} blocks moved per image)")
    f = snapmix_figures()
    print(f"snapmix: max |ρ − CAM mass in its box| {f['error']:.1e}; ρ_own + ρ_partner 5–95 % "
          f"{f['mass_low']:.2f}–{f['mass_high']:.2f}; label weight ≠ mask area by > 0.1 in {f['far_from_area']:.1%}")
    print(f"attentive_cutmix: pasted cells = the partner's top 6 of 7×7 in {attentive_figures():.1%} of samples")


if __name__ == "__main__":
    main()
