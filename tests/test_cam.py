"""analysis.cam: shape/range/device, known-region localisation, one target per image, hooks and state restored."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from analysis import CAM_METHODS, cam
from msda.models import Normalized, build_model

SIZE = 16


class RegionMask(nn.Module):
    """Multiplies feature maps by a fixed 0/1 region: nothing outside it reaches the classifier."""

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features * self.mask


class RegionNet(nn.Module):
    """Logits depend only on the pixels of one region (the top-left quadrant by default).

    Positive conv weights and bias keep the features > 0; every class has positive classifier weights, so every
    class's Grad-CAM is positive on the region and exactly 0 elsewhere (the CAM layer ``layer1`` is full
    resolution, so no upsampling blurs it). Class 0 weighs the features most, so darkening the region lowers
    p(class 0).
    """

    def __init__(self, size: int = SIZE, rows=None, cols=None) -> None:
        super().__init__()
        rows, cols = rows or (0, size // 2), cols or (0, size // 2)
        mask = torch.zeros(1, 1, size, size)
        mask[..., rows[0]:rows[1], cols[0]:cols[1]] = 1.0
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.layer1 = RegionMask(mask)
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            self.conv.weight.copy_(torch.linspace(0.02, 0.1, self.conv.weight.numel()).view_as(self.conv.weight))
            self.conv.bias.fill_(0.05)
            self.fc.weight.copy_(torch.tensor([[4.0, 4.0, 4.0, 4.0], [2.0, 1.0, 0.5, 0.0], [0.0, 0.5, 1.0, 2.0]]))
            self.fc.bias.copy_(torch.tensor([0.0, 0.5, 0.5]))

    @property
    def region(self) -> torch.Tensor:
        return self.layer1.mask[0, 0].bool()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.layer1(torch.relu(self.conv(images))).mean((2, 3)))


def _images(device, batch=3, size=SIZE, seed=0) -> torch.Tensor:
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed)).to(device)


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)  # test fixture: any weights do
    return Normalized(build_model("resnet20", 4), [0.5] * 3, [0.25] * 3).eval()


@pytest.mark.parametrize("method", list(CAM_METHODS))
def test_every_method_gives_maps_in_unit_range_on_the_images_device(method, resnet, device):
    model = resnet.to(device)
    images = _images(device, batch=2)
    maps = cam(model, images, method=method)
    assert maps.shape == (2, SIZE, SIZE) and maps.device.type == device.type and maps.dtype == images.dtype
    assert bool(torch.isfinite(maps).all()) and float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "scorecam"])
def test_cam_of_a_region_model_lies_in_that_region(method, device):
    model = RegionNet().to(device)
    maps = cam(model, _images(device), method=method, targets=0)
    inside = maps[:, model.region].sum(1) / maps.flatten(1).sum(1)
    assert bool((inside > 0.99).all()), inside


def test_one_target_per_image_gives_every_image_a_map(device):
    # Regression: the package sums target(output) over zip(targets, outputs), so a single target for a batch
    # leaves every image but the first with a zero CAM.
    model = RegionNet().to(device)
    images = _images(device, batch=3)
    for targets in ([0, 1, 2], torch.tensor([0, 1, 2], device=device), 1, None):
        maps = cam(model, images, targets=targets)
        assert bool((maps.flatten(1).amax(1) > 0.99).all()), targets


def test_batched_maps_equal_single_image_maps(resnet, device):
    model = resnet.to(device)
    images = _images(device, batch=3, seed=3)
    targets = torch.tensor([2, 0, 3], device=device)
    batched = cam(model, images, targets=targets)
    for i in range(3):
        torch.testing.assert_close(batched[i], cam(model, images[i:i + 1], targets=targets[i:i + 1])[0],
                                   atol=1e-4, rtol=1e-4)


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules())


def test_hooks_mode_requires_grad_and_grads_are_restored(device):
    model = RegionNet().to(device).train()
    model.conv.bias.requires_grad_(False)
    model.fc.weight.grad = marker = torch.ones_like(model.fc.weight)
    before = _hook_count(model)
    cam(model, _images(device), targets=[0, 1, 2])
    assert _hook_count(model) == before == 0
    assert model.training and all(m.training for m in model.modules())
    assert model.conv.weight.requires_grad and not model.conv.bias.requires_grad and model.fc.weight.requires_grad
    assert model.fc.weight.grad is marker and model.conv.weight.grad is None


def test_state_is_restored_when_the_cam_fails(device):
    model = RegionNet().to(device).train()
    with pytest.raises(ValueError, match=r"targets must be class indices in \[0, 3\).*got 7"):
        cam(model, _images(device), targets=[0, 7, 1])
    assert _hook_count(model) == 0 and model.training
    assert all(p.requires_grad for p in model.parameters())


def test_cam_works_inside_no_grad_and_on_inference_tensors(device):
    model = RegionNet().to(device)
    with torch.inference_mode():
        images = _images(device)
    with torch.no_grad():
        maps = cam(model, images, targets=0)
    assert float(maps.amax()) > 0.99


def test_explicit_layer_and_bad_arguments(resnet, device):
    model = resnet.to(device)
    images = _images(device, batch=2)
    maps = cam(model, images, layer=model.net.layer2)
    assert maps.shape == (2, SIZE, SIZE)
    with pytest.raises(ValueError, match="method must be one of 'gradcam'"):
        cam(model, images, method="gradcam+++")
    with pytest.raises(ValueError, match="not a submodule"):
        cam(model, images, layer=nn.Conv2d(16, 16, 3))
    with pytest.raises(ValueError, match="a list of 2 ints"):
        cam(model, images, targets=[0, 1, 2])
    with pytest.raises(ValueError, match="integer class indices"):
        cam(model, images, targets=torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="≥ 0"):
        cam(model, images, targets=-1)
    with pytest.raises(ValueError, match="4-D"):
        cam(model, images[0])


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam", "eigencam"])
def test_maps_equal_the_package_used_directly(method, resnet, device):
    # The wrapper freezes parameters and starts the backward pass at the target layer; the maps must not change.
    from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, LayerCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = resnet.to(device)
    images = _images(device, batch=3, seed=4)
    package = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "layercam": LayerCAM, "eigencam": EigenCAM}[method]
    with package(model=model, target_layers=[model.net.layer3]) as explainer:
        expected = explainer(input_tensor=images, targets=[ClassifierOutputTarget(c) for c in (1, 0, 3)])
    maps = cam(model, images, method=method, targets=[1, 0, 3])
    torch.testing.assert_close(maps.cpu(), torch.from_numpy(expected), atol=1e-5, rtol=1e-4)
