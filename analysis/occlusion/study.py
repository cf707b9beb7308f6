"""The side-by-side occlusion study: accuracy, confidence, flips, latching and localisation per model and
occluder (see :mod:`analysis.occlusion`)."""

from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from msda._checks import check_choice, check_images, check_int, describe
from ..cam import CAM_METHODS, cam, cam_confidence_change, evaluation_mode
from .occluders import OCCLUDER_KINDS, _check_boxes, occlude, occluder_region, sample_boxes

STUDY_METRICS: dict[str, str] = {
    "clean_accuracy": "fraction of the clean images classified correctly",
    "occluded_accuracy": "fraction of the occluded copies classified correctly",
    "true_prob_drop": "mean over occluded copies of p(true class | clean) − p(true class | occluded)",
    "flip_rate": "fraction of occluded copies whose predicted class differs from the clean image's",
    "latching": "mean over occluded copies of (CAM energy inside the occluder / total CAM energy) divided by "
                "(occluder area / image area); 1 = indifferent, > 1 = drawn to the occluder",
    "latching_clean": "the same ratio for the clean image's CAM over the same region (the baseline: how much "
                      "the model looked there before anything was drawn)",
    "faithfulness": "CAM faithfulness on the occluded copies (pytorch_grad_cam's CamMultImageConfidenceChange): "
                    "mean of p(t | x̃ · cam) − p(t | x̃), t the class the CAM explains; near 0 or above = the CAM "
                    "keeps what the class needs, negative = it points elsewhere",
    "faithfulness_clean": "the same on the clean images (the baseline)",
    "localisation": "mean over clean images of (CAM energy inside the object / total) / (object area / image "
                    "area); 1 = no better than uniform",
    "pointing": "pointing game: fraction of clean images whose CAM maximum lies on the object",
    "localisation_occluded": "localisation of the occluded copies' CAMs",
    "pointing_occluded": "pointing game on the occluded copies",
    "occluder_area": "mean fraction of the image the occluder changes (box, plus its border for solid/frame)",
}
"""The study's columns and their exact definitions (also written into the reports)."""

# ----------------------------------------------------------------------------------------------- the study


