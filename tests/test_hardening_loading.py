"""Regression tests for issue 13 in the checkpoint loader: every value a file states is bounded before it
sizes anything (S1 num_classes, S2 input_size, S4 pickle bombs, S5 arch, S7 nested JSON), weights and
normalisation are checked (W2, C4), and messages name the field. Each refusal comes within the time and
memory budget of :mod:`hardening_budget`."""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from hardening_budget import refused, within_budget
from safetensors.torch import save_file

from analysis import load_checkpoint
from analysis.checkpoints import MAX_NUM_CLASSES, MAX_PICKLE_BYTES
from msda.models import build_model
from msda.training.checkpoint import FORMAT, save_checkpoint

CLASSES = [f"c{i}" for i in range(10)]
META = {"arch": "resnet20", "num_classes": 10, "classes": CLASSES, "input_size": 32,
        "mean": [0.4, 0.4, 0.4], "std": [0.2, 0.2, 0.2]}


@pytest.fixture(scope="module")
def weights() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)  # fixture weights only
    return build_model("resnet20", 10).state_dict()


def checkpoint(tmp_path: Path, weights, name: str = "model.safetensors", **changes) -> Path:
    return save_checkpoint(tmp_path / name, weights, {**META, **changes})


def test_the_untouched_file_loads(tmp_path, weights):
    model, meta = load_checkpoint(checkpoint(tmp_path, weights))
    assert meta["num_classes"] == 10 and meta["input_size"] == 32


def test_S1_header_num_classes_of_a_billion_is_refused_before_building_names(tmp_path, weights):
    path = checkpoint(tmp_path, weights, num_classes=10**9)
    with refused(rf"metadata field num_classes must be an integer in \[1, {MAX_NUM_CLASSES}\], got 1000000000"):
        load_checkpoint(path)


def test_S1_header_num_classes_is_checked_against_the_weights_own_head(tmp_path, weights):
    path = checkpoint(tmp_path, weights, num_classes=5000, classes=[str(i) for i in range(5000)])
    with refused(r"fc.weight: expected \(5000, 64\), found \(10, 64\)"):
        load_checkpoint(path)


def test_S1_app_upload_of_a_billion_classes_gives_a_message(tmp_path, weights):
    from app.lib.checkpoints import LoadFailure, load_upload

    data = checkpoint(tmp_path, weights, num_classes=10**9).read_bytes()
    with within_budget():
        result = load_upload(data, "billion.safetensors")
    assert isinstance(result, LoadFailure) and "num_classes must be an integer" in result.message


@pytest.mark.parametrize("size", [2048, 10**6, 0, 4])
def test_S2_header_input_size_outside_what_is_served_is_refused(tmp_path, weights, size):
    path = checkpoint(tmp_path, weights, input_size=size)
    with refused(rf"metadata field input_size must be an integer in \[8, 512\], got {size}"):
        load_checkpoint(path)


def test_S2_input_size_argument_is_bounded_too(tmp_path, weights):
    with refused(r"input_size must be an integer in \[8, 512\], got 4096"):
        load_checkpoint(checkpoint(tmp_path, weights), input_size=4096)


def _deflated_pickle_archive(path: Path, inflated_bytes: int) -> Path:
    """A torch.save-shaped archive whose data.pkl is a deflated pickle of one long string."""
    payload = pickle.dumps({"x": "a" * inflated_bytes}, protocol=2)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/version", "3\n")
    return path


def test_S4_deflated_pickle_bomb_is_refused_from_the_archive_directory(tmp_path):
    path = _deflated_pickle_archive(tmp_path / "bomb.pt", 4 * MAX_PICKLE_BYTES)
    assert path.stat().st_size < 1 << 20  # a small upload…
    with refused(r"holds a 64 MiB pickle; a state dict's is far smaller \(at most 16 MiB"):
        load_checkpoint(path, arch="resnet20")  # …that unpacks to 64 MiB


