"""Small helpers shared by the analysis command lines."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Mapping, Sequence

import torch
from torch import nn

from .checkpoints import load_checkpoint


def expand_paths(patterns: Sequence[str], option: str) -> list[Path]:
    """Files named by `patterns`, quoted glob patterns expanded (sorted); a pattern matching nothing is an error."""
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise ValueError(f"{option} pattern {pattern!r} matches no file")
        paths.extend(Path(match) for match in matches)
    return paths


def model_name(path: Path, taken: Mapping[str, object]) -> str:
    """The checkpoint's file stem, or its whole path when another model already has that name."""
    return path.stem if path.stem not in taken else str(path)


def load_models(patterns: Sequence[str], option: str, *, arch: str | None, num_classes: int | None,
                device: torch.device) -> dict[str, tuple[nn.Module, dict]]:
    """``{name: (model, meta)}`` for the checkpoints `patterns` name (see :func:`expand_paths`), which must agree
    on the number of classes and the input size."""
    loaded: dict[str, tuple[nn.Module, dict]] = {}
    for path in expand_paths(patterns, option):
        model, meta = load_checkpoint(path, arch=arch, num_classes=num_classes, device=device)
        loaded[model_name(path, loaded)] = (model, meta)
    for key in ("num_classes", "input_size"):
        values = {meta[key] for _, meta in loaded.values()}
        if len(values) > 1:
            raise ValueError(f"the checkpoints disagree on {key} ({sorted(values)}); compare models trained on the "
                             "same data")
    return loaded
