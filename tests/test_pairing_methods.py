"""Methods that do more than an image-free mask: HardMix, MiAMix, SaliencyMix, ResizeMix, LMix."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import msda
from conftest import make_generator
from msda.methods.saliencymix import saliency_peak


def logits_for(labels, wrong, num_classes):
    """Logits that classify every sample right except those in `wrong`."""
    logits = F.one_hot(labels, num_classes).float() * 4
    logits[wrong] = F.one_hot((labels[wrong] + 1) % num_classes, num_classes).float() * 4
    return logits


# ---------------------------------------------------------------- HardMix

def test_hardmix_partners_are_only_the_misclassified(device):
    labels = (torch.arange(64) % 10).to(device)
    wrong = torch.tensor([3, 17, 40], device=device)
    images = torch.rand(64, 3, 16, 16, device=device)
    for seed in range(5):
        mixer = msda.Mixer("hardmix", num_classes=10, generator=make_generator(device, seed))
        out = mixer(images, labels, logits=logits_for(labels, wrong, 10))
        assert set(out.partner.tolist()) == set(wrong.tolist()), "each hard sample appears, nothing else"
        assert torch.equal(out.details["hard"].nonzero().flatten(), wrong)


def test_hardmix_repeats_are_spread_over_the_hard_pool(device):
    labels = (torch.arange(1000) % 10).to(device)
    wrong = torch.tensor([1, 2, 3, 4], device=device)
    mixer = msda.Mixer("hardmix", num_classes=10, generator=make_generator(device))
    out = mixer(torch.rand(1000, 1, 8, 8, device=device), labels, logits=logits_for(labels, wrong, 10))
    counts = torch.bincount(out.partner, minlength=5)[1:5].float()
    assert (counts - 250).abs().max() < 60  # ~Binomial(996, ¼) + 1 each


def test_hardmix_without_hard_samples_falls_back_to_random_pairing(device):
    labels = (torch.arange(32) % 4).to(device)
    out = msda.Mixer("hardmix", num_classes=4, generator=make_generator(device))(
        torch.rand(32, 3, 8, 8, device=device), labels, logits=F.one_hot(labels, 4).float())
    assert out.details["pool_size"].item() == 0
    assert sorted(out.partner.tolist()) == list(range(32))  # a permutation
    assert (out.partner != torch.arange(32, device=device)).all()


def test_hardmix_loss_hardness_takes_the_top_fraction(device):
    labels = torch.zeros(20, dtype=torch.long, device=device)
    logits = torch.zeros(20, 3, device=device)
    logits[:, 0] = torch.linspace(5, -5, 20, device=device)  # loss grows with the index
    out = msda.Mixer("hardmix", num_classes=3, hardness="loss", top_frac=0.25,
                     generator=make_generator(device))(torch.rand(20, 3, 8, 8, device=device), labels, logits=logits)
    assert set(out.partner.tolist()) == set(range(15, 20))


def test_hardmix_masks_are_cutmix_boxes(device):
    labels = (torch.arange(8) % 4).to(device)
    out = msda.Mixer("hardmix", num_classes=4, generator=make_generator(device))(
        torch.rand(8, 3, 16, 16, device=device), labels, logits=logits_for(labels, torch.tensor([0]), 4))
    for mask in out.mask[:, 0]:
        hole = (mask == 0).nonzero()
        if len(hole):
            (y0, x0), (y1, x1) = hole.min(0).values, hole.max(0).values
            assert (mask[y0:y1 + 1, x0:x1 + 1] == 0).all()  # one solid rectangle
            assert (mask == 0).sum() == (y1 - y0 + 1) * (x1 - x0 + 1)


# ---------------------------------------------------------------- MiAMix

@pytest.fixture(scope="module")
def miamix_stats():
    g = torch.Generator().manual_seed(11)
    images = torch.rand(4000, 3, 16, 16, generator=g)
    labels = torch.arange(4000) % 10
    return msda.Mixer("miamix", num_classes=10, generator=g)(images, labels)


def test_miamix_self_mixing_rate(miamix_stats):
    d = miamix_stats.details
    rate = d["self_mix"].float().mean().item()
    assert abs(rate - 0.10) < 4 * math.sqrt(0.1 * 0.9 / 4000)
    own = torch.arange(4000)
    assert torch.equal(miamix_stats.partner[d["self_mix"]], own[d["self_mix"]])
    assert (miamix_stats.partner[~d["self_mix"]] != own[~d["self_mix"]]).all()


def test_miamix_layer_count_is_uniform(miamix_stats):
    counts = torch.bincount(miamix_stats.details["k"], minlength=3)[1:].float() / 4000
    assert torch.allclose(counts, torch.tensor([0.5, 0.5]), atol=0.03)


def test_miamix_method_frequencies_follow_the_weights(miamix_stats):
    d = miamix_stats.details
    drawn = d["layer_methods"][d["active"]]
    freq = torch.bincount(drawn, minlength=5).float() / drawn.numel()
    assert torch.allclose(freq, torch.tensor([2, 1, 1, 1, 1]) / 6, atol=0.02)


def test_miamix_layer_masks_cover_their_partner_share(miamix_stats):
    d = miamix_stats.details
    coverage = 1 - d["raw_masks"].mean((2, 3))
    wanted = d["layer_lams"][:, :2]
    gap = (coverage - wanted)[d["active"]]
    assert gap.abs().mean() < 0.02
    assert torch.allclose(d["layer_lams"].sum(1), torch.ones(4000), atol=1e-5)
    assert (d["layer_lams"][:, :2][~d["active"]] == 0).all()


def test_miamix_dirichlet_moments(miamix_stats):
    # (λ_1, λ_2, λ_3) ~ Dir(2, 2, 4) for k = 2: E = (¼, ¼, ½); for k = 1, (λ_1, λ_2) ~ Dir(2, 2): E = (½, ½).
    d = miamix_stats.details
    two = d["k"] == 2
    assert torch.allclose(d["layer_lams"][two].mean(0), torch.tensor([0.25, 0.25, 0.5]), atol=0.02)
    one = d["layer_lams"][~two]
    assert torch.allclose(one[:, [0, 2]].mean(0), torch.tensor([0.5, 0.5]), atol=0.02)


def test_miamix_augments_only_cutmix_fmix_gridmix(miamix_stats):
    d = miamix_stats.details
    augmented = d["rotated"] | d["smoothed"]
    names = torch.tensor([n in ("cutmix", "fmix", "gridmix") for n in d["methods"]])
    assert not augmented[~names[d["layer_methods"]]].any()
    eligible = names[d["layer_methods"]] & d["active"]
    assert abs(d["rotated"][eligible].float().mean().item() - 0.25) < 0.03
    assert abs(d["smoothed"][eligible].float().mean().item() - 0.5) < 0.03


def test_miamix_merges_by_product_and_labels_by_merged_area(miamix_stats):
    d = miamix_stats.details
    assert torch.allclose(miamix_stats.mask[:, 0], d["masks"].prod(1), atol=1e-6)
    assert torch.allclose(miamix_stats.lam, miamix_stats.mask.mean((1, 2, 3)), atol=1e-6)


def test_miamix_sum_merge_and_original_lambda(device):
    images = torch.rand(16, 3, 16, 16, device=device)
    labels = (torch.arange(16) % 4).to(device)
    out = msda.Mixer("miamix", num_classes=4, merge="sum", lam_mode="orig", k=2,
                     generator=make_generator(device))(images, labels)
    coverage = (1 - out.details["masks"]).sum(1).clamp(0, 1)
    assert torch.allclose(out.mask[:, 0], 1 - coverage, atol=1e-6)
    assert torch.allclose(out.lam, out.details["layer_lams"][:, 2])


def test_miamix_self_mix_uses_the_second_view(device):
    images = torch.rand(6, 3, 16, 16, device=device)
    view = torch.rand(6, 3, 16, 16, device=device)
    self_mix = torch.tensor([True, False, True, False, True, False], device=device)
    out = msda.Mixer("miamix", num_classes=3, self_mix=self_mix, generator=make_generator(device))(
        images, torch.arange(6, device=device) % 3, images_b=view)
    partner_images = torch.where(self_mix[:, None, None, None], view, images[out.partner])
    assert torch.allclose(out.images, out.mask * images + (1 - out.mask) * partner_images, atol=1e-6)
    assert torch.equal(out.partner[self_mix], torch.arange(6, device=device)[self_mix])


def test_miamix_without_self_mixing_is_a_masking_method(device):
    images = torch.rand(8, 3, 16, 16, device=device)
    out = msda.Mixer("miamix", num_classes=3, p_self=0.0, generator=make_generator(device))(
        images, torch.arange(8, device=device) % 3)
    assert torch.allclose(out.images, out.mask * images + (1 - out.mask) * images[out.partner], atol=1e-6)


def test_miamix_pinned_lambda_is_the_own_share(device):
    images = torch.rand(8, 3, 16, 16, device=device)
    out = msda.Mixer("miamix", num_classes=3, lam_mode="orig", generator=make_generator(device))(
        images, torch.arange(8, device=device) % 3, lam=0.7)
    assert torch.allclose(out.lam, torch.full((8,), 0.7, device=device))
    assert torch.allclose(out.details["layer_lams"][:, :2].sum(1), torch.full((8,), 0.3, device=device))


def test_miamix_smoothing_blurs_and_keeps_the_border(device):
    from msda.methods.miamix import smooth, smoothing_kernels

    mask = torch.ones(2, 1, 20, 20, device=device)
    mask[:, :, :, :10] = 0
    kernels = smoothing_kernels(torch.tensor([5.0, 1.0], device=device), "average", 7)
    out = smooth(mask, kernels)
    assert torch.equal(out[1], mask[1])  # a window of 1 is the identity
    assert torch.allclose(out[0, 0, :, 8:12], torch.tensor([0.2, 0.4, 0.6, 0.8], device=device).expand(20, 4))
    assert torch.allclose(out[0, 0, :, 0], torch.zeros(20, device=device))  # replicate padding, no leak


# ---------------------------------------------------------------- SaliencyMix

def test_saliency_peak_finds_the_odd_one_out(device):
    g = torch.Generator().manual_seed(0)
    images = torch.full((3, 3, 64, 64), 0.5) + 0.02 * torch.randn(3, 3, 64, 64, generator=g)
    spots = [(10, 50), (40, 12), (32, 32)]  # (x, y)
    for i, (x, y) in enumerate(spots):
        images[i, :, y - 3:y + 3, x - 3:x + 3] = 1.0
    cx, cy = saliency_peak(images.to(device), "spectral_residual")  # the fine-grained detector: test_saliency.py
    found = torch.stack([cx * 64, cy * 64], 1).cpu()
    assert (found - torch.tensor(spots, dtype=torch.float)).abs().max() <= 4


def test_saliencymix_box_is_centred_on_the_partners_peak(device):
    g = torch.Generator().manual_seed(1)
    images = (0.5 + 0.02 * torch.randn(2, 3, 64, 64, generator=g)).to(device)
    images[0, :, 8:14, 8:14] = 1.0
    images[1, :, 44:50, 40:46] = 1.0
    out = msda.Mixer("saliencymix", num_classes=2, saliency="spectral_residual", generator=make_generator(device))(
        images, torch.tensor([0, 1], device=device), lam=0.75)
    assert out.partner.tolist() == [1, 0]
    peaks = out.details["peak"] * 64
    assert (peaks[0] - torch.tensor([43.0, 47.0], device=device)).abs().max() <= 3
    assert (peaks[1] - torch.tensor([11.0, 11.0], device=device)).abs().max() <= 3
    boxes = msda.MASKS["cutmix"](torch.full((2,), 0.75, device=device), 64, 64,
                                 center_x=out.details["peak"][:, 0], center_y=out.details["peak"][:, 1])
    assert torch.equal(out.mask, boxes)
    assert (out.images[0, :, 44:50, 40:46] == 1.0).all()  # the salient patch travelled with its box


# ---------------------------------------------------------------- ResizeMix

def test_resizemix_pastes_the_whole_partner_shrunk(device):
    images = torch.zeros(2, 1, 40, 40, device=device)
    images[1, 0] = torch.linspace(0, 1, 40, device=device)[None, :]
    out = msda.Mixer("resizemix", num_classes=2, tau=0.5, offset_x=0.0, offset_y=1.0,
                     generator=make_generator(device))(images, torch.tensor([0, 1], device=device))
    patch = out.images[0, 0, 20:, :20]
    assert (out.mask[0, 0, 20:, :20] == 0).all() and out.lam[0] == 0.75
    assert torch.allclose(patch, patch[:1].expand_as(patch))  # rows: the gradient, shrunk
    assert patch[0, 0] < 0.05 and patch[0, -1] > 0.95  # it spans the partner's whole range
    assert torch.equal(out.images[0, 0, :20], images[0, 0, :20])


def test_resizemix_antialiases_strong_shrinking(device):
    stripes = (torch.arange(80, device=device) % 2).float().expand(80, 80)
    images = torch.stack([torch.zeros(80, 80, device=device), stripes])[:, None]
    out = msda.Mixer("resizemix", num_classes=2, tau=0.1, offset_x=0.5, offset_y=0.5,
                     generator=make_generator(device))(images, torch.tensor([0, 1], device=device))
    pasted = out.images[0, 0][out.mask[0, 0] == 0]
    assert torch.allclose(pasted, torch.full_like(pasted, 0.5), atol=0.05)  # averaged, not aliased


def test_miamix_reports_its_augmentation_draws(miamix_stats):
    d = miamix_stats.details
    assert d["rotation_deg"].abs().max() <= 45 and d["shear_deg"].abs().max() <= 20
    assert d["rotation_deg"].abs().max() > 40  # the whole range is used
    windows = d["window"]
    assert ((windows % 2) == 1).all()  # odd, so the filter stays centred
    assert set(windows.unique().tolist()) <= {1.0, 3.0}  # {5, 7, 11, 13} at 64 px, scaled to 16 px
