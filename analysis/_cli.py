"""Small helpers shared by the analysis command lines."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Mapping, Sequence


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