def test_S4_torch_save_archives_still_load(tmp_path, weights):
    torch.save(weights, tmp_path / "plain.pt")
    _, meta = load_checkpoint(tmp_path / "plain.pt", arch="resnet20")
    assert meta["num_classes"] == 10


def test_S5_header_arch_is_checked_against_the_weights_before_building_it(tmp_path, weights):
    path = checkpoint(tmp_path, weights, arch="vit_h_14")
    with refused(r"does not fit arch 'vit_h_14'.*missing key", megabytes=150):
        load_checkpoint(path)


@pytest.mark.parametrize("depth", [40, 100_000])
def test_S7_deeply_nested_checkpoint_header_is_one_sentence(tmp_path, weights, depth):
    path = tmp_path / "nested.safetensors"
    header = json.dumps(META)[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}"
    save_file({k: v.contiguous() for k, v in weights.items()}, str(path), metadata={"format": FORMAT, "msda": header})
    with refused("nested (too deeply|more than 32 levels deep)"):
        load_checkpoint(path)


def test_S7_checkpoint_header_that_is_not_an_object_is_one_sentence(tmp_path, weights):
    path = tmp_path / "list.safetensors"
    save_file({k: v.contiguous() for k, v in weights.items()}, str(path), metadata={"format": FORMAT, "msda": "[1]"})
    with refused("must be a JSON object, got list"):
        load_checkpoint(path)


def test_W2_non_finite_weights_are_refused(tmp_path, weights):
    broken = {**weights, "fc.weight": weights["fc.weight"].clone().index_fill_(0, torch.tensor([3]), float("nan"))}
    with refused(r"1 weight tensor\(s\) hold NaN or infinite values — fc.weight"):
        load_checkpoint(checkpoint(tmp_path, broken))


def test_W2_non_float_weights_are_refused(tmp_path, weights):
    broken = {**weights, "conv1.weight": weights["conv1.weight"].round().to(torch.int32)}
    with refused(r"1 weight tensor\(s\) are not floating point — conv1.weight \(torch.int32\)"):
        load_checkpoint(checkpoint(tmp_path, broken))


@pytest.mark.parametrize("field,value,message", [
    ("mean", [0.4] * 5, r"mean must be a list of 3 numbers \(one per RGB channel\)"),
    ("std", [0.2, 0.2], r"std must be a list of 3 numbers"),
    ("std", [0.2, 0.0, 0.2], r"std values must be finite and > 0, got \[0.2, 0.0, 0.2\]"),
    ("std", [0.2, -1, 0.2], r"std values must be finite and > 0"),
    ("mean", "abc", r"mean must be a list of 3 numbers"),
])
def test_C4_normalisation_of_the_wrong_length_or_sign_is_refused_at_load(tmp_path, weights, field, value, message):
    with refused(message):
        load_checkpoint(checkpoint(tmp_path, weights, **{field: value}))


@pytest.mark.parametrize("field,value,message", [
    ("num_classes", "ten", r"metadata field num_classes must be an integer in \[1, 100000\], got 'ten' \(str\)"),
    ("num_classes", "10", r"metadata field num_classes must be an integer .* got '10' \(str\)"),
    ("num_classes", -3, r"metadata field num_classes must be an integer in \[1, 100000\], got -3"),
    ("num_classes", True, r"metadata field num_classes must be an integer .* got True \(bool\)"),
    ("input_size", True, r"metadata field input_size must be an integer .* got True \(bool\)"),
    ("input_size", 32.5, r"metadata field input_size must be an integer .* got 32.5 \(float\)"),
    ("classes", "abc", r"metadata field classes must be a list"),
    ("arch", 5, r"metadata field arch must be a str, got 5"),
])
def test_messages_name_the_field(tmp_path, weights, field, value, message):
    with refused(message):
        load_checkpoint(checkpoint(tmp_path, weights, **{field: value}))


def test_integer_arguments_refuse_true(tmp_path, weights):
    with refused(r"num_classes must be an integer in \[1, 100000\], got True \(bool\)"):
        load_checkpoint(checkpoint(tmp_path, weights), num_classes=True)
