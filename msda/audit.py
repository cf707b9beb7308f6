"""Checks of each method against its paper's reading, as figures: ``python -m msda.audit``.

Prints, from seeded draws:

- LMix: the share of mixed-image pixels outside [0, 1] on real photos, and partner regions per mask against
  FMix's at the same λ and δ (the high boost of eq. 5 shapes the mask, not the image);
- GridMix: the share of masks whose holes merged into one region (a single rectangle), overall, for λ < 0.5 and
  near λ = 0.2, and the mean |λ_eff − λ|;
- MiAMix: the smoothing windows drawn at 64 and 224 px (§4.7).

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


if __name__ == "__main__":
    main()
