"""Class activation maps of any classifier, batched, as tensors: a thin, safe layer over ``pytorch-grad-cam``.

Selvaraju et al. "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization", ICCV 2017
(arXiv:1610.02391), and the variants the package implements: Grad-CAM++ (Chattopadhyay et al., WACV 2018,
arXiv:1710.11063), XGrad-CAM (Fu et al., BMVC 2020, arXiv:2008.02312), Eigen-CAM (Muhammad & Yeasin, IJCNN 2020,
arXiv:2008.00299), LayerCAM (Jiang et al., IEEE TIP 2021), Score-CAM (Wang et al., CVPRW 2020,
arXiv:1910.01279) and HiResCAM (Draelos & Carin 2020, arXiv:2011.08891).

What this layer adds to the package: one target per image (the package's loss is ``sum(target(output) for
target, output in zip(targets, outputs))``, so a single target given for a batch silently leaves every image
but the first with a zero CAM), the target layer chosen by :func:`msda.models.cam_layer`, hooks released and
the model's state (train/eval mode of every submodule, ``requires_grad`` and ``.grad`` of every parameter)
restored on return *and* on error, and a tensor on the images' device instead of a numpy array.
"""

from __future__ import annotations

import contextlib
import io
from typing import Iterator, Sequence

import torch
from torch import Tensor, nn

from msda._checks import check_choice, check_images, describe
from msda.models import cam_layer, cam_reshape

__all__ = ["cam", "cam_confidence_change", "CAM_METHODS", "evaluation_mode"]

CAM_METHODS: dict[str, str] = {
    "gradcam": "GradCAM",
    "gradcam++": "GradCAMPlusPlus",
    "xgradcam": "XGradCAM",
    "eigencam": "EigenCAM",
    "eigengradcam": "EigenGradCAM",
    "layercam": "LayerCAM",
    "scorecam": "ScoreCAM",
    "hirescam": "HiResCAM",
    "gradcam-elementwise": "GradCAMElementWise",
}
"""Method name → ``pytorch_grad_cam`` class name (the package is imported on first use: it takes seconds)."""

_SCORECAM_BATCH = 64  # masked copies per forward pass in Score-CAM (the package's default is 16)


