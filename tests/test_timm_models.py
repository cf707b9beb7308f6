"""timm architectures as ``"timm/<name>"``: every family with a CAM rule loads from the checkpoints timm's train
script writes (``timm.utils.CheckpointSaver``, randomly initialised weights: nothing can be downloaded), runs
Grad-CAM at 224 px with its smallest variant, and trains one step through ``python -m msda.train``; timm's other
outputs (``clean_checkpoint.py``'s bare state dicts, .safetensors, EMA weights, DeiT's layout) load; bad names and
misfit files are one-line ValueErrors; the argparse.Namespace timm stores is the only class let through."""

from __future__ import annotations

import argparse
import pathlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

timm = pytest.importorskip("timm")
from timm.utils import CheckpointSaver, ModelEmaV3  # noqa: E402

from analysis import cam, load_checkpoint  # noqa: E402
from msda import train as train_cli  # noqa: E402
from msda.models import (  # noqa: E402
    CamTarget,
    Normalized,
    build_model,
    cam_layer,
    cam_layer_name,
    cam_layer_names,
    cam_reshape,
    list_models,
)
from msda.training.checkpoint import read_checkpoint_meta  # noqa: E402

NUM_CLASSES = 5

FAMILIES = {  # family → (its smallest variant, training side, the rule's CAM layer)
    "resnet": ("resnet10t", 32, "layer4"),
    "convnext": ("convnext_atto", 32, "stages.3"),
    "efficientnet": ("efficientnet_b0", 32, "bn2"),
    "mobilenetv3": ("mobilenetv3_small_050", 32, "blocks.5"),
    "vit": ("vit_tiny_patch16_224", 224, "blocks.11.norm1"),
    "swin": ("swin_tiny_patch4_window7_224", 224, "norm"),
    "regnet": ("regnetx_002", 32, "s4"),
    "densenet": ("densenet121", 32, "features"),
}


def timm_args(name: str, **overrides) -> argparse.Namespace:
    """The part of timm's train.py arguments the loader reads, with its defaults."""
    values = dict(model=name, num_classes=NUM_CLASSES, img_size=None, input_size=None, mean=None, std=None,
                  lr=0.1, opt="sgd", sched="cosine", data_dir="/data/imagenet", model_ema=False)
    return argparse.Namespace(**{**values, **overrides})


def save_like_timm_train(folder: Path, net: torch.nn.Module, args: argparse.Namespace, *, ema=None) -> Path:
    """What timm's train.py leaves after an epoch: ``last.pth.tar`` from its CheckpointSaver."""
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)  # no momentum: no per-weight state to write
    saver = CheckpointSaver(net, optimizer, args=args, model_ema=ema, checkpoint_dir=str(folder),
                            recovery_dir=str(folder))
    saver.save_checkpoint(epoch=0, metric=0.25)
    return folder / "last.pth.tar"


def fresh_timm(name: str, seed: int = 0, **kwargs) -> torch.nn.Module:
    torch.manual_seed(seed)  # test fixture: random weights, as timm's script would start from
    return timm.create_model(name, pretrained=False, num_classes=NUM_CLASSES, **kwargs).eval()


