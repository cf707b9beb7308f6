"""The app's helpers without a page: mixing views, pictures, figure specs (validated by plotly), parameter ranges
and the code snippets."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

import msda
from app.lib import export, figures, pictures, priors
from app.lib.mixing import HARDMIX_LOGITS, mix_view
from app.lib.params import initial_value, sampled_range, slider_bounds

SIZE = 32


@pytest.fixture(scope="module")
def pair() -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, SIZE, SIZE, generator=generator)


@pytest.mark.parametrize("method", msda.METHODS)
def test_mix_view_shows_sample_a(pair, method):
    view = mix_view(method, pair, lam=0.6, alpha=1.0, seed=0, params={})
    assert view.mixed.shape == (SIZE, SIZE, 3) and view.mixed.dtype == np.uint8
    assert view.mask.shape == (SIZE, SIZE) and 0.0 <= view.mask.min() <= view.mask.max() <= 1.0
    assert view.mixed_uri.startswith("data:image/jpeg;base64,")
    np.testing.assert_array_equal(pictures.decode_uri(view.mask_uri), pictures.mask_rgb(view.mask))
    assert sum(view.label) == pytest.approx(1.0, abs=1e-5)
    assert view.area == pytest.approx(float(view.mask.mean()), abs=1e-5)
    info = msda.methods_info()[method]
    if info.mask_only and view.partner == 1:  # x̃ = mask·A + (1 − mask)·B, up to 8-bit rounding
        expected = view.mask[..., None] * pair[0].permute(1, 2, 0).numpy() + (1 - view.mask[..., None]) * pair[
            1].permute(1, 2, 0).numpy()
        assert np.abs(view.mixed / 255.0 - expected).max() <= 0.5 / 255 + 1e-6
    if info.mixes_labels and view.partner == 1:
        assert view.label[0] == pytest.approx(view.lam, abs=1e-5)


def test_hardmix_takes_its_patch_from_the_misclassified_image(pair):
    view = mix_view("hardmix", pair, lam=0.6, alpha=1.0, seed=0, params={})
    assert torch.tensor(HARDMIX_LOGITS).argmax(1).tolist() == [0, 0]  # B (label 1) counts as misclassified
    assert view.partner == 1 and view.stages["hard"] is False and view.stages["pool_size"] == 1


def test_miamix_stages_are_those_of_sample_a(pair):
    view = mix_view("miamix", pair, lam=0.6, alpha=2.0, seed=0, params={"k_max": 3, "k": 3})
    stages = view.stages
    assert stages["k"] == 3 and stages["raw_masks"].shape == (3, SIZE, SIZE)
    assert stages["layer_lams"].shape == (4,) and stages["layer_lams"][-1] == pytest.approx(0.6)
    np.testing.assert_allclose(stages["merged"][0], view.mask)


def test_the_same_seed_gives_the_same_view(pair):
    first = mix_view("agmix", pair, lam=0.4, alpha=1.0, seed=5, params={})
    again = mix_view("agmix", pair, lam=0.4, alpha=1.0, seed=5, params={})
    other = mix_view("agmix", pair, lam=0.4, alpha=1.0, seed=6, params={})
    np.testing.assert_array_equal(first.mask, again.mask)
    assert not np.array_equal(first.mask, other.mask)


def validate(spec: dict) -> None:
    """plotly's own validation of a spec the app draws without it."""
    go.Figure(spec)


def test_figure_specs_pass_plotly_validation(pair):
    validate(priors.beta_prior_spec(0.5, 0.6))
    validate(priors.beta_prior_spec(2.0, None))
    validate(priors.dirichlet_prior_spec(2.0, 2, [0.2, 0.3], 0.5, own_pinned=True))
    uri = pictures.mask_png_uri(np.zeros((4, 4), np.float32))
    validate(figures.sweep_spec([uri, uri], [uri, uri], ["0", "1"], ["λ = 0", "λ = 1"], 1, slider_title="λ"))
    assert figures.figure(priors.beta_prior_spec(1.0, None)).layout.template.layout.to_plotly_json() == {}


def test_masks_travel_as_cividis_palette_pngs():
    mask = np.array([[0.0, 0.5], [0.999, 1.0]], dtype=np.float32)
    rgb = pictures.decode_uri(pictures.mask_png_uri(mask))
    assert rgb[0, 0].tolist() == [0, 34, 78] and rgb[1, 1].tolist() == [254, 232, 56]


def test_slider_ranges_come_from_the_parameter_info():
    agmix = msda.methods_info()["agmix"]
    assert sampled_range(agmix.param("q")) == pytest.approx((-0.95, 0.95))
    assert sampled_range(agmix.param("theta")) == pytest.approx((-np.pi, np.pi))
    assert sampled_range(msda.methods_info()["gridmix"].param("n_holes")) == (2, 6)
    assert sampled_range(msda.methods_info()["miamix"].param("k")) is None  # U{1, …, k_max}: no fixed support
    low, high, step = slider_bounds(agmix.param("q"))  # an open interval (−1, 1) stays open
    assert (low, high, step) == pytest.approx((-0.99, 0.99, 0.01))
    assert initial_value(agmix.param("q"), low, high) == pytest.approx(0.0, abs=1e-6)
    assert initial_value(msda.methods_info()["fmix"].param("decay"), 0.0, 8.0) == 3.0


def test_snippet_states_the_settings():
    code = export.reproduce_snippet("fmix", params={"decay": 2.5, "max_soft": 0.1}, alpha=1.0, seed=7, lam=0.6,
                                    photos=("astronaut", "chelsea"), size=224, class_names=("cat", "dog"),
                                    needs_logits=False)
    assert "mixer = msda.Mixer('fmix', num_classes=2, alpha=1.0, generator=g, decay=2.5, max_soft=0.1)" in code
    assert "g = torch.Generator().manual_seed(7)" in code and "out = mixer(images, labels, lam=0.6)" in code
    assert "photo('astronaut', 224), photo('chelsea', 224)" in code
    hard = export.reproduce_snippet("hardmix", params={}, alpha=1.0, seed=0, lam=None, photos=(None, "chelsea"),
                                    size=32, class_names=("a", "b"), needs_logits=True)
    assert "out = mixer(images, labels, logits=torch.tensor([[4.0, 0.0], [4.0, 0.0]]))" in hard
    assert "msda_pair_32.png" in hard and "skimage" not in hard
    compile(hard, "snippet", "exec")
    loop = export.training_snippet("hardmix", params={}, alpha=1.0, needs_logits=True)
    assert "mixer(images, labels, logits=model(images))" in loop


def test_png_exports_decode():
    from io import BytesIO

    from PIL import Image

    mask = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    grey = np.asarray(Image.open(BytesIO(export.mask_png(mask))))
    assert grey.dtype == np.uint8 and grey[0, 0] == 0 and grey[-1, -1] == 255
    rgb = np.asarray(Image.open(BytesIO(export.mixed_png(np.full((4, 4, 3), 7, np.uint8)))))
    assert rgb.shape == (4, 4, 3) and (rgb == 7).all()
