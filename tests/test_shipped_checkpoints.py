"""The shipped checkpoints: the manifest matches the files, and the figures in it come from the models."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import analysis
import msda
from msda.data import Shapes
from msda.data.shapes import version_of_classes

FOLDER = Path(__file__).resolve().parents[1] / "checkpoints"
MANIFEST = json.loads((FOLDER / "manifest.json").read_text())
ENTRIES = {entry["method"]: entry for entry in MANIFEST["checkpoints"]}


def test_one_checkpoint_per_method_and_the_baseline():
    assert set(ENTRIES) == {"none", *msda.METHODS}


@pytest.mark.parametrize("method", sorted(ENTRIES))
def test_file_hash_size_and_metadata(method):
    entry = ENTRIES[method]
    path = FOLDER / entry["file"]
    data = path.read_bytes()
    assert len(data) == entry["bytes"] <= 2 * 1024 * 1024
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    model, meta = analysis.load_checkpoint(path)
    assert meta["method"] == method and meta["arch"] == entry["arch"] == "resnet20"
    assert meta["test_accuracy"] == entry["test_accuracy"] and meta["test_images"] >= 2000
    assert meta["command"] == entry["command"] and f"--method {method}" in entry["command"]
    assert not model.training


def test_every_checkpoint_used_the_same_recipe_and_data():
    keys = {(e["recipe"], e["epochs"], e["seed"], e["train_images"], e["test_images"]) for e in ENTRIES.values()}
    assert len(keys) == 1


def test_every_checkpoint_starts_from_the_shipped_base():
    inits = {(e["init"]["file"], e["init"]["sha256"]) for e in ENTRIES.values()}
    assert len(inits) == 1
    ((name, digest),) = inits
    assert hashlib.sha256((FOLDER / "base" / name).read_bytes()).hexdigest() == digest


@pytest.fixture(scope="module")
def test_split():
    meta = analysis.load_checkpoint(FOLDER / ENTRIES["none"]["file"])[1]
    data = Shapes("test", n=meta["test_images"], size=meta["input_size"], seed=meta.get("data_seed", 0),
                  version=version_of_classes(meta["classes"]))  # the dataset version the checkpoints were scored on
    images, labels = data.as_tensors()
    return images.float() / 255, labels


@pytest.mark.parametrize("method", sorted(ENTRIES))
def test_stored_accuracy_is_what_the_model_scores(method, test_split):
    images, labels = test_split
    model, _ = analysis.load_checkpoint(FOLDER / ENTRIES[method]["file"])
    with torch.no_grad():
        predictions = torch.cat([model(images[i:i + 256]).argmax(1) for i in range(0, len(images), 256)])
    # Training evaluated with another batch size and memory layout: allow one borderline prediction to differ.
    assert (predictions == labels).float().mean().item() == pytest.approx(ENTRIES[method]["test_accuracy"],
                                                                          abs=1.5 / len(labels))
