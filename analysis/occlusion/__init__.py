"""Occlusion: occluders, Zeiler–Fergus sensitivity maps, and the side-by-side study of whether models latch on.

Lee et al. "SmoothMix: a Simple Yet Effective Data Augmentation to Train Robust Classifiers", CVPRW 2020
(smoothmix.md §1, Fig. 2) show CAMs of models on test images covered by a box and argue, by eye, that a model
trained with hard-edged masks (CutMix) "latches on" to the occluder's strong edges. :func:`occlusion_study` turns
that into numbers: accuracy and confidence under occlusion, how often the prediction flips, and the *latching
score* — how much of the Grad-CAM (Selvaraju et al., ICCV 2017, arXiv:1610.02391) energy falls on the occluder
relative to its area. With object masks it also scores localisation, including the pointing game (Zhang et al.
"Top-down Neural Attention by Excitation Backprop", ECCV 2016, arXiv:1608.00507).
:func:`occlusion_sensitivity` is the sliding-window map of Zeiler & Fergus, "Visualizing and Understanding
Convolutional Networks", ECCV 2014 (arXiv:1311.2901), batched over windows.

The paper describes two occluders (§1): boxes with "50 % transparency and no borders" and boxes with "100 %
transparency and thick borders" (its caption calls them "translucent square boxes" and "square windows", and
lists them in the opposite order to the text). This module renders ``translucent`` (the 50 % blend), ``solid``
(an opaque box with a thick contrasting border — the hard-edged occluder the study needs), ``frame`` (the border
alone, the box left fully transparent: the literal "100 % transparency and thick borders" reading) and
``smooth`` (an opaque core whose opacity ramps linearly to zero towards the box's edges, as SmoothMix-S's patch
does — the soft-edged counterpart of ``solid``).

An occluder must not be a class shape: if it is, a model that predicts that class is right to look at it, and
latching measures the dataset, not the model. Shapes version 1 has a ``square`` class (and ``diamond``, a
rotated square), so every box occluder *is* a class there; version 2 (:mod:`msda.data.shapes`) has no box-like
class — a solid rectangle is no class in v2. :mod:`.class_shapes` measures it: the occluder's silhouette
against every class, best IoU over rotations and ±20 % scale. Measured (``occluder_class_iou``, 32 px, box
0.1 of the image): version 2 — solid/translucent/smooth closest to circle 0.83, frame to ring 0.50;
version 1 — solid/translucent/smooth match square at 1.00. The command line refuses a kind whose IoU reaches
0.85 (``--allow-class-shaped-occluders`` runs it and the table flags it) and reports every kind's closest
class. Beside the latching score, the study reports CAM *faithfulness* — the grad-cam package's
``CamMultImageConfidenceChange`` (:func:`analysis.cam.cam_confidence_change`) — so a latching score can be read
against whether the map is one the model acts on. The command line keeps every model's per-item outcomes
(``occlusion_outcomes.safetensors``) and, with several methods or seeds, adds a per-method table: each metric's
mean with its 95 % interval and the paired difference to ``none`` with :func:`analysis.stats.compare`'s verdict
(items are images, their occluded copies averaged), and with ``--replication-data-seed`` whether each verdict
replicates on an independent test split.

Boxes are ``(x0, y0, x1, y1)`` in pixels, half-open: a pixel (row i, column j) is inside when its centre
``(j + 0.5, i + 0.5)`` satisfies ``x0 < j + 0.5 < x1`` and ``y0 < i + 0.5 < y1`` — for integer coordinates,
columns ``x0 … x1 − 1`` and rows ``y0 … y1 − 1``. Fractions of the image size are not accepted (use
``boxes * torch.tensor([W, H, W, H])``). Boxes may reach outside the image; only the part inside is drawn.

Run the study from the command line (CSV + JSON + self-contained HTML report):

    python -m analysis.occlusion --checkpoints checkpoints/*.safetensors --data shapes --n 1000 --out reports/occlusion
    python -m analysis.occlusion --checkpoints 'runs/shapes-scratch/*.safetensors' --n 200 --out reports/occlusion
"""

from .class_shapes import MATCH_IOU, matching_classes, occluder_class_iou
from .occluders import OCCLUDER_KINDS, occlude, occluder_region, sample_boxes
from .sensitivity import occlusion_sensitivity
from .study import STUDY_METRICS, occlusion_study

__all__ = ["MATCH_IOU", "OCCLUDER_KINDS", "matching_classes", "occluder_class_iou", "STUDY_METRICS", "occlude", "occluder_region", "sample_boxes",
           "occlusion_sensitivity", "occlusion_study"]