def cam(model: nn.Module, images: Tensor, *, method: str = "gradcam", targets=None,
        layer: nn.Module | Sequence[nn.Module] | None = None) -> Tensor:
    """Class activation maps of `images` for one target class per image.

    Args:
        model: a classifier taking `images` and returning logits [B, K] (e.g. from
            :func:`analysis.load_checkpoint`); on the images' device. It is run in eval mode; its train/eval
            mode, ``requires_grad`` and ``.grad`` are restored afterwards, even when an error is raised.
        images: [B, C, H, W] finite floating point in the model's dtype, as the model takes them ([0, 1] for a
            ``Normalized`` model).
        method: one of ``CAM_METHODS`` (``eigencam`` is class-agnostic: it ignores `targets`).
        targets: None → each image's predicted class; an int → that class for every image; a [B] integer
            tensor or a list of B ints → one class per image.
        layer: the module (or modules, whose maps are averaged) to explain; default
            ``msda.models.cam_layer(model)`` (the last convolutional stage, looking through ``Normalized``).
            ViT token outputs are reshaped to maps with ``msda.models.cam_reshape(model)``.

    Returns a [B, H, W] tensor on the images' device and dtype with values in [0, 1]: the package's map at the
    layer's resolution, clipped at 0, bilinearly resized to H×W and min–max scaled per image (an image whose map
    is zero everywhere gets all zeros).

    The package works in numpy: it copies the layer's activations and gradients to the host and back, so on a
    GPU this costs a device → host transfer per call — its limitation, not this function's.
    Parameters are frozen for the call and the backward pass starts at the target layer: only the layers
    after it are differentiated, and the model's ``.grad`` is untouched.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    images = check_images(images)
    check_choice("method", method, tuple(CAM_METHODS))
    batch = images.shape[0]
    categories = _target_categories(targets, batch)
    layers = _target_layers(model, layer)
    parameters = list(model.parameters())
    if not parameters:
        raise ValueError("model has no parameters; pytorch-grad-cam needs at least one to find the model's device")
    _check_image_values(images, parameters[0])

    import pytorch_grad_cam  # deferred: importing the package (OpenCV, matplotlib, SciPy) takes seconds

    saved = _ModelState(model)
    explainer = None
    # Registered before the package's own hooks, so they see a layer output that requires grad.
    handles = [item.register_forward_hook(_start_graph_here) for item in layers]
    try:
        for parameter in parameters:
            parameter.requires_grad_(False)
        explainer = getattr(pytorch_grad_cam, CAM_METHODS[method])(
            model=model, target_layers=layers, reshape_transform=cam_reshape(model))
        if method == "scorecam":
            explainer.batch_size = _SCORECAM_BATCH
        package_targets = None if categories is None else [_ClassScore(c) for c in categories]
        inputs = images.detach().clone()  # a normal tensor even if `images` was made in inference mode
        # Score-CAM draws a tqdm bar per image on stderr; it would garble the caller's own progress output.
        quiet = contextlib.redirect_stderr(io.StringIO()) if method == "scorecam" else contextlib.nullcontext()
        with torch.enable_grad(), quiet:
            maps = explainer(input_tensor=inputs, targets=package_targets)
    finally:
        for handle in handles:
            handle.remove()
        if explainer is not None:
            # Not the package's ``with`` block: its __exit__ swallows IndexErrors (prints and returns True).
            explainer.activations_and_grads.release()
        saved.restore()
    result = torch.from_numpy(maps).to(device=images.device, dtype=images.dtype)
    return result.clamp_(0.0, 1.0)


def cam_confidence_change(model: nn.Module, images: Tensor, maps: Tensor, targets, *,
                          reference: Tensor | None = None) -> Tensor:
    """CAM faithfulness: how the target's probability changes when the image is multiplied by its CAM.

    ``pytorch_grad_cam.metrics.cam_mult_image.CamMultImageConfidenceChange`` with
    ``ClassifierOutputSoftmaxTarget``: ``p(t | x · cam) − p(t | x)``, x in [0, 1] (what the model takes: the
    pixels the CAM calls irrelevant go to black). A faithful map keeps what the class needs, so the value is
    near 0 or positive; a map on the wrong pixels removes the evidence and the value is negative, down to
    −p(t | x). One batched forward pass each for x and x · cam, on the model's device (the package multiplies
    image by image on the host — its limitation).

    Args:
        model: the classifier (run in eval mode; its modes restored).
        images: [B, C, H, W] as the model takes them.
        maps: [B, H, W] CAMs in [0, 1] (e.g. from :func:`cam`).
        targets: [B] integer classes (the classes the maps explain).
        reference: [B] ``p(t | x)`` when the caller has it already (saves the package's forward pass on x).

    Returns float32 [B] on the images' device.
    """
    images = check_images(images)
    batch, _, height, width = images.shape
    if not isinstance(maps, Tensor) or maps.shape != (batch, height, width):
        raise ValueError(f"maps must have shape [{batch}, {height}, {width}], got {describe(maps)}")
    categories = _target_categories(targets, batch)
    if categories is None:
        raise ValueError("targets must name the classes the maps explain (an int or one per image), got None")
    from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    if reference is not None and (not isinstance(reference, Tensor) or reference.shape != (batch,)):
        raise ValueError(f"reference must be p(target | image), shape [{batch}], got {describe(reference)}")
    metric = CamMultImageConfidenceChange()
    with torch.no_grad(), evaluation_mode(model):
        scores = metric(images.detach(), maps.detach().float().cpu().numpy(),
                        [ClassifierOutputSoftmaxTarget(c) for c in categories], model,
                        return_diff=reference is None)
    scores = torch.as_tensor(scores, dtype=torch.float32).reshape(batch).to(images.device)
    return scores if reference is None else scores - reference.detach().float().to(images.device)


def _check_image_values(images: Tensor, parameter: Tensor) -> None:
    """The images must match the model's dtype (conv layers refuse float64 for float32 weights with a message
    about "Double" and "Float") and be finite (one NaN pixel makes the whole map NaN, then min–max scaling
    silently returns zeros)."""
    if images.dtype != parameter.dtype:
        raise ValueError(f"images must have the model's dtype {parameter.dtype}, got {images.dtype} "
                         f"({describe(images)}); convert them with images.to({parameter.dtype})")
    if not bool(torch.isfinite(images).all()):
        bad = images.detach()[~torch.isfinite(images)].flatten()[0].item()
        raise ValueError(f"images must hold finite values, got {bad!r} ({describe(images)})")


def _start_graph_here(module: nn.Module, inputs, output):
    """Forward hook on the target layer: its output becomes the start of the autograd graph.

    With every parameter frozen nothing before the layer is differentiated, so the backward pass runs only
    through the layers after it (about a third of a ResNet for its last stage) instead of down to the input.
    The clone keeps in-place operations that some networks apply to the layer's output legal.
    """
    if isinstance(output, Tensor) and output.is_floating_point() and not output.requires_grad:
        return output.detach().requires_grad_().clone()
    return None


class _ClassScore:
    """The logit of one class; the package calls it with one image's output row [K]."""

    def __init__(self, category: int) -> None:
        self.category = category

    def __call__(self, output: Tensor) -> Tensor:
        if self.category >= output.shape[-1]:
            raise ValueError(f"targets must be class indices in [0, {output.shape[-1]}) for this model's "
                             f"{output.shape[-1]} outputs, got {self.category}")
        return output[..., self.category]


