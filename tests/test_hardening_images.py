"""Regression tests for issue 13, W3 and the cam dtype message: analysis.corrupt and analysis.cam refuse
NaN, infinite and out-of-range images at the boundary with a ValueError naming ``images``, instead of NaN
spreading over whole images, a Poisson error deep in torch, or a raw dtype error."""

from __future__ import annotations

import pytest
import torch

from analysis import cam, corrupt
from msda.models import Normalized, build_model


def images_with(value: float) -> torch.Tensor:
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    images[1, 0, 5, 7] = value
    return images


@pytest.mark.parametrize("name", ["defocus_blur", "motion_blur", "fog", "contrast", "shot_noise",
                                  "jpeg_compression", "gaussian_noise"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -0.5, 1.5])
def test_W3_corrupt_refuses_images_outside_the_unit_interval(name, value):
    with pytest.raises(ValueError, match=r"images must hold finite values in \[0, 1\], got a value of"):
        corrupt(images_with(value), name, 3, generator=torch.Generator().manual_seed(0))


def test_W3_corrupt_still_takes_the_interval_ends():
    images = images_with(0.0)
    images[0, 1, 2, 3] = 1.0
    out = corrupt(images, "shot_noise", 5, generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)  # fixture weights only
    return Normalized(build_model("resnet20", 3), [0.5] * 3, [0.25] * 3).eval()


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_W3_cam_refuses_non_finite_images(model, value):
    with pytest.raises(ValueError, match=r"images must hold finite values, got (nan|inf)"):
        cam(model, images_with(value))


def test_cam_on_float64_images_names_the_dtype(model):
    with pytest.raises(ValueError, match=r"images must have the model's dtype torch.float32, got torch.float64"):
        cam(model, images_with(0.5).double())
