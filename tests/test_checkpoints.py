"""analysis.load_checkpoint: every layout round-trips, pickles with code are refused unexecuted, mismatches explain."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from analysis import load_checkpoint
from analysis.checkpoints import default_meta
from msda.data.cifar import CIFAR10_MEAN, CIFAR10_STD
from msda.models import Normalized, build_model
from msda.training.checkpoint import save_checkpoint

MEAN, STD = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
META = {"arch": "resnet20", "num_classes": 3, "classes": ["circle", "square", "star"], "input_size": 16,
        "mean": MEAN, "std": STD, "dataset": "shapes", "method": "cutmix", "test_accuracy": 0.5}


@pytest.fixture(scope="module")
def net() -> nn.Module:
    torch.manual_seed(0)  # test fixture: the weights only need to differ from a fresh build
    model = build_model("resnet20", 3)
    for module in model.modules():  # non-trivial running statistics, so buffers are checked too
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _outputs(model: nn.Module, device) -> torch.Tensor:
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.no_grad():
        return model(images)


def _write(layout: str, path: Path, net: nn.Module) -> Path:
    state = net.state_dict()
    if layout == "msda":
        save_checkpoint(path.with_suffix(".safetensors"), state, META)
        return path.with_suffix(".safetensors")
    if layout == "plain-safetensors":
        save_file({k: v.contiguous() for k, v in state.items()}, path.with_suffix(".safetensors"))
        return path.with_suffix(".safetensors")
    wrapped = {
        "state-dict": state,
        "state_dict-key": {"state_dict": state, "epoch": 7, "best_acc": 0.9},
        "model-key": {"model": state, "optimizer": {"lr": 0.1, "momentum": 0.9}},
        "module-prefix": {f"module.{k}": v for k, v in state.items()},
        "nested-module-prefix": {"state_dict": {f"module.{k}": v for k, v in state.items()}},
        "normalized-wrapper": Normalized(net, MEAN, STD).state_dict(),
        "dataparallel-normalized": {f"module.{k}": v for k, v in Normalized(net, MEAN, STD).state_dict().items()},
    }[layout]
    torch.save(wrapped, path.with_suffix(".pth"))
    return path.with_suffix(".pth")


LAYOUTS = ["msda", "plain-safetensors", "state-dict", "state_dict-key", "model-key", "module-prefix",
           "nested-module-prefix", "normalized-wrapper", "dataparallel-normalized"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_round_trips(layout, net, tmp_path, device):
    path = _write(layout, tmp_path / "weights", net)
    arch = None if layout == "msda" else "resnet20"
    model, meta = load_checkpoint(path, arch=arch, device=device)

    assert isinstance(model, Normalized) and not model.training
    assert all(p.device.type == device.type for p in model.parameters())
    for key in ("arch", "num_classes", "classes", "mean", "std", "input_size"):
        assert key in meta
    assert meta["arch"] == "resnet20" and meta["num_classes"] == 3  # inferred from fc.weight when not stored
    if layout in ("msda", "normalized-wrapper", "dataparallel-normalized"):
        mean, std = MEAN, STD  # stored in the metadata or in the wrapper's buffers
    else:
        mean, std = list(CIFAR10_MEAN), list(CIFAR10_STD)  # documented defaults for our CIFAR-style archs
    assert meta["mean"] == pytest.approx(mean) and meta["std"] == pytest.approx(std)
    if layout == "msda":
        assert meta["classes"] == META["classes"] and meta["method"] == "cutmix" and meta["input_size"] == 16
    else:
        assert meta["classes"] == ["class 0", "class 1", "class 2"] and meta["input_size"] == 32

    reference = Normalized(net, mean, std).to(device).eval()
    torch.testing.assert_close(_outputs(model, device), _outputs(reference, device))


def test_arguments_fill_in_what_the_file_lacks(net, tmp_path):
    path = _write("state-dict", tmp_path / "weights", net)
    _, meta = load_checkpoint(path, arch="resnet20", num_classes=3, classes=["a", "b", "c"], mean=MEAN, std=STD,
                              input_size=16)
    assert meta["classes"] == ["a", "b", "c"] and meta["mean"] == pytest.approx(MEAN) and meta["input_size"] == 16
    assert "state dict" in meta["layout"]


def test_torchvision_state_dict_gets_imagenet_defaults_and_conv_classifier_inference(tmp_path):
    net = build_model("squeezenet1_1", 5).eval()  # its classifier is a 1×1 convolution
    torch.save(net.state_dict(), tmp_path / "squeeze.pt")
    model, meta = load_checkpoint(tmp_path / "squeeze.pt", arch="squeezenet1_1")
    assert meta["num_classes"] == 5 and meta["input_size"] == 224
    assert meta == {**meta, **default_meta("squeezenet1_1", 5)}
    assert meta["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 5)


def test_half_precision_and_missing_batchnorm_counters_load(net, tmp_path):
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net.state_dict().items()
             if not k.endswith("num_batches_tracked")}  # older PyTorch versions did not save the counters
    torch.save(state, tmp_path / "half.pt")
    model, _ = load_checkpoint(tmp_path / "half.pt", arch="resnet20")
    assert all(p.dtype == torch.float32 for p in model.parameters())


class WritesAFileWhenUnpickled:
    """Unpickling calls open(target, "w"): the file appearing would prove that loading ran code."""

    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return open, (str(self.target), "w")


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_that_runs_code_is_refused_and_nothing_runs(writer, tmp_path):
    target = tmp_path / "pwned.txt"
    payload = {"state_dict": {"fc.weight": torch.zeros(3, 64)}, "trap": WritesAFileWhenUnpickled(target)}
    path = tmp_path / "evil.pth"
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as handle:
            pickle.dump(payload, handle, protocol=2)
    assert not target.exists()
    with pytest.raises(ValueError, match=r"contains Python objects/code.*only tensors.*state dict") as error:
        load_checkpoint(path, arch="resnet20")
    assert "nothing in the file was executed" in str(error.value)
    assert "torch.save(model.state_dict()" in str(error.value)  # says how to re-save it
    assert not target.exists()


def test_whole_pickled_model_is_refused(net, tmp_path):
    torch.save(net, tmp_path / "model.pt")  # a pickled nn.Module names its class: code, not tensors
    with pytest.raises(ValueError, match="contains Python objects/code"):
        load_checkpoint(tmp_path / "model.pt", arch="resnet20")


def test_wrong_number_of_classes_names_the_layer_and_shapes(net, tmp_path):
    path = _write("state-dict", tmp_path / "weights", net)
    with pytest.raises(ValueError, match=r"fc\.weight: expected \(5, 64\), found \(3, 64\)") as error:
        load_checkpoint(path, arch="resnet20", num_classes=5)
    assert "fc.bias: expected (5,), found (3,)" in str(error.value)


def test_wrong_architecture_lists_shape_mismatches_and_missing_keys(net, tmp_path):
    path = _write("state-dict", tmp_path / "weights", net)
    with pytest.raises(ValueError, match=r"does not fit arch 'resnet32'.*missing key\(s\): layer1\.3\.") as error:
        load_checkpoint(path, arch="resnet32")
    assert "more)" in str(error.value)  # long key lists are abbreviated
    with pytest.raises(ValueError, match=r"conv1\.weight: expected \(64, 3, 3, 3\), found \(16, 3, 3, 3\)"):
        load_checkpoint(path, arch="cifar_resnet18")


def test_metadata_conflicts_and_missing_arch_are_errors(net, tmp_path):
    ours = _write("msda", tmp_path / "ours", net)
    with pytest.raises(ValueError, match="saved as arch 'resnet20', but arch='resnet32'"):
        load_checkpoint(ours, arch="resnet32")
    with pytest.raises(ValueError, match="saved with num_classes=3, but num_classes=4"):
        load_checkpoint(ours, num_classes=4)
    plain = _write("plain-safetensors", tmp_path / "plain", net)
    with pytest.raises(ValueError, match="does not say which architecture.*pass arch="):
        load_checkpoint(plain)
    with pytest.raises(ValueError, match="arch must be one of"):
        load_checkpoint(plain, arch="resnet_twenty")


def test_unreadable_files_are_explained(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint file"):
        load_checkpoint(tmp_path / "absent.pt", arch="resnet20")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a file torch.save wrote"):
        load_checkpoint(tmp_path / "junk.pt", arch="resnet20")
    torch.save({"epoch": 3, "notes": "no weights"}, tmp_path / "empty.pt")
    with pytest.raises(ValueError, match="without a state dict.*'epoch', 'notes'"):
        load_checkpoint(tmp_path / "empty.pt", arch="resnet20")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 32)
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        load_checkpoint(tmp_path / "junk.safetensors", arch="resnet20")
