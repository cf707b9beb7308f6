"""What a card exports: the mixed image and the mask as PNG, the pair as PNG, and two pieces of msda code.

:func:`reproduce_snippet` runs as pasted: it loads the same two images (scikit-image's photos by name, any
other pair from the PNG the page offers for download), builds the batch [A, B] the way the app does, mixes it
with the card's seed and pinned parameters — so msda draws exactly the values the card shows — and saves the
mixed image and the mask, equal to the card's bit for bit. :func:`training_snippet` is the same mixer in a
training loop, with the number of classes of your data as a placeholder.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .images import to_png
from .mixing import HARDMIX_LOGITS, LABELS, NUM_CLASSES

GUIDANCE_CALLS = {"saliency": "input_gradient_saliency", "cams": "class_activation_maps"}
"""The msda.guidance function that makes each model-derived input."""

PAIR_FILE = "msda_pair_{size}.png"
"""File name of the pair download: A and B side by side at the working size, lossless."""


def mixed_png(mixed: np.ndarray) -> bytes:
    return to_png(mixed)


def mask_png(mask: np.ndarray) -> bytes:
    """8-bit grey PNG of a [0, 1] mask: white is A (weight 1), black is B."""
    return to_png(mask_grey(mask))


def mask_grey(mask: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(mask, 0.0, 1.0) * 255).astype(np.uint8)


def pair_png(a: np.ndarray, b: np.ndarray) -> bytes:
    """A and B (uint8 [S, S, 3] each) side by side: the file :func:`reproduce_snippet` reads for uploads."""
    return to_png(np.concatenate([a, b], axis=1))


def _literal(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if "." in f"{value:.6g}" or "e" in f"{value:.6g}" else f"{value:.1f}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value)


def _mixer_arguments(method: str, params: dict[str, Any], alpha: float | None, num_classes: str) -> list[str]:
    arguments = [repr(method), f"num_classes={num_classes}"]
    if alpha is not None:
        arguments.append(f"alpha={_literal(float(alpha))}")
    arguments.append("generator=g")
    return arguments + [f"{name}={_literal(value)}" for name, value in params.items()]


def _load_lines(photos: tuple[str | None, str | None], size: int) -> list[str]:
    if all(photos):
        return [
            "def photo(name, size):",
            "    # scikit-image's photo, centre-cropped to a square and resized (Lanczos), as the app does",
            "    pixels = getattr(skimage.data, name)()",
            "    if pixels.ndim == 2:",
            "        pixels = np.repeat(pixels[..., None], 3, axis=2)",
            "    image = Image.fromarray(np.ascontiguousarray(pixels[..., :3]))",
            "    return np.asarray(ImageOps.fit(image, (size, size), Image.Resampling.LANCZOS))",
            "",
            f"a, b = photo({photos[0]!r}, {size}), photo({photos[1]!r}, {size})",
        ]
    return [
        f"# The pair as the app used it: “Download the pair (PNG)” under the images saves {PAIR_FILE.format(size=size)}",
        f"pair = np.asarray(Image.open({PAIR_FILE.format(size=size)!r}).convert('RGB'))",
        f"a, b = pair[:, :{size}], pair[:, {size}:]",
    ]


def _guidance_lines(guidance, size: int) -> tuple[list[str], list[str]]:
    """(imports, lines) that build the card's saliency or CAMs as ``saliency``/``cams``: the same checkpoint
    on the pair resized to its input size, or the image-only fine-grained map."""
    need = guidance.need
    if guidance.checkpoint is None:
        lines = ["# The card's image-only guidance: msda's fine-grained saliency (SaliencyMix's detector)",
                 "saliency = fine_grained(images)  # [2, H, W]"]
        if need == "cams":
            lines.append(f"cams = F.adaptive_avg_pool2d(saliency[:, None], {guidance.tensors[need].shape[-1]})"
                         "[:, 0]  # averaged onto cells, as CAMs")
        return ["import torch.nn.functional as F", "from msda._saliency import fine_grained"], lines
    call = GUIDANCE_CALLS[need]
    model_size = guidance.model_size
    labels = list(guidance.model_labels)
    lines = [
        f"# The card's guidance: {guidance.checkpoint.rsplit('/', 1)[-1]} (a {model_size}-px classifier) on the "
        f"pair resized to {model_size} px",
        f"model, meta = load_checkpoint({guidance.checkpoint!r})",
        f"small = F.interpolate(images, size=({model_size}, {model_size}), mode='bilinear', antialias=True, "
        "align_corners=False)",
        f"model_labels = torch.tensor({labels})  # {', '.join(map(repr, guidance.classes))} in the model's classes",
        f"{need} = msda.guidance.{call}(model, small, model_labels)",
    ]
    if need == "saliency":
        lines.append(f"saliency = F.interpolate(saliency[:, None], size=({size}, {size}), mode='bilinear', "
                     "align_corners=False)[:, 0]  # back to the working size")
    return ["import torch.nn.functional as F", "from analysis import load_checkpoint"], lines


def reproduce_snippet(method: str, *, params: dict[str, Any], alpha: float | None, seed: int, lam: float | None,
                      photos: tuple[str | None, str | None], size: int, class_names: tuple[str, str],
                      needs_logits: bool, guidance=None) -> str:
    """Self-contained code that redraws the card and saves its mixed image and mask as PNG.

    ``photos`` are the scikit-image names of A and B (None for an upload or a shapes sample: the code then
    reads the pair download); ``lam`` is the λ the card passed (None when λ was drawn); ``guidance`` (a
    :class:`.guidance.Guidance`) the saliency or CAMs of a model-guided card, which the code builds again.
    """
    call = ["images", "labels"]
    if lam is not None:
        call.append(f"lam={_literal(float(lam))}")
    if needs_logits:
        call.append(f"logits=torch.tensor({[list(row) for row in HARDMIX_LOGITS]})")
    guidance_imports, guidance_lines = ([], [])
    if guidance is not None:
        guidance_imports, guidance_lines = _guidance_lines(guidance, size)
        call.append(f"{guidance.need}={guidance.need}")
    imports = "import numpy as np, torch" + (", skimage.data" if all(photos) else "")
    lines = [
        imports,
        *guidance_imports,
        "from PIL import Image" + (", ImageOps" if all(photos) else ""),
        "import msda",
        "",
        *_load_lines(photos, size),
        "images = torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2).float() / 255.0  # [2, 3, H, W] in [0, 1]",
        f"labels = torch.tensor({list(LABELS)})  # {class_names[0]!r}, {class_names[1]!r}",
        "",
        *(guidance_lines + [""] if guidance_lines else []),
        f"g = torch.Generator().manual_seed({seed})  # the card's seed: msda draws the same values",
        f"mixer = msda.Mixer({', '.join(_mixer_arguments(method, params, alpha, str(NUM_CLASSES)))})",
        f"out = mixer({', '.join(call)})",
        ("print('effective λ', round(out.lam[0].item(), 4), '· drawn:', {k: v for k, v in out.params.items()"
        " if k != 'method'})"),
        "",
        "# Sample A of the batch, as the card shows it",
        "mixed = (out.images[0].clamp(0, 1).permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()",
        f"Image.fromarray(mixed).save({method + '_mixed.png'!r})",
        f"Image.fromarray((out.mask[0, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()).save({method + '_mask.png'!r})",
    ]
    return "\n".join(lines)


def training_snippet(method: str, *, params: dict[str, Any], alpha: float | None, needs_logits: bool,
                     needs: tuple[str, ...] = ()) -> str:
    """The card's mixer in a training loop (λ drawn per sample); ``loader``, ``model`` and ``optimizer`` are
    yours. A model-guided method gets its saliency or CAMs from the model being trained (msda.guidance)."""
    loop_call = "images, labels, logits=model(images)" if needs_logits else "images, labels"
    for need in needs:
        if need in GUIDANCE_CALLS:
            loop_call += f", {need}=msda.guidance.{GUIDANCE_CALLS[need]}(model, images, labels)"
    return "\n".join([
        "import torch, msda",
        "",
        "NUM_CLASSES = 10  # the number of classes of your data",
        "g = torch.Generator().manual_seed(0)",
        f"mixer = msda.Mixer({', '.join(_mixer_arguments(method, params, alpha, 'NUM_CLASSES'))})",
        "for images, labels in loader:",
        f"    images, targets = mixer({loop_call})",
        "    loss = msda.soft_cross_entropy(model(images), targets)",
        "    optimizer.zero_grad()",
        "    loss.backward()",
        "    optimizer.step()",
    ])
