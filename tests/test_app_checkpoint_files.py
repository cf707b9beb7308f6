"""Checkpoint files for the app's tests — tiny models with random weights, and hostile or mismatched files —
built in a few milliseconds (no test functions here).

Used by test_app_cam.py, test_app_robustness.py, test_app_hardmix.py and test_browser.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from msda.data import SHAPE_CLASSES
from msda.models import build_model
from msda.training import manifest
from msda.training.checkpoint import save_checkpoint

METHODS = ("cutmix", "none", "smoothmix_c")
SHAPES_MEAN, SHAPES_STD = [0.41, 0.41, 0.41], [0.23, 0.23, 0.23]


def meta(method: str, *, arch: str = "resnet20", classes=SHAPE_CLASSES, input_size: int = 32) -> dict:
    return {"arch": arch, "num_classes": len(classes), "classes": list(classes), "input_size": input_size,
            "mean": SHAPES_MEAN, "std": SHAPES_STD, "dataset": "shapes", "method": method, "data_seed": 0,
            "epochs": 0, "seed": 0, "recipe": {"name": "test"}, "test_accuracy": 0.1, "test_images": 0,
            "command": "random weights (tests)"}


def random_state(arch: str = "resnet20", num_classes: int = 10, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)  # the weights only; the code under test takes its randomness from generators
    return build_model(arch, num_classes).state_dict()


def write_folder(folder: Path, methods=METHODS) -> list[Path]:
    """One resnet20 checkpoint per method with random weights, and the manifest.json that
    ``python -m msda.training.manifest`` writes for them."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [save_checkpoint(folder / f"{method}.safetensors", random_state(seed=seed), meta(method))
             for seed, method in enumerate(methods)]
    (folder / "manifest.json").write_text(json.dumps(manifest.build(folder)), encoding="utf-8")
    return paths


def safetensors_bytes(state: dict, checkpoint_meta: dict, tmp: Path, name: str = "model.safetensors") -> bytes:
    return save_checkpoint(tmp / name, state, checkpoint_meta).read_bytes()


def wrong_architecture(tmp: Path) -> bytes:
    """An msda checkpoint that says resnet20 but holds resnet32's weights."""
    return safetensors_bytes(random_state("resnet32"), meta("cutmix"), tmp, "wrong.safetensors")


def plain_state_dict_pt(arch: str = "resnet20") -> bytes:
    """A bare state dict saved with torch.save: no architecture named anywhere."""
    buffer = io.BytesIO()
    torch.save(random_state(arch), buffer)
    return buffer.getvalue()


class _CreatesAFile:
    """Unpickling this would call ``open(path, "w")``: the file's existence tells whether code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


def pickle_with_code(marker: Path) -> bytes:
    """A torch.save file whose unpickling would create `marker`."""
    buffer = io.BytesIO()
    torch.save({"state_dict": {"weight": torch.zeros(1)}, "payload": _CreatesAFile(marker)}, buffer)
    return buffer.getvalue()
