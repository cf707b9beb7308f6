"""Tests for msda.models: every registered architecture, torchvision names, Normalized and cam_layer."""

from __future__ import annotations

import re

import pytest
import torch
import torchvision
from torch import nn

from msda.models import (
    ARCHS,
    Normalized,
    build_model,
    cam_layer,
    cam_reshape,
    list_models,
    torchvision_names,
    vit_tokens_to_map,
)

NUM_CLASSES = 7  # not 10, so a constructor that ignores num_classes fails


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def capture_output(layer: nn.Module, store: dict):
    """Forward hook that records the layer's output (returns None, so the output is left unchanged)."""
    def hook(module, inputs, output):
        store["out"] = output
    return layer.register_forward_hook(hook)


def build_on_meta(arch: str, num_classes: int = 10, **kwargs) -> nn.Module:
    """Shapes and parameter counts without allocating or initialising the weights."""
    with torch.device("meta"):
        return build_model(arch, num_classes, **kwargs)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_arch_maps_a_batch_to_logits(arch, device):
    torch.manual_seed(0)  # weight init uses the global RNG; tests seed it, the library never does
    model = build_model(arch, NUM_CLASSES).to(device)
    logits = model(torch.rand(2, 3, 32, 32, device=device))
    assert logits.shape == (2, NUM_CLASSES)
    assert logits.device.type == device.type
    assert bool(torch.isfinite(logits).all())


@pytest.mark.parametrize("arch", ARCHS)
def test_stages_are_named_layer1_to_layerN_and_the_last_is_the_cam_layer(arch):
    model = build_on_meta(arch)
    stages = [name for name, _ in model.named_children() if re.fullmatch(r"layer\d+", name)]
    assert stages == [f"layer{i}" for i in range(1, len(stages) + 1)] and len(stages) >= 3
    assert cam_layer(model) is getattr(model, stages[-1])


# Published parameter counts at 10 classes: He et al. 2016 Table 6 (CIFAR ResNets), Zagoruyko & Komodakis
# 2016 Table 4 (WRN-28-10), and the 11.2 M / 23.5 M usually quoted for the 3×3-stem ResNet-18 / ResNet-50.
PUBLISHED_PARAMETERS = {
    "resnet20": 0.27e6,
    "resnet32": 0.46e6,
    "resnet56": 0.85e6,
    "cifar_resnet18": 11.2e6,
    "cifar_resnet50": 23.5e6,
    "preact_resnet18": 11.2e6,
    "wrn28_10": 36.5e6,
}


@pytest.mark.parametrize("arch", sorted(PUBLISHED_PARAMETERS))
def test_parameter_counts_match_the_papers(arch):
    count = parameter_count(build_on_meta(arch))
    published = PUBLISHED_PARAMETERS[arch]
    # The papers round to two or three significant digits.
    assert abs(count - published) <= 0.02 * published, f"{arch}: {count} parameters vs {published:g} published"


def test_option_b_shortcuts_add_exactly_two_projections():
    option_a = parameter_count(build_on_meta("resnet20"))
    option_b = parameter_count(build_on_meta("resnet20", shortcut="B"))
    # 1×1 convs 16→32 and 32→64, each followed by a BatchNorm (weight + bias per channel).
    assert option_b - option_a == 16 * 32 + 32 * 64 + 2 * (32 + 64)


def test_option_a_and_b_both_run(device):
    for shortcut in ("A", "B"):
        model = build_model("resnet20", 3, shortcut=shortcut).to(device)
        assert model(torch.rand(2, 3, 32, 32, device=device)).shape == (2, 3)


def test_wrn_dropout_is_passed_through():
    model = build_on_meta("wrn28_10", dropout=0.3)
    rates = {m.p for m in model.modules() if isinstance(m, nn.Dropout)}
    assert rates == {0.3}


def test_cifar_stem_keeps_32px_resolution_into_the_first_stage():
    model = build_model("cifar_resnet18", 10)
    seen = {}
    capture_output(model.layer1, seen)
    model.eval()
    with torch.no_grad():
        model(torch.rand(1, 3, 32, 32))
    assert seen["out"].shape[-2:] == (32, 32)
    assert isinstance(model.maxpool, nn.Identity) and model.conv1.kernel_size == (3, 3)


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_small", "googlenet"])
def test_torchvision_names_build_without_weights(arch):
    model = build_model(arch, NUM_CLASSES)
    # googlenet returns aux logits in train mode unless build_model switches them off.
    out = model(torch.rand(2, 3, 64, 64))
    assert isinstance(out, torch.Tensor) and out.shape == (2, NUM_CLASSES)


def test_list_models_is_ours_then_torchvision_then_timm():
    names = list_models()
    assert tuple(names[: len(ARCHS)]) == ARCHS
    timm_part = [name for name in names if name.startswith("timm/")]
    assert timm_part == names[len(names) - len(timm_part):]  # timm's come last
    assert set(names[len(ARCHS):len(names) - len(timm_part)]) == (
        set(torchvision.models.list_models(module=torchvision.models)) - set(ARCHS))


def test_unknown_arch_lists_ours_and_points_to_torchvision():
    with pytest.raises(ValueError, match=r"resnet20.*wrn28_10.*torchvision.*'resnet2x'.*Did you mean .*'resnet20'"):
        build_model("resnet2x", 10)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"weights": "IMAGENET1K_V1"}, "never loads or downloads"),
    ({"pretrained": True}, "never loads or downloads"),
    ({"dropout": 0.1}, r"resnet20 does not accept \['dropout'\].*shortcut"),
])
def test_bad_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_model("resnet20", 10, **kwargs)


