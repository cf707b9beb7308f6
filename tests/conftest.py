"""Shared fixtures: every device test runs on CPU, and on CUDA when a GPU is present."""

from __future__ import annotations

import os

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    return torch.device(request.param)


@pytest.fixture
def generator(device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(0)


def make_generator(device, seed: int = 0) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


def _importable(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


HAVE_GCO = _importable("gco")
"""PuzzleMix's graph cuts need pyGCO (gco-wrapper, in requirements.txt); a machine without it (the GPU check's)
skips PuzzleMix's cases — except under CI, where requirements are installed and a skip would hide a fault."""

needs_gco = pytest.mark.skipif(not HAVE_GCO and not os.environ.get("CI"),
                               reason="PuzzleMix needs gco-wrapper (pip install gco-wrapper)")


def method_cases(methods) -> list:
    """`methods` as pytest parameters, PuzzleMix marked :data:`needs_gco`."""
    return [pytest.param(m, marks=needs_gco) if m == "puzzlemix" else m for m in methods]


def runnable(methods) -> list:
    """`methods` less PuzzleMix when pyGCO is missing and not under CI (for hypothesis strategies)."""
    return [m for m in methods if m != "puzzlemix" or HAVE_GCO or os.environ.get("CI")]


def guidance(method: str, images: torch.Tensor, *, logits: torch.Tensor | None = None, seed: int = 0) -> dict:
    """Stand-ins for the model-derived inputs `method` needs (msda.registry.GUIDANCE): the given logits, and
    seeded random non-negative saliency [B, H, W] and CAMs [B, 7, 7] on the images' device."""
    import msda
    needs = msda.methods_info()[method].needs
    g = torch.Generator().manual_seed(seed)
    batch, _, height, width = images.shape
    out = {}
    if "logits" in needs and logits is not None:
        out["logits"] = logits
    if "saliency" in needs:
        out["saliency"] = torch.rand(batch, height, width, generator=g).to(images.device)
    if "cams" in needs:
        out["cams"] = torch.rand(batch, 7, 7, generator=g).to(images.device)
    return out