def occlusion_study(models: Mapping[str, nn.Module], images: Tensor, labels: Tensor, *,
                    kinds: Sequence[str] = ("solid", "translucent", "smooth"), n_boxes: int = 4,
                    box_frac: float = 0.1, generator: torch.Generator | None = None, masks: Tensor | None = None,
                    boxes: Tensor | None = None, cam_method: str = "gradcam", cam_target: str = "label",
                    fill=None, border: float | None = None, pointing_tolerance: int = 0, batch_size: int = 128,
                    progress: bool = False, outcomes: dict | None = None):
    """Compare how models react to occluders: accuracy, confidence, prediction flips and CAM latching.

    Every image gets `n_boxes` boxes of area `box_frac` (:func:`sample_boxes`, drawn once from `generator` —
    or pinned with `boxes`); each occluder kind is drawn in each box, one box per occluded copy, and the *same*
    boxes serve every model and every kind, so the rows compare fairly.

    Args:
        models: name → classifier taking `images` (e.g. from :func:`analysis.load_checkpoint`), all on the images'
            device. Run in eval mode (their modes are restored).
        images: [B, C, H, W] in [0, 1].
        labels: [B] true classes.
        kinds: occluder kinds to test (``OCCLUDER_KINDS``).
        n_boxes: occluded copies per image and kind.
        box_frac: box area as a fraction of the image.
        generator: the torch.Generator the boxes are drawn from (required unless `boxes` is given).
        masks: optional ground-truth object masks [B, 1, H, W] or [B, H, W] (> 0.5 = object), e.g. from the
            shapes dataset; adds the localisation columns.
        boxes: pin the boxes instead of sampling them: [B, n_boxes, 4] ``(x0, y0, x1, y1)`` in pixels.
        cam_method: one of ``analysis.CAM_METHODS``.
        cam_target: class the CAMs explain — "label" (the true class: one target for clean and occluded images,
            as the pointing game prescribes) or "predicted" (each image's own prediction).
        fill: the occluders' colour (see :func:`occlude`).
        border: ring width in pixels of ``solid`` and ``frame`` (default: :func:`occlude`'s); the other kinds
            ignore it.
        pointing_tolerance: the pointing game counts a hit within this many pixels of the object (Zhang et al.
            use 15 px at ImageNet resolution; 0 = on the object).
        batch_size: about how many occluded images go through the model (and the CAM) at once.
        progress: show a tqdm bar.
        outcomes: a dict to fill with every model's per-item outcomes, model → {name → tensor} on the CPU:
            per image ``[B]`` ``clean/correct``, ``clean/faithfulness``, ``clean/localisation``,
            ``clean/pointing``; per occluded copy ``[B, n_boxes]`` the hits ``<kind>/correct``, ``<kind>/flip``
            and ``<kind>/pointing`` (bool); per image ``[B]`` the scores ``<kind>/prob_drop``,
            ``<kind>/latching``, ``<kind>/latching_clean``, ``<kind>/faithfulness`` and
            ``<kind>/localisation``, each the mean over the image's copies (float32, NaN left out; NaN when no
            copy defines it). A row's hit rate is the mean of its hits; its score means are over copies, so they
            can differ slightly from the mean of the per-image means, which the per-method verdicts use.

    Returns a pandas DataFrame, one row per (model, kind), with columns ``model``, ``kind``, ``images``,
    ``occluded_images``, ``occluder_area`` and the metrics (``STUDY_METRICS`` holds the same text):

    - ``clean_accuracy`` = mean over images of [argmax f(x) = y];
    - ``occluded_accuracy`` = mean over occluded copies of [argmax f(x̃) = y];
    - ``true_prob_drop`` = mean over occluded copies of p(y | x) − p(y | x̃), p the softmax;
    - ``flip_rate`` = mean over occluded copies of [argmax f(x̃) ≠ argmax f(x)];
    - ``latching`` = mean over occluded copies of ``(Σ_R cam(x̃) / Σ cam(x̃)) / (|R| / HW)``, R the occluder's
      region (:func:`occluder_region`: the pixels it changes) — 1 when the CAM is indifferent to the occluder,
      > 1 when drawn to it;
    - ``latching_clean`` = the same ratio with the clean image's CAM, cam(x), over the same R: the baseline
      (a box that lands on the object scores > 1 even for an unaffected model);
    - ``faithfulness`` = mean over occluded copies of p(t | x̃ · cam(x̃)) − p(t | x̃), t the CAM's class
      (:func:`analysis.cam.cam_confidence_change`, the grad-cam package's ``CamMultImageConfidenceChange``):
      whether the map the latching score reads is one the model acts on; ``faithfulness_clean`` the same on
      the clean images;
    - with `masks`, M the object: ``localisation`` = mean over images of ``(Σ_M cam(x) / Σ cam(x)) / (|M| / HW)``,
      ``pointing`` = mean over images of [argmax cam(x) ∈ M dilated by `pointing_tolerance`] (the first maximum
      in raster order; a CAM that is zero everywhere is a miss), and ``localisation_occluded`` /
      ``pointing_occluded`` the same on the occluded copies.

    CAMs are min–max scaled per image (:func:`analysis.cam`). Copies whose CAM is zero everywhere have no
    defined energy fractions and are left out of the latching and localisation means (as are images with an
    empty mask). Image-level columns (clean accuracy, localisation, pointing) repeat on every kind's row.
    """
    import pandas as pd
    from tqdm.auto import tqdm

    models = _check_models(models)
    images = check_images(images)
    b, c, height, width = images.shape
    labels = _check_labels(labels, b, images.device)
    kinds = _check_kinds(kinds)
    check_choice("cam_method", cam_method, tuple(CAM_METHODS))
    check_choice("cam_target", cam_target, ("label", "predicted"))
    pointing_tolerance = check_int("pointing_tolerance", pointing_tolerance, low=0)
    batch_size = check_int("batch_size", batch_size, low=1)
    if boxes is None:
        n_boxes = check_int("n_boxes", n_boxes, low=1)
        if generator is None:
            raise ValueError("occlusion_study needs generator=torch.Generator().manual_seed(…) to draw the boxes "
                             "(or pin them with boxes=[B, n_boxes, 4])")
        boxes = sample_boxes(b * n_boxes, height, width, box_frac=box_frac, generator=generator)
    else:
        if not isinstance(boxes, Tensor) or boxes.ndim != 3 or boxes.shape[0] != b or boxes.shape[2] != 4:
            raise ValueError(f"boxes must have shape [{b}, n_boxes, 4] (x0, y0, x1, y1) in pixels, "
                             f"got {describe(boxes)}")
        n_boxes = boxes.shape[1]
    boxes = _check_boxes(boxes.reshape(-1, 4), b * n_boxes, images.device).view(b, n_boxes, 4)
    objects = None if masks is None else _check_masks(masks, b, height, width, images.device)
    for kind in kinds:  # fail before any model runs
        occlude(images[:1], boxes[0, :1], kind=kind, fill=fill, border=_ring(kind, border))

    per_chunk = max(1, batch_size // n_boxes)
    starts = range(0, b, per_chunk)
    bar = tqdm(total=len(models) * len(starts), unit="batch", desc="occlusion study", disable=not progress)
    rows = []
    try:
        for name, model in models.items():
            totals: dict[str, list[Tensor]] = {}
            for start in starts:
                chunk = slice(start, start + per_chunk)
                _study_chunk(model, images[chunk], labels[chunk], boxes[chunk],
                             None if objects is None else objects[chunk], kinds, totals, cam_method=cam_method,
                             cam_target=cam_target, fill=fill, border=border, tolerance=pointing_tolerance)
                bar.update(1)
            rows.extend(_summarise(name, kinds, totals, b, n_boxes, with_masks=objects is not None))
            if outcomes is not None:
                outcomes[name] = _per_item(totals, n_boxes)
    finally:
        bar.close()
    return pd.DataFrame(rows)


def _study_chunk(model, images, labels, boxes, objects, kinds, totals, *, cam_method, cam_target, fill, border,
                 tolerance) -> None:
    """Add one chunk's per-image and per-copy values to `totals` (lists of tensors, concatenated at the end)."""
    b, _, height, width = images.shape
    n_boxes = boxes.shape[1]
    add = lambda key, value: totals.setdefault(key, []).append(value.float())  # noqa: E731

    with torch.no_grad(), evaluation_mode(model):
        clean_probs = F.softmax(model(images).float(), dim=1)
    if bool((labels >= clean_probs.shape[1]).any()):
        raise ValueError(f"labels must be in [0, {clean_probs.shape[1]}) for a model with {clean_probs.shape[1]} "
                         f"outputs, got {describe(labels)}")
    clean_pred = clean_probs.argmax(1)
    clean_true_p = clean_probs.gather(1, labels[:, None])[:, 0]
    clean_targets = labels if cam_target == "label" else clean_pred
    clean_cam = cam(model, images, method=cam_method, targets=clean_targets)
    add("clean_correct", (clean_pred == labels))
    add("faithfulness_clean", cam_confidence_change(model, images, clean_cam, clean_targets,
                                                    reference=clean_probs.gather(1, clean_targets[:, None])[:, 0]))
    if objects is not None:
        add("localisation", energy_ratio(clean_cam, objects))
        add("pointing", _pointing_hit(clean_cam, objects, tolerance))

    repeat = lambda t: t.repeat_interleave(n_boxes, 0)  # noqa: E731  (image i → copies i·n … i·n + n − 1)
    copies, copy_labels, flat_boxes = repeat(images), repeat(labels), boxes.reshape(-1, 4)
    copy_clean_cam = repeat(clean_cam)
    for kind in kinds:
        occluded = occlude(copies, flat_boxes, kind=kind, fill=fill, border=_ring(kind, border))
        with torch.no_grad(), evaluation_mode(model):
            probs = F.softmax(model(occluded).float(), dim=1)
        pred = probs.argmax(1)
        targets = copy_labels if cam_target == "label" else pred
        occluded_cam = cam(model, occluded, method=cam_method, targets=targets)
        add(f"{kind}/faithfulness", cam_confidence_change(model, occluded, occluded_cam, targets,
                                                          reference=probs.gather(1, targets[:, None])[:, 0]))
        region = occluder_region(flat_boxes, height, width, kind=kind, border=_ring(kind, border))[:, 0]
        add(f"{kind}/correct", pred == copy_labels)
        add(f"{kind}/prob_drop", repeat(clean_true_p) - probs.gather(1, copy_labels[:, None])[:, 0])
        add(f"{kind}/flip", pred != repeat(clean_pred))
        add(f"{kind}/latching", energy_ratio(occluded_cam, region))
        add(f"{kind}/latching_clean", energy_ratio(copy_clean_cam, region))
        add(f"{kind}/area", region.float().mean((1, 2)))
        if objects is not None:
            add(f"{kind}/localisation", energy_ratio(occluded_cam, repeat(objects)))
            add(f"{kind}/pointing", _pointing_hit(occluded_cam, repeat(objects), tolerance))


HIGHER_IS_BETTER: dict[str, bool] = {
    "clean_accuracy": True, "occluded_accuracy": True, "true_prob_drop": False, "flip_rate": False,
    "latching": False, "latching_clean": False, "faithfulness": True, "faithfulness_clean": True,
    "localisation": True, "pointing": True, "localisation_occluded": True, "pointing_occluded": True,
}
"""Which way each metric's verdict reads "better": more accuracy, fewer flips, a smaller drop, a CAM less drawn to
the occluder (lower latching), a more faithful and better localised CAM."""

_METRIC_OUTCOME = {
    "clean_accuracy": "clean/correct", "faithfulness_clean": "clean/faithfulness",
    "localisation": "clean/localisation", "pointing": "clean/pointing",
    "occluded_accuracy": "{kind}/correct", "true_prob_drop": "{kind}/prob_drop", "flip_rate": "{kind}/flip",
    "latching": "{kind}/latching", "latching_clean": "{kind}/latching_clean", "faithfulness": "{kind}/faithfulness",
    "localisation_occluded": "{kind}/localisation", "pointing_occluded": "{kind}/pointing",
}


def metric_cells(outcomes: Mapping[str, Mapping[str, Tensor]], kinds: Sequence[str]) -> dict:
    """(kind,), metric → {model → per-image outcome [B]} for :func:`analysis.verdicts.method_table`: a per-copy
    outcome is averaged over the image's occluded copies (NaN left out), so the bootstrap resamples images —
    the copies of one image share its difficulty and are not independent items."""
    from ..verdicts import per_item_mean

    cells = {}
    for kind in kinds:
        for metric, template in _METRIC_OUTCOME.items():
            key = template.format(kind=kind)
            models = {name: values[key] for name, values in outcomes.items() if key in values}
            if not models:
                continue
            cells[(kind,), metric] = {name: value.double() if value.ndim == 1 else
                                      per_item_mean(value, value.shape[-1]) for name, value in models.items()}
    return cells


ITEM_OUTCOMES = {"clean_correct": "clean/correct", "faithfulness_clean": "clean/faithfulness",
                 "localisation": "clean/localisation", "pointing": "clean/pointing"}
"""The per-image keys of the study's running totals → their names in the outcomes (per-copy keys keep theirs)."""

_HITS = ("correct", "flip", "pointing")  # per-item hits, kept as booleans


def _per_item(totals: dict[str, list[Tensor]], n_boxes: int) -> dict[str, Tensor]:
    """One model's per-item outcomes from the study's totals: per image [B], per occluded copy [B, n_boxes]."""
    out = {}
    for key, parts in totals.items():
        if key.endswith("/area"):
            continue
        values = torch.cat(parts).cpu()
        name = ITEM_OUTCOMES.get(key, key)
        if name.split("/")[-1] in _HITS:
            values = values > 0.5
            out[name] = values if name.startswith("clean/") else values.view(-1, n_boxes)
        else:  # a score per image: the mean over its copies (float16 on disk; per copy it would be 4× larger)
            out[name] = values if name.startswith("clean/") else values.view(-1, n_boxes).nanmean(1)
    return out


def _ring(kind: str, border: float | None) -> float | None:
    """The study's `border` is the ring width of solid/frame; the other kinds keep their defaults."""
    return border if kind in ("solid", "frame") else None


def energy_ratio(maps: Tensor, region: Tensor) -> Tensor:
    """[B]: (share of the map's energy inside `region`) / (region's share of the area); NaN when undefined."""
    region = region.to(maps.dtype)
    total = maps.sum((1, 2))
    share = (maps * region).sum((1, 2)) / total
    area = region.mean((1, 2))
    ratio = share / area
    return torch.where((total > 0) & (area > 0), ratio, torch.full_like(ratio, float("nan")))


def _pointing_hit(maps: Tensor, objects: Tensor, tolerance: int) -> Tensor:
    """[B] bool: the map's first maximum lies on the object (dilated by `tolerance` px); all-zero maps miss."""
    target = objects.float()
    if tolerance:
        target = F.max_pool2d(target[:, None], 2 * tolerance + 1, stride=1, padding=tolerance)[:, 0]
    peak = maps.flatten(1).argmax(1)
    hit = target.flatten(1).gather(1, peak[:, None])[:, 0] > 0
    return hit & (maps.flatten(1).amax(1) > 0)


def _summarise(name: str, kinds: Sequence[str], totals: dict[str, list[Tensor]], b: int, n_boxes: int,
               with_masks: bool) -> list[dict]:
    mean = lambda key: float(torch.cat(totals[key]).nanmean()) if key in totals else float("nan")  # noqa: E731
    rows = []
    for kind in kinds:
        row = {"model": name, "kind": kind, "images": b, "occluded_images": b * n_boxes,
               "occluder_area": mean(f"{kind}/area"),
               "clean_accuracy": mean("clean_correct"), "occluded_accuracy": mean(f"{kind}/correct"),
               "true_prob_drop": mean(f"{kind}/prob_drop"), "flip_rate": mean(f"{kind}/flip"),
               "latching": mean(f"{kind}/latching"), "latching_clean": mean(f"{kind}/latching_clean"),
               "faithfulness": mean(f"{kind}/faithfulness"), "faithfulness_clean": mean("faithfulness_clean")}
        if with_masks:
            row.update(localisation=mean("localisation"), pointing=mean("pointing"),
                       localisation_occluded=mean(f"{kind}/localisation"),
                       pointing_occluded=mean(f"{kind}/pointing"))
        rows.append(row)
    return rows


def _check_models(models) -> dict[str, nn.Module]:
    if not isinstance(models, Mapping) or not models:
        raise ValueError(f"models must be a non-empty dict name → torch.nn.Module, got {describe(models)}")
    for name, model in models.items():
        if not isinstance(name, str) or not isinstance(model, nn.Module):
            raise ValueError(f"models must map names (str) to torch.nn.Module, got {name!r} → {type(model).__name__}")
    return dict(models)


def _check_labels(labels, batch: int, device: torch.device) -> Tensor:
    if not isinstance(labels, Tensor) or labels.shape != (batch,) or labels.is_floating_point() \
            or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be an integer tensor of shape [{batch}], got {describe(labels)}")
    if bool((labels < 0).any()):
        raise ValueError(f"labels must be class indices ≥ 0, got {describe(labels)}")
    return labels.to(device=device, dtype=torch.long)


def _check_kinds(kinds) -> tuple[str, ...]:
    if isinstance(kinds, str) or not isinstance(kinds, Sequence) or not kinds:
        raise ValueError(f"kinds must be a non-empty list of occluder kinds from {OCCLUDER_KINDS}, got {kinds!r}")
    for kind in kinds:
        check_choice("kind", kind, OCCLUDER_KINDS)
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"kinds must not repeat a kind, got {list(kinds)}")
    return tuple(kinds)


def _check_masks(masks, batch: int, height: int, width: int, device: torch.device) -> Tensor:
    if isinstance(masks, Tensor) and masks.ndim == 4 and masks.shape[1] == 1:
        masks = masks[:, 0]
    if not isinstance(masks, Tensor) or masks.shape != (batch, height, width):
        raise ValueError(f"masks must have shape [{batch}, 1, {height}, {width}] or [{batch}, {height}, {width}], "
                         f"got {describe(masks)}")
    return (masks.to(device).float() > 0.5)


