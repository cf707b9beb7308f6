"""SnapMix: an asymmetric box of the partner, resized into a box of the image; labels weighted by CAM mass.

Huang, Wang, Tao. "SnapMix: Semantically Proportional Mixing for Augmenting Fine-grained Data", AAAI 2021.
arXiv:2012.04846.

Guidance: ``cams=`` [B, h, w], each image's class activation map for its own label
(:func:`msda.guidance.class_activation_maps`; one extra no-grad forward pass per training step, as the official
code does). The mixer never runs the model.

Two boxes, each drawn as CutMix draws its box (side √(1 − λ) of the image's, centre uniform, clipped at the
border): box A in the image, of λ ~ Beta(α, α), and box B in the partner, of its own λ_B ~ Beta(α, α) and its
own centre. Box B of the partner is resized (bilinear, corners aligned, as the official code's
``F.interpolate``) into box A. The boxes need not match in size or place: the paper's *asymmetric* mix.

Label weights (§3.2, eq. 4–6). Each CAM is upsampled to the image (bilinear), shifted to minimum 0 and scaled
to sum 1: S(x), the *semantic percentage map*. Then

    ρ_own     = 1 − Σ_{box A} S(x)        (the share of the own object that is still visible)
    ρ_partner =     Σ_{box B} S(x_p)      (the share of the partner's object that was pasted)

and the paper's loss is ``ρ_own·CE(y) + ρ_partner·CE(y_p)``: the two weights need **not** sum to 1 (a box that
cuts no object and pastes none drops both labels' weight). This project's soft label is the normalised
``ỹ = (ρ_own·y + ρ_partner·y_p) / (ρ_own + ρ_partner)``, so the targets still sum to 1 and ``out.lam`` =
ρ_own / (ρ_own + ρ_partner); the paper's loss is that soft cross-entropy times ``ρ_own + ρ_partner``, which
``out.details["label_mass"]`` gives per sample (multiply the per-sample loss by it for the paper's exact
objective). ``out.details`` also holds both ρ. Where either box is empty nothing is pasted and ρ = (1, 0), as in
the official code; where ρ_own + ρ_partner = 0 (the box took the whole own object and pasted none of the
partner's) the label falls back to the mask's area. Two images of the same class keep that class (the official
code's rule ρ ← ρ_own + ρ_partner for both, which the normalised label already gives).

One box pair per sample (the official code draws one pair per batch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._random import beta
from .._render import box_indicator, integer_box
from ..distributions import Drawn, Uniform
from ..registry import Method, MethodInfo, Mixed, Param, register

INFO = MethodInfo(
    name="snapmix",
    title="SnapMix",
    summary="Resizes a box of the partner into a box of another size and place in the image, and weights each "
            "label by the share of its class activation map that the mixed image keeps.",
    formula=r"\tilde x = M_a\odot x + (1-M_a)\odot T(x_p \odot \mathbb{1}_{B_b}),\ "
            r"\rho_a = 1 - \textstyle\sum S(x)\odot \mathbb{1}_{B_a},\ \rho_b = \sum S(x_p)\odot \mathbb{1}_{B_b},\ "
            r"\tilde y \propto \rho_a y + \rho_b y_p",
    paper='Huang, Wang, Tao, "SnapMix: Semantically Proportional Mixing for Augmenting Fine-grained Data", AAAI 2021',
    arxiv="2012.04846",
    default_alpha=5.0,
    mask_only=False,
    label_weight="cam",
    needs=("cams",),
    image_free_mask=False,
    params=(
        Param("center_x", "centre of the box in the image (where the partner's box goes), fraction of the width",
              low=0.0, high=1.0, sampled=Uniform(0.0, 1.0)),
        Param("center_y", "centre of the box in the image, fraction of the height", low=0.0, high=1.0,
              sampled=Uniform(0.0, 1.0)),
        Param("partner_lam", "the partner box's λ: its side is √(1 − λ) of the image's", low=0.0, high=1.0,
              sampled=Drawn("Beta(α, α), like λ", low=0.0, high=1.0)),
        Param("partner_center_x", "centre of the box cut from the partner, fraction of the width", low=0.0,
              high=1.0, sampled=Uniform(0.0, 1.0)),
        Param("partner_center_y", "centre of the box cut from the partner, fraction of the height", low=0.0,
              high=1.0, sampled=Uniform(0.0, 1.0)),
        Param("cams", "[B, h, w] class activation maps, each image for its own label "
              "(msda.guidance.class_activation_maps)", kind="tensor",
              sampled=Drawn("passed as cams=…: the model's class activation maps")),
    ),
    notes="α = 5 is the official code's setting for SnapMix (prob 1, β = 5). The label weight is ρ_own / (ρ_own + "
          "ρ_partner), not the mask's area.",
)


def semantic_percentage(cams: Tensor, height: int, width: int) -> Tensor:
    """[B, H, W]: each CAM upsampled to the image (bilinear), shifted to minimum 0 and scaled to sum 1."""
    maps = F.interpolate(cams[:, None].float(), size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    maps = maps - maps.flatten(1).min(1).values[:, None, None]
    return maps / (maps.flatten(1).sum(1)[:, None, None] + 1e-8)


def _box(lam: Tensor, center_x: Tensor, center_y: Tensor, height: int, width: int):
    side = (1.0 - lam).clamp_min(0).sqrt()
    x0, x1 = integer_box(center_x * width, side * width, width)
    y0, y1 = integer_box(center_y * height, side * height, height)
    return x0, x1, y0, y1


def _resize_box_into_box(images: Tensor, source, target) -> Tensor:
    """[B, C, H, W]: inside each target box, the source box of `images` resized to it (bilinear, corners
    aligned); outside, border-padded values to be masked away."""
    height, width = images.shape[-2:]
    (sx0, sx1, sy0, sy1), (tx0, tx1, ty0, ty1) = source, target
    xs = torch.arange(width, device=images.device, dtype=torch.float32)
    ys = torch.arange(height, device=images.device, dtype=torch.float32)

    def axis(coords, t0, t1, s0, s1, size):
        span_t, span_s = (t1 - t0 - 1).clamp_min(1), (s1 - s0 - 1).clamp_min(0)
        pixel = s0[:, None] + (coords[None] - t0[:, None]) * (span_s / span_t)[:, None]
        pixel = torch.minimum(torch.maximum(pixel, s0[:, None]), (s1 - 1).clamp_min(s0)[:, None])
        return pixel / max(size - 1, 1) * 2 - 1  # align_corners=True coordinates

    grid_x = axis(xs, tx0, tx1, sx0, sx1, width)  # [B, W]
    grid_y = axis(ys, ty0, ty1, sy0, sy1, height)  # [B, H]
    grid = torch.stack(torch.broadcast_tensors(grid_x[:, None, :], grid_y[:, :, None]), -1)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=True)


class SnapMix(Method):
    def mix(self, batch, partner, lam, *, alpha, generator, params):
        lam = self.draw_lam(lam, alpha, batch, generator)
        read = self.reader(batch, generator, params)
        images = batch.images
        height, width = images.shape[-2:]
        cams = self.guidance(read, batch, "cams")

        center = read.tensor("center_x"), read.tensor("center_y")
        lam_partner = read.tensor("partner_lam", lambda n: beta(alpha, n, generator=generator, device=batch.device))
        center_partner = read.tensor("partner_center_x"), read.tensor("partner_center_y")
        box_own = _box(lam, *center, height, width)
        box_partner = _box(lam_partner, *center_partner, height, width)
        area_own = (box_own[1] - box_own[0]) * (box_own[3] - box_own[2])
        area_partner = (box_partner[1] - box_partner[0]) * (box_partner[3] - box_partner[2])
        pasted = (area_own > 0) & (area_partner > 0)

        inside_own = box_indicator(*box_own, height, width)[:, 0] * pasted[:, None, None]
        inside_partner = box_indicator(*box_partner, height, width)[:, 0]
        mask = 1.0 - inside_own[:, None]
        moved = _resize_box_into_box(images[partner], box_partner, box_own).to(images.dtype)
        mixed_images = torch.where(mask.bool(), images, moved)

        percentage = semantic_percentage(cams, height, width)
        rho_own = 1.0 - (percentage * inside_own).flatten(1).sum(1)
        rho_partner = (percentage[partner] * inside_partner).flatten(1).sum(1) * pasted
        mass = rho_own + rho_partner
        area = mask.mean((1, 2, 3))
        label = torch.where(mass > 0, rho_own / mass.clamp_min(1e-12), area).clamp(0, 1)
        read.derive("rho_own", rho_own)
        read.derive("rho_partner", rho_partner)
        read.derive("label_mass", mass)
        read.derive("box_own", torch.stack([box_own[0], box_own[2], box_own[1], box_own[3]], 1))
        read.derive("box_partner", torch.stack([box_partner[0], box_partner[2], box_partner[1], box_partner[3]], 1))
        return Mixed(images=mixed_images, mask=mask, lam_requested=lam, lam=label, params=read.used,
                     details=read.derived)


register(SnapMix(INFO))
