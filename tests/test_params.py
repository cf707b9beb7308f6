"""MixOutput.params and details: what a mix drew, what it derived, and what replaying them gives."""

import pytest
import torch

import msda


def batch(n=6, size=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=g), torch.arange(n) % 3


@pytest.mark.parametrize("method", ["gmix", "agmix"])
def test_a_solved_sigma_is_reported_and_pinning_it_redraws_the_same_blob(method):
    images, labels = batch()
    out = msda.Mixer(method, num_classes=3, generator=torch.Generator().manual_seed(1))(images, labels)
    sigma = out.details["sigma"]
    assert sigma.shape == (6,) and bool((sigma > 0).all())
    keep = {k: v for k, v in out.params.items() if k in ("center_x", "center_y", "q", "theta")}
    pinned = msda.MASKS[method](out.params["lam"], 24, 24, sigma=sigma, **keep)
    assert torch.allclose(pinned, out.mask, atol=1e-5)


def test_gridmix_reports_the_grid_it_used():
    images, labels = batch()
    out = msda.Mixer("gridmix", num_classes=3, generator=torch.Generator().manual_seed(2))(
        images, labels, lam=torch.full((6,), 0.05))
    assert bool((out.details["grid"] <= out.params["n_holes"]).all())
    assert bool((out.details["hole_fraction"] <= 15 / 16).all())


def test_a_replay_can_change_one_draw_and_keep_the_others():
    images, labels = batch()
    out = msda.Mixer("cutmix", num_classes=3, generator=torch.Generator().manual_seed(3))(images, labels)
    moved = dict(out.params, center_x=torch.zeros(6))
    again = msda.Mixer("cutmix", num_classes=3)(images, labels, params=moved)
    assert torch.equal(again.params["center_y"], out.params["center_y"])
    assert not torch.equal(again.mask, out.mask)


def test_miamix_params_name_each_layers_draws_and_their_samples():
    images, labels = batch(n=16, size=32)
    out = msda.Mixer("miamix", num_classes=3, generator=torch.Generator().manual_seed(4))(images, labels)
    layers = out.params["layers"]
    assert len(layers) == out.params["layer_methods"].shape[1]
    names = out.params["methods"]
    for j, layer in enumerate(layers):
        for name, draws in layer.items():
            rows = draws["rows"]
            index = names.index(name)
            assert bool((out.params["layer_methods"][rows, j] == index).all())


def test_hardmix_replays_without_logits():
    images, labels = batch()
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(5))
    mixer = msda.Mixer("hardmix", num_classes=3, generator=torch.Generator().manual_seed(5))
    out = mixer(images, labels, logits=logits)
    assert torch.equal(out.params["hard"], logits.argmax(1) != labels)
    assert torch.equal(mixer(images, labels, params=out.params).images, out.images)
    with pytest.raises(ValueError, match="needs logits"):
        mixer(images, labels)