def same_weights(model: torch.nn.Module, net: torch.nn.Module) -> bool:
    ours = model.net.state_dict()
    return all(torch.equal(ours[key].float(), value.float()) for key, value in net.state_dict().items())


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_loads_from_timm_train_runs_cam_at_224_and_trains_one_step(family, tmp_path):
    name, side, layer = FAMILIES[family]
    net = fresh_timm(name)
    path = save_like_timm_train(tmp_path, net, timm_args(name))

    model, meta = load_checkpoint(path)
    config = timm.get_pretrained_cfg(name)  # the run's convention, unless its args say otherwise: the name's
    assert meta["arch"] == f"timm/{name}" and meta["num_classes"] == NUM_CLASSES
    assert meta["input_size"] == config.input_size[-1] and meta["mean"] == list(config.mean)
    assert same_weights(model, net) and "['state_dict']" in meta["layout"]

    images = torch.rand(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    maps = cam(model, images)
    assert cam_layer_name(model) == layer
    assert maps.shape == (1, 224, 224) and bool(torch.isfinite(maps).all()) and float(maps.max() - maps.min()) > 0

    out = tmp_path / "one-step.safetensors"
    train_cli.main(["--data", "shapes", "--train-size", "2", "--test-size", "2", "--size", str(side),
                    "--batch-size", "2", "--epochs", "1", "--arch", f"timm/{name}", "--method", "cutmix",
                    "--no-progress", "--device", "cpu", "--out", str(out)])
    trained, trained_meta = load_checkpoint(out)  # our checkpoint of a timm model reads back
    assert trained_meta["arch"] == read_checkpoint_meta(out)["arch"] == f"timm/{name}"
    assert trained_meta["input_size"] == side
    with torch.no_grad():
        assert trained(torch.rand(2, 3, side, side)).shape == (2, 10)


def test_timm_names_are_listed_prefixed_and_built_without_weights():
    names = list_models()
    assert "timm/convnext_tiny" in names and "timm/resnet50" in names and "resnet50" in names
    net = build_model("timm/resnet10t", 3, pretrained=False, drop_path_rate=0.1)
    assert type(net).__module__.startswith("timm.") and net.fc.out_features == 3
    with pytest.raises(ValueError, match="never loads or downloads pretrained weights"):
        build_model("timm/resnet10t", 3, pretrained=True)


@pytest.mark.parametrize("arch,message", [
    ("timm/convnext_tny", r"^arch 'timm/convnext_tny': timm has no architecture 'convnext_tny' .*Did you mean "
                          r"'timm/convnext_tiny'"),
    ("convnext_atto", r"got 'convnext_atto'\. Did you mean 'timm/convnext_atto'\?$"),
])
def test_an_unknown_timm_name_suggests_close_names(arch, message, tmp_path):
    with pytest.raises(ValueError, match=message):
        build_model(arch, 3)
    path = tmp_path / "weights.pth"
    torch.save(fresh_timm("resnet10t").state_dict(), path)
    with pytest.raises(ValueError, match=message.replace("^", "").replace("$", "")) as error:
        load_checkpoint(path, arch=arch)
    assert "\n" not in str(error.value)


def test_a_timm_checkpoint_that_does_not_fit_the_named_model_is_refused(tmp_path):
    path = tmp_path / "convnext.pth"
    torch.save(fresh_timm("convnext_atto").state_dict(), path)
    with pytest.raises(ValueError, match=r"does not fit arch 'timm/resnet10t' with num_classes=.*missing key") as error:
        load_checkpoint(path, arch="timm/resnet10t", num_classes=NUM_CLASSES)
    assert "\n" not in str(error.value)
    saved = save_like_timm_train(tmp_path, fresh_timm("resnet10t"), timm_args("resnet10t"))
    with pytest.raises(ValueError, match=r"saved as arch 'timm/resnet10t', but arch='timm/resnet18' was given"):
        load_checkpoint(saved, arch="timm/resnet18")


def test_clean_checkpoint_outputs_load_with_their_arch(tmp_path):
    """timm's clean_checkpoint.py writes the bare state dict, as .pth or .safetensors; DDP runs add module.."""
    net = fresh_timm("resnet10t")
    plain = tmp_path / "resnet10t-clean.pth"
    torch.save({f"module.{key}": value for key, value in net.state_dict().items()}, plain)
    tensors = tmp_path / "resnet10t-clean.safetensors"
    save_file({key: value.contiguous() for key, value in net.state_dict().items()}, str(tensors))
    for path in (plain, tensors):
        with pytest.raises(ValueError, match="does not say which architecture"):
            load_checkpoint(path)
        model, meta = load_checkpoint(path, arch="timm/resnet10t")
        assert same_weights(model, net) and meta["input_size"] == 176  # resnet10t's config trains at 176 px
        assert meta["mean"] == list(timm.data.IMAGENET_DEFAULT_MEAN)


def test_ema_weights_and_the_runs_input_convention(tmp_path):
    net = fresh_timm("resnet10t")
    ema = ModelEmaV3(net, decay=0.5)
    with torch.no_grad():
        for parameter in net.parameters():  # the trained weights move on; the average stays behind
            parameter.add_(0.01)
    args = timm_args("resnet10t.a1_in1k", img_size=64, mean=[0.5], std=(0.25, 0.25, 0.25))
    path = save_like_timm_train(tmp_path, net, args, ema=ema)

    model, meta = load_checkpoint(path)
    assert same_weights(model, net) and "use_ema=True" in meta["layout"]
    assert meta["arch"] == "timm/resnet10t"  # the pretrained tag is dropped
    assert meta["input_size"] == 64 and meta["mean"] == [0.5] * 3 and meta["std"] == [0.25] * 3
    assert meta["timm_epoch"] == 0 and meta["timm_metric"] == 0.25
    averaged, meta = load_checkpoint(path, use_ema=True)
    assert same_weights(averaged, ema.module) and not same_weights(averaged, net)
    assert meta["layout"] == "EMA state dict under ['state_dict_ema']"

    bare = tmp_path / "bare.pth"
    torch.save(net.state_dict(), bare)
    with pytest.raises(ValueError, match="holds no EMA weights"):
        load_checkpoint(bare, arch="timm/resnet10t", use_ema=True)


def test_deit_layout_names_its_model_in_args(tmp_path):
    net = fresh_timm("deit_tiny_patch16_224")
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": net.state_dict(), "optimizer": {}, "lr_scheduler": {}, "epoch": 3, "scaler": {},
                "args": timm_args("deit_tiny_patch16_224")}, path)
    model, meta = load_checkpoint(path)
    assert meta["arch"] == "timm/deit_tiny_patch16_224" and same_weights(model, net)
    assert meta["input_size"] == 224