def _target_categories(targets, batch: int) -> list[int] | None:
    if targets is None:
        return None
    if isinstance(targets, Tensor):
        if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
            raise ValueError(f"targets must hold integer class indices, got dtype {targets.dtype}")
        if targets.ndim == 0:
            categories = [int(targets)] * batch
        elif targets.ndim == 1 and targets.shape[0] == batch:
            categories = targets.tolist()  # one host sync, at the boundary
        else:
            raise ValueError(f"targets must be an int, or one class per image: shape [{batch}]; "
                             f"got {describe(targets)}")
    elif isinstance(targets, int) and not isinstance(targets, bool):
        categories = [targets] * batch
    elif isinstance(targets, Sequence) and not isinstance(targets, str):
        if len(targets) != batch or not all(isinstance(t, int) and not isinstance(t, bool) for t in targets):
            raise ValueError(f"targets must be an int, or a list of {batch} ints (one per image); got {targets!r}")
        categories = list(targets)
    else:
        raise ValueError(f"targets must be None, an int, a list of ints or an integer tensor; got {describe(targets)}")
    negative = [c for c in categories if c < 0]
    if negative:
        raise ValueError(f"targets must be class indices ≥ 0, got {negative[0]}")
    return categories


def _target_layers(model: nn.Module, layer) -> list[nn.Module]:
    if layer is None:
        return [cam_layer(model)]
    layers = [layer] if isinstance(layer, nn.Module) else list(layer) if isinstance(layer, Sequence) else None
    if not layers or not all(isinstance(item, nn.Module) for item in layers):
        raise ValueError(f"layer must be a submodule of the model (or a list of them), got {describe(layer)}")
    submodules = {id(module) for module in model.modules()}
    for item in layers:
        if id(item) not in submodules:
            raise ValueError(f"layer {type(item).__name__} is not a submodule of the model; pick one from "
                             "model.named_modules()")
    return layers


class _ModelState:
    """Train/eval mode of every submodule, and ``requires_grad`` and ``.grad`` of every parameter."""

    def __init__(self, model: nn.Module) -> None:
        self.modes = [(module, module.training) for module in model.modules()]
        self.parameters = [(p, p.requires_grad, p.grad) for p in model.parameters()]

    def restore(self) -> None:
        for module, training in self.modes:
            module.training = training
        for parameter, requires_grad, grad in self.parameters:
            parameter.requires_grad_(requires_grad)
            parameter.grad = grad


@contextlib.contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run `model` in eval mode inside the block; every submodule's mode is restored afterwards."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training
