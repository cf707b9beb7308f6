"""The example images offered without any upload: photos bundled with scikit-image and samples of msda's
synthetic shapes dataset (rendered on demand, deterministic)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import skimage.data
import torch

from .images import DecodedImage

# skimage.data function → (what the menu shows, default class name)
PHOTOS = {
    "astronaut": ("astronaut (photo)", "astronaut"),
    "chelsea": ("cat (photo)", "cat"),
    "coffee": ("coffee cup (photo)", "coffee"),
    "rocket": ("rocket (photo)", "rocket"),
    "hubble_deep_field": ("galaxies (Hubble photo)", "galaxies"),
    "immunohistochemistry": ("tissue (microscope photo)", "tissue"),
    "camera": ("cameraman (grey photo)", "cameraman"),
    "coins": ("coins (grey photo)", "coins"),
}
SHAPES_SPLIT = "test"
SHAPES_SAMPLES = 8
SHAPES_SEED = 0


@dataclass(frozen=True)
class Example:
    """One entry of the example menu; ``key`` is "photo:<name>" or "shapes:<index>"."""

    key: str
    label: str
    class_name: str


def photo_examples() -> list[Example]:
    return [Example(f"photo:{name}", label, class_name) for name, (label, class_name) in PHOTOS.items()]


def shapes_examples(labels: list[int], classes: list[str]) -> list[Example]:
    """Menu entries for the first shapes samples, given their labels and the dataset's class names."""
    return [Example(f"shapes:{index}", f"{classes[label]} (shapes sample {SHAPES_SPLIT} #{index})", classes[label])
            for index, label in enumerate(labels)]


def shapes_labels() -> tuple[list[int], list[str]]:
    """Labels of the first :data:`SHAPES_SAMPLES` shapes samples (rendered at the smallest size) and the classes."""
    from msda.data import Shapes  # imported on first use: the dataset module is only needed here

    dataset = Shapes(SHAPES_SPLIT, n=SHAPES_SAMPLES, size=16, seed=SHAPES_SEED)
    _, labels, _ = dataset.render(list(range(SHAPES_SAMPLES)))
    return labels.tolist(), list(dataset.classes)


def load_photo(name: str) -> DecodedImage:
    """An skimage.data photo as 8-bit RGB (grey photos repeated over the three channels)."""
    pixels = getattr(skimage.data, name)()
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    pixels = np.ascontiguousarray(pixels[..., :3])
    return DecodedImage(pixels=pixels, original_size=(pixels.shape[1], pixels.shape[0]))


def render_shapes_sample(index: int, size: int) -> np.ndarray:
    """Shapes sample ``index`` rendered at ``size`` × ``size`` (size ≥ 16); uint8 [size, size, 3]."""
    from msda.data import Shapes

    dataset = Shapes(SHAPES_SPLIT, n=SHAPES_SAMPLES, size=size, seed=SHAPES_SEED)
    images, _, _ = dataset.render([index])
    return (images[0].permute(1, 2, 0) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