class SneakyNamespace(argparse.Namespace):
    """Not argparse.Namespace itself: the allowance is for that one class, not its subclasses."""


@pytest.mark.parametrize("args", [SneakyNamespace(model="resnet10t"),
                                  argparse.Namespace(model="resnet10t", output=pathlib.PurePosixPath("/tmp"))],
                         ids=["namespace-subclass", "object-inside-namespace"])
def test_only_argparse_namespace_is_let_through(args, tmp_path):
    path = tmp_path / "last.pth.tar"
    torch.save({"arch": "resnet10t", "state_dict": fresh_timm("resnet10t").state_dict(), "version": 2,
                "args": args}, path)
    with pytest.raises(ValueError, match="is a pickle that would run code"):
        load_checkpoint(path)


def test_vit_prefix_tokens_are_dropped_before_the_map():
    """Register tokens and no class token: timm's num_prefix_tokens says how many tokens lead."""
    net = build_model("timm/vit_tiny_patch16_224", 3, img_size=32, class_token=False, global_pool="avg",
                      reg_tokens=4)
    model = Normalized(net, [0.5] * 3, [0.5] * 3).eval()
    tokens = torch.rand(2, 4 + 4, 192)
    assert cam_reshape(model)(tokens).shape == (2, 192, 2, 2)
    maps = cam(model, torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)))
    assert maps.shape == (2, 32, 32) and bool(torch.isfinite(maps).all())


def test_another_layer_can_be_pinned():
    model = Normalized(fresh_timm("resnet10t"), [0.5] * 3, [0.5] * 3)
    assert "layer3" in cam_layer_names(model) and "fc" not in cam_layer_names(model)
    pinned = CamTarget(model, "layer3")
    assert cam_layer(pinned) is model.net.layer3 and cam_layer_name(pinned) == "layer3"
    maps = cam(pinned, torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)))
    assert maps.shape == (1, 64, 64)
    with pytest.raises(ValueError, match=r"layer must name a module of ResNet .*got 'layer9'"):
        CamTarget(model, "layer9")


@pytest.mark.parametrize("args,message", [
    (["--arch", "timm/vit_tiny_patch16_224"], "takes 224 × 224 images only (its position embeddings are built "
                                              "for that side), got 32 px: pass --size 224"),
    (["--arch", "timm/resnet5O"], "timm has no architecture 'resnet5O'"),
])
def test_training_cli_refuses_before_loading_data(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train_cli.main(["--data", "shapes", "--train-size", "2", "--method", "none", "--no-progress",
                        "--device", "cpu", "--out", str(tmp_path / "x.safetensors"), *args])
    assert message in capsys.readouterr().err
