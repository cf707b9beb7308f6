"""The model-guided methods against their papers: PuzzleMix, SnapMix, Attentive CutMix, and msda.guidance."""

from __future__ import annotations

import itertools
import sys

import pytest
import torch
import torch.nn.functional as F

import msda
import msda.stats
from conftest import make_generator, needs_gco
from msda._graphcut import labelling_energy, labelling_problem, normalised_grid, solve_labelling
from msda.methods.attentive_cutmix import top_cells
from msda.methods.puzzlemix import move_blocks, transport_plan
from msda.methods.snapmix import semantic_percentage
from msda.models import Normalized, build_model


def images_and_labels(device, batch=6, size=32, seed=0, classes=4):
    g = torch.Generator().manual_seed(seed)
    # Smooth images (upsampled noise), so the local-statistics term is not all noise.
    images = F.interpolate(torch.rand(batch, 3, size // 4, size // 4, generator=g), size=size, mode="bilinear")
    return images.to(device), (torch.arange(batch) % classes).to(device)


# ---------------------------------------------------------------- PuzzleMix: the labelling

def random_problem(blocks, n_labels, seed, device, lam=None):
    g = torch.Generator().manual_seed(seed)
    batch = 8
    own = torch.rand(batch, blocks, blocks, generator=g) ** 3
    own = own / own.flatten(1).sum(1)[:, None, None]
    partner = own.roll(1, 0)
    images = torch.rand(batch, 3, 4 * blocks, 4 * blocks, generator=g)
    lam = torch.rand(batch, generator=g) if lam is None else torch.full((batch,), lam)
    return labelling_problem(own.to(device), partner.to(device), images.to(device), images.roll(1, 0).to(device),
                             lam.to(device), blocks=blocks, n_labels=n_labels, beta=1.2, gamma=0.5, eta=0.2,
                             neigh_size=2)


def brute_force_minimum(unary, edge_v, edge_h):
    """[B] the least energy over every labelling of the grid (small grids only)."""
    batch, blocks, _, n_labels = unary.shape
    every = torch.tensor(list(itertools.product(range(n_labels), repeat=blocks * blocks)), device=unary.device)
    every = every.reshape(-1, blocks, blocks)
    energies = torch.stack([labelling_energy(every, unary[b].expand(len(every), -1, -1, -1),
                                             edge_v[b].expand(len(every), -1, -1),
                                             edge_h[b].expand(len(every), -1, -1)) for b in range(batch)])
    return energies.min(1).values


@needs_gco
@pytest.mark.parametrize("blocks", [2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_two_label_cut_is_the_exact_minimum_of_the_papers_objective(blocks, seed, device):
    unary, edge_v, edge_h = random_problem(blocks, 2, seed, device)
    found = labelling_energy(solve_labelling(unary, edge_v, edge_h), unary, edge_v, edge_h)
    best = brute_force_minimum(unary, edge_v, edge_h)
    # Exact up to the solver's integer costs (1/(1000·n²) of a unit per term).
    assert torch.all(found <= best + 2 * blocks * blocks / (1000.0 * blocks ** 2) + 1e-9)


@needs_gco
@pytest.mark.parametrize("seed", range(4))
def test_three_label_swap_reaches_a_local_minimum_and_is_near_the_global_one(seed, device):
    unary, edge_v, edge_h = random_problem(2, 3, seed, device)
    labels = solve_labelling(unary, edge_v, edge_h)
    found = labelling_energy(labels, unary, edge_v, edge_h)
    tolerance = 4 / 4000.0 + 1e-9
    for r, c, new in itertools.product(range(2), range(2), range(3)):  # no single block's change helps
        moved = labels.clone()
        moved[:, r, c] = new
        assert torch.all(found <= labelling_energy(moved, unary, edge_v, edge_h) + tolerance)
    best = brute_force_minimum(unary, edge_v, edge_h)
    assert (found <= best + tolerance).float().mean() >= 0.75  # swap moves find the optimum on most 2×2 cases


@needs_gco
def test_the_prior_forbids_the_other_image_at_lambda_0_and_1(device):
    for lam, label in ((1.0, 0), (0.0, 1)):
        unary, edge_v, edge_h = random_problem(4, 2, 0, device, lam=lam)
        assert torch.all(solve_labelling(unary, edge_v, edge_h) == label)


@needs_gco
def test_the_mask_is_the_solved_labelling_upsampled(device):
    images, labels = images_and_labels(device)
    saliency = torch.rand(6, 32, 32, generator=torch.Generator().manual_seed(1)).to(device)
    out = msda.Mixer("puzzlemix", num_classes=4, generator=make_generator(device), block_num=4, transport=False,
                     n_labels=2)(images, labels, saliency=saliency)
    grid = normalised_grid(saliency, 4)
    unary, edge_v, edge_h = labelling_problem(grid, grid[out.partner], images, images[out.partner],
                                              out.lam_requested, blocks=4, n_labels=2, beta=1.2, gamma=0.5,
                                              eta=0.2, neigh_size=4)
    expected = 1.0 - solve_labelling(unary, edge_v, edge_h).float()
    assert torch.equal(out.params["labelling"], expected)
    assert torch.equal(out.mask, expected.repeat_interleave(8, 1).repeat_interleave(8, 2)[:, None])
    assert torch.allclose(out.images, out.mask * images + (1 - out.mask) * images[out.partner])
    assert torch.allclose(out.lam, out.mask.mean((1, 2, 3)))


@needs_gco
def test_saliency_decides_where_each_image_shows(device):
    # Own saliency all in the left half, the partner's all in the right half: the cut keeps both.
    images, labels = images_and_labels(device, batch=2)
    saliency = torch.zeros(2, 32, 32, device=device)
    saliency[0, :, :16] = 1
    saliency[1, :, 16:] = 1
    out = msda.Mixer("puzzlemix", num_classes=4, generator=make_generator(device), block_num=4, transport=False,
                     n_labels=2)(images, labels, lam=0.5, saliency=saliency)
    assert torch.equal(out.partner, torch.tensor([1, 0], device=device))
    assert torch.all(out.mask[0, 0, :, :16] == 1) and torch.all(out.mask[0, 0, :, 16:] == 0)


# ---------------------------------------------------------------- PuzzleMix: the transport

def test_transport_plans_are_permutations_that_move_salient_blocks_into_view(device):
    g = torch.Generator().manual_seed(0)
    visible = torch.rand(16, 8, 8, generator=g) > 0.5
    saliency = torch.rand(16, 8, 8, generator=g) ** 4
    saliency = saliency / saliency.flatten(1).sum(1)[:, None, None]
    plan = transport_plan(visible.to(device), saliency.to(device), eps=0.8, iterations=8)
    assert torch.equal(plan.sort(1).values, torch.arange(64, device=device).expand(16, 64))
    kept_before = (saliency.flatten(1) * visible.flatten(1)).sum(1)
    kept_after = (saliency.flatten(1).to(device).gather(1, plan) * visible.flatten(1).to(device)).sum(1)
    assert torch.all(kept_after >= kept_before.to(device) - 1e-6)
    assert (kept_after > kept_before.to(device) + 1e-3).float().mean() > 0.5
    none = transport_plan(visible.to(device), saliency.to(device), eps=0.8, iterations=0)
    assert torch.equal(none, torch.arange(64, device=device).expand(16, 64))


def test_moving_blocks_conserves_them(device):
    images = torch.rand(3, 2, 32, 32, device=device)
    plan = torch.stack([torch.randperm(64, generator=torch.Generator().manual_seed(s)) for s in range(3)]).to(device)
    moved = move_blocks(images, plan, 8)
    blocks = images.unfold(2, 4, 4).unfold(3, 4, 4).reshape(3, 2, 64, 4, 4)
    moved_blocks = moved.unfold(2, 4, 4).unfold(3, 4, 4).reshape(3, 2, 64, 4, 4)
    assert torch.equal(moved_blocks, blocks.gather(2, plan[:, None, :, None, None].expand_as(blocks)))
    assert torch.equal(moved.flatten(1).sort(1).values, images.flatten(1).sort(1).values)


@needs_gco
def test_transport_shows_every_block_of_both_images_once(device):
    images, labels = images_and_labels(device)
    saliency = torch.rand(6, 32, 32, generator=torch.Generator().manual_seed(2)).to(device)
    out = msda.Mixer("puzzlemix", num_classes=4, generator=make_generator(device), block_num=4)(
        images, labels, saliency=saliency)
    side = out.details["transport_side"]
    for name, source in (("plan_own", images), ("plan_partner", images[out.partner])):
        plan = out.params[name]
        assert torch.equal(plan.sort(1).values, torch.arange(side * side, device=device).expand_as(plan))
    own = move_blocks(images, out.params["plan_own"], side)
    partner = move_blocks(images[out.partner], out.params["plan_partner"], side)
    assert torch.allclose(out.images, out.mask * own + (1 - out.mask) * partner, atol=1e-6)


@needs_gco
def test_puzzlemix_replays_without_the_model_and_refuses_a_mismatched_labelling(device):
    images, labels = images_and_labels(device)
    saliency = torch.rand(6, 32, 32, generator=torch.Generator().manual_seed(3)).to(device)
    mixer = msda.Mixer("puzzlemix", num_classes=4, generator=make_generator(device))
    out = mixer(images, labels, saliency=saliency)
    replay = {k: v for k, v in out.params.items() if k != "saliency"}  # labelling and plans suffice
    again = msda.Mixer("puzzlemix", num_classes=4, generator=make_generator(device, 5))(images, labels, params=replay)
    assert torch.equal(again.images, out.images) and torch.equal(again.targets, out.targets)
    bad = dict(replay, labelling=out.params["labelling"][:, :1])
    with pytest.raises(ValueError, match="puzzlemix: labelling must be a"):
        mixer(images, labels, params=bad)


# ---------------------------------------------------------------- SnapMix

def test_snapmix_label_weights_are_the_cam_mass_of_the_boxes(device):
    images, labels = images_and_labels(device, batch=8)
    g = torch.Generator().manual_seed(4)
    cams = torch.rand(8, 7, 7, generator=g).to(device)
    out = msda.Mixer("snapmix", num_classes=4, generator=make_generator(device))(images, labels, cams=cams)
    percentage = semantic_percentage(cams, 32, 32)
    for b in range(8):
        x0, y0, x1, y1 = out.details["box_own"][b].long().tolist()
        px0, py0, px1, py1 = out.details["box_partner"][b].long().tolist()
        pasted = (x1 > x0 and y1 > y0) and (px1 > px0 and py1 > py0)
        rho_own = 1 - percentage[b, y0:y1, x0:x1].sum().item() if pasted else 1.0
        rho_partner = percentage[out.partner[b], py0:py1, px0:px1].sum().item() if pasted else 0.0
        assert out.details["rho_own"][b].item() == pytest.approx(rho_own, abs=1e-5)
        assert out.details["rho_partner"][b].item() == pytest.approx(rho_partner, abs=1e-5)
        if labels[b] != labels[out.partner[b]]:
            assert out.lam[b].item() == pytest.approx(rho_own / (rho_own + rho_partner), abs=1e-5)
    # The weights need not sum to 1: the paper's loss is the soft label's times their sum.
    assert not torch.allclose(out.details["label_mass"], torch.ones(8, device=device), atol=1e-3)


def test_snapmix_pastes_the_partner_box_resized_into_the_own_box(device):
    images, labels = images_and_labels(device, batch=4)
    out = msda.Mixer("snapmix", num_classes=4, generator=make_generator(device))(
        images, labels, lam=0.6, cams=torch.ones(4, 4, 4, device=device))
    for b in range(4):
        x0, y0, x1, y1 = out.details["box_own"][b].long().tolist()
        px0, py0, px1, py1 = out.details["box_partner"][b].long().tolist()
        if x1 <= x0 or y1 <= y0 or px1 <= px0 or py1 <= py0:
            continue
        crop = images[out.partner[b], :, py0:py1, px0:px1][None]
        expected = F.interpolate(crop, size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=True)[0]
        assert torch.allclose(out.images[b, :, y0:y1, x0:x1], expected, atol=1e-5)
        outside = out.mask[b, 0].bool()
        assert torch.equal(out.images[b][:, outside], images[b][:, outside])


def test_snapmix_same_class_keeps_the_class_and_a_flat_cam_keeps_the_own_label(device):
    images = torch.rand(4, 3, 16, 16, device=device)
    same = torch.zeros(4, dtype=torch.long, device=device)
    out = msda.Mixer("snapmix", num_classes=3, generator=make_generator(device))(
        images, same, cams=torch.rand(4, 4, 4, device=device))
    assert torch.equal(out.targets, F.one_hot(same, 3).float())
    labels = torch.arange(4, device=device) % 3
    flat = msda.Mixer("snapmix", num_classes=3, generator=make_generator(device))(
        images, labels, cams=torch.ones(4, 4, 4, device=device))
    assert torch.equal(flat.details["rho_partner"], torch.zeros(4, device=device))


# ---------------------------------------------------------------- Attentive CutMix

def test_attentive_cutmix_pastes_the_partners_top_k_cells(device):
    images, labels = images_and_labels(device, batch=8, size=28)
    cams = torch.rand(8, 14, 14, generator=torch.Generator().manual_seed(5)).to(device)
    out = msda.Mixer("attentive_cutmix", num_classes=4, generator=make_generator(device))(images, labels, cams=cams)
    pooled = F.avg_pool2d(cams[:, None], 2)[:, 0]  # 14 → 7: the paper's 7 × 7 grid
    for b in range(8):
        partner_cells = pooled[out.partner[b]].flatten()
        top = set(partner_cells.topk(6).indices.tolist())
        pasted = (out.mask[b, 0, 2::4, 2::4] == 0).flatten().nonzero().flatten().tolist()
        assert set(pasted) == top
    assert torch.allclose(out.lam, torch.full((8,), 1 - 6 / 49, device=device))
    assert torch.allclose(out.images, out.mask * images + (1 - out.mask) * images[out.partner])


def test_top_cells_breaks_ties_by_the_lower_index(device):
    cells = top_cells(torch.ones(1, 4, 4, device=device), 4, torch.tensor([3], device=device))
    assert cells.flatten().nonzero().flatten().tolist() == [0, 1, 2]


# ---------------------------------------------------------------- msda.guidance

def small_model(device):
    torch.manual_seed(0)
    net = build_model("resnet20", num_classes=4)
    return Normalized(net, [0.5] * 3, [0.25] * 3).to(device).eval()


def test_input_gradient_saliency_is_the_channel_norm_of_the_loss_gradient(device):
    model = small_model(device)
    images, labels = images_and_labels(device, batch=3)
    saliency = msda.guidance.input_gradient_saliency(model, images, labels)
    assert all(p.grad is None for p in model.parameters()), "no parameter gradients"
    inputs = images.clone().requires_grad_(True)
    F.cross_entropy(model(inputs), labels, reduction="sum").backward()
    assert torch.allclose(saliency, inputs.grad.norm(dim=1), atol=1e-6)


def test_class_activation_maps_average_to_the_logit(device):
    model = small_model(device)
    images, labels = images_and_labels(device, batch=3)
    cams = msda.guidance.class_activation_maps(model, images, labels)
    assert cams.shape == (3, 8, 8) and cams.min() >= 0 and torch.allclose(cams.flatten(1).min(1).values,
                                                                             torch.zeros(3, device=device))
    net = model.net
    features = net.layer3(net.layer2(net.layer1(net.relu(net.bn1(net.conv1((images - model.mean) / model.std))))))
    raw = torch.einsum("bc,bchw->bhw", net.fc.weight[labels], features) + net.fc.bias[labels, None, None]
    assert torch.allclose(cams, raw - raw.flatten(1).min(1).values[:, None, None], atol=1e-4)
    assert torch.allclose(raw.mean((1, 2)), model(images).gather(1, labels[:, None])[:, 0], atol=1e-4)


def test_class_activation_maps_refuse_a_model_without_pooling_and_linear(device):
    images, labels = images_and_labels(device, batch=2, size=8)
    flat = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).to(device)
    with pytest.raises(ValueError, match="global average pooling and one linear layer"):
        msda.guidance.class_activation_maps(flat, images, labels)
    max_head = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3), torch.nn.ReLU(), torch.nn.AdaptiveMaxPool2d(1),
                                   torch.nn.Flatten(), torch.nn.Linear(5, 4)).to(device)
    with pytest.raises(ValueError, match="not a linear layer applied to the global average"):
        msda.guidance.class_activation_maps(max_head, images, labels)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("method, need, helper", [
    ("puzzlemix", "saliency", r"msda\.guidance\.input_gradient_saliency\(model, images, labels\) of shape \[4, 16, 16\]"),
    ("snapmix", "cams", r"msda\.guidance\.class_activation_maps\(model, images, labels\) of shape \[4, h, w\]"),
    ("attentive_cutmix", "cams", r"msda\.guidance\.class_activation_maps"),
])
def test_a_call_without_guidance_names_what_to_pass(method, need, helper):
    with pytest.raises(ValueError, match=rf"{method} needs {need}: pass {need}={helper}"):
        msda.Mixer(method, num_classes=3)(torch.rand(4, 3, 16, 16), torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize("name, value, message", [
    ("saliency", torch.rand(4, 16, 8), r"saliency must be a tensor of shape \[4, 16, 16\]"),
    ("saliency", torch.rand(4, 1, 16, 16), r"saliency must be a tensor of shape \[4, 16, 16\]"),
    ("saliency", torch.ones(4, 16, 16, dtype=torch.long), "saliency must be floating point"),
    ("saliency", torch.full((4, 16, 16), float("nan")), "saliency must be finite"),
    ("saliency", -torch.rand(4, 16, 16), "saliency must be non-negative, got a minimum of -"),
    ("cams", torch.rand(3, 7, 7), r"cams must be a tensor of shape \[4, h, w\]"),
    ("cams", torch.rand(4, 7), r"cams must be a tensor of shape \[4, h, w\]"),
    ("cams", torch.tensor(float("inf")).expand(4, 7, 7), "cams must be finite"),
    ("cams", torch.rand(4, 7, 7) - 2, "cams must be non-negative"),
    ("cams", torch.rand(4, 7, 7, device="meta"), "cams is on meta but images are on cpu"),
])
def test_bad_guidance_is_refused_naming_it(name, value, message):
    method = "puzzlemix" if name == "saliency" else "snapmix"
    with pytest.raises(ValueError, match=message):
        msda.Mixer(method, num_classes=3)(torch.rand(4, 3, 16, 16), torch.zeros(4, dtype=torch.long),
                                          **{name: value})


def test_attentive_grid_and_k_out_of_range_are_refused():
    images, labels, cams = torch.rand(2, 3, 8, 8), torch.zeros(2, dtype=torch.long), torch.rand(2, 4, 4)
    with pytest.raises(ValueError, match="grid must be at most the image's shorter side 8, got 9"):
        msda.Mixer("attentive_cutmix", num_classes=2, grid=9)(images, labels, cams=cams)
    with pytest.raises(ValueError, match=r"top_k must be at most grid² = 16"):
        msda.Mixer("attentive_cutmix", num_classes=2, grid=4, top_k=17)(images, labels, cams=cams)
    with pytest.raises(ValueError, match="attentive_cutmix: top_k must be"):
        msda.Mixer("attentive_cutmix", num_classes=2, top_k=-1)


def test_puzzlemix_grid_larger_than_the_image_is_refused():
    with pytest.raises(ValueError, match="block_num must be at most the image side 8, got 16"):
        msda.Mixer("puzzlemix", num_classes=2, block_num=16)(torch.rand(2, 3, 8, 8), torch.zeros(2, dtype=torch.long),
                                                             saliency=torch.rand(2, 8, 8))


def test_a_missing_gco_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "gco", None)
    with pytest.raises(ImportError, match="pip install gco-wrapper") as caught:
        msda.Mixer("puzzlemix", num_classes=2, transport=False)(
            torch.rand(2, 3, 8, 8), torch.zeros(2, dtype=torch.long), saliency=torch.rand(2, 8, 8))
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------- invisible labels (msda.data.shapes_report)

def test_snapmix_partner_visibility_is_its_object_inside_the_cut_box():
    from msda.data.shapes_report import _visibility

    images, labels = images_and_labels(torch.device("cpu"), batch=4, size=16)
    objects = torch.zeros(4, 1, 16, 16)
    objects[:, :, 4:12, 4:12] = 1
    out = msda.Mixer("snapmix", num_classes=4, generator=make_generator(torch.device("cpu")))(
        images, labels, lam=0.5, cams=torch.rand(4, 4, 4))
    seen = _visibility("snapmix", out, objects)["partner_visibility"]
    for b in range(4):
        x0, y0, x1, y1 = out.details["box_partner"][b].long().tolist()
        expected = objects[out.partner[b], 0, y0:y1, x0:x1].sum() / 64 if (out.mask[b] < 1).any() else 0.0
        assert seen[b].item() == pytest.approx(float(expected))


@needs_gco
def test_puzzlemix_visibility_follows_the_transported_objects():
    from msda.data.shapes_report import _visibility

    images, labels = images_and_labels(torch.device("cpu"), batch=4)
    objects = (torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    out = msda.Mixer("puzzlemix", num_classes=4, generator=make_generator(torch.device("cpu")))(
        images, labels, saliency=torch.rand(4, 32, 32))
    identity = dict(out.params, plan_own=torch.arange(out.params["plan_own"].shape[1]).expand(4, -1).contiguous(),
                    plan_partner=torch.arange(out.params["plan_own"].shape[1]).expand(4, -1).contiguous())
    still = msda.Mixer("puzzlemix", num_classes=4)(images, labels, params=identity)
    moved = _visibility("puzzlemix", still, objects)
    own, partner = msda.stats.object_visibility(still.mask, objects, still.partner)
    assert torch.allclose(moved["own_visibility"], own) and torch.allclose(moved["partner_visibility"], partner)