def test_bad_num_classes_and_shortcut_raise():
    with pytest.raises(ValueError, match="num_classes must be an integer in"):
        build_model("resnet20", 0)
    with pytest.raises(ValueError, match="shortcut must be one of 'A', 'B'; got 'C'"):
        build_model("resnet20", 10, shortcut="C")
    with pytest.raises(ValueError, match="depth must be 6n"):
        from msda.models import CifarResNet
        CifarResNet(21)


def test_normalized_normalises_inside(device):
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    model = Normalized(nn.Identity(), mean, std).to(device)
    images = torch.rand(2, 3, 4, 5, device=device)
    expected = (images - torch.tensor(mean, device=device)[:, None, None]) / torch.tensor(std, device=device)[:, None, None]
    torch.testing.assert_close(model(images), expected, rtol=0, atol=0)
    assert isinstance(model.net, nn.Identity)
    assert set(model.state_dict()) == {"mean", "std"}
    assert model.mean.shape == (1, 3, 1, 1) and model.mean.device.type == device.type


def test_normalized_wraps_a_real_model_and_keeps_channels_last(device):
    torch.manual_seed(0)
    net = build_model("resnet20", 10).to(device).eval()
    model = Normalized(net, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)).to(device).eval()
    images = torch.rand(2, 3, 32, 32, device=device)
    with torch.no_grad():
        torch.testing.assert_close(model(images), net((images - 0.5) / 0.25))
        channels_last = model.to(memory_format=torch.channels_last)(images.to(memory_format=torch.channels_last))
    torch.testing.assert_close(channels_last, net((images - 0.5) / 0.25), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("mean", "std", "message"), [
    ((0.5, 0.5), (0.2, 0.2, 0.2), "one value per channel"),
    ((0.5, 0.5, 0.5), (0.2, 0.0, 0.2), "std must be > 0"),
    ((0.5, float("nan"), 0.5), (0.2, 0.2, 0.2), "mean must be a non-empty sequence of finite numbers"),
    ("abc", (0.2,), "mean must be a sequence of numbers"),
])
def test_normalized_rejects_bad_statistics(mean, std, message):
    with pytest.raises(ValueError, match=message):
        Normalized(nn.Identity(), mean, std)


def test_bf16_autocast_runs_and_stays_close():
    torch.manual_seed(0)
    model = build_model("resnet20", 10).eval()
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        reference = model(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(images)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), reference, rtol=0.1, atol=0.1)


@pytest.mark.parametrize("arch", ARCHS)
def test_cam_layer_output_is_the_last_spatial_map(arch):
    model = Normalized(build_model(arch, 10), (0.5,) * 3, (0.25,) * 3).eval()
    layer = cam_layer(model)
    assert any(layer is module for module in model.modules())
    seen = {}
    handle = capture_output(layer, seen)
    with torch.no_grad():
        model(torch.rand(1, 3, 32, 32))
    handle.remove()
    assert seen["out"].ndim == 4 and seen["out"].shape[1] == model.net.fc.in_features
    assert cam_reshape(model) is None


def torchvision_family(name: str) -> str:
    """'efficientnet_v2_s' → 'efficientnet_v2', 'resnet50' → 'resnet', 'vit_b_16' → 'vit'."""
    return re.match(r"[a-z]+(?:_v\d)?", name).group(0)


# One small member of every torchvision family; the test below fails if torchvision adds a family.
TORCHVISION_REPRESENTATIVES = [
    "alexnet", "convnext_tiny", "densenet121", "efficientnet_b0", "efficientnet_v2_s", "googlenet",
    "inception_v3", "maxvit_t", "mnasnet0_5", "mobilenet_v2", "mobilenet_v3_small", "regnet_x_400mf",
    "resnet18", "resnext50_32x4d", "shufflenet_v2_x0_5", "squeezenet1_1", "swin_t", "swin_v2_t", "vgg11",
    "vit_b_32", "wide_resnet50_2",
]


def test_every_torchvision_family_is_represented():
    assert {torchvision_family(n) for n in torchvision_names()} == {
        torchvision_family(n) for n in TORCHVISION_REPRESENTATIVES}


@pytest.mark.parametrize("arch", TORCHVISION_REPRESENTATIVES)
def test_cam_layer_knows_every_torchvision_family(arch):
    # RegNet's builder computes its widths with tensor ops that cannot run on meta; it is small anyway.
    model = build_model(arch, 10) if arch.startswith("regnet") else build_on_meta(arch)
    layer = cam_layer(model)
    assert any(layer is module for module in model.modules())
    assert (cam_reshape(model) is not None) == arch.startswith("vit")


def test_vit_cam_layer_gives_a_patch_map_after_the_reshape():
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2,
                                               hidden_dim=16, mlp_dim=32, num_classes=10)
    seen = {}
    capture_output(cam_layer(vit), seen)
    with torch.no_grad():
        vit(torch.rand(2, 3, 32, 32))
    assert cam_reshape(vit) is vit_tokens_to_map
    assert vit_tokens_to_map(seen["out"]).shape == (2, 16, 4, 4)


def test_cam_layer_rejects_an_unknown_model():
    with pytest.raises(ValueError, match="cam_layer knows no Grad-CAM layer for Linear"):
        cam_layer(nn.Linear(3, 4))
