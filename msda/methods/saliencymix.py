"""SaliencyMix: the CutMix box is centred on the most salient point of the partner.

Uddin, Monira, Shin, Chung, Bae. "SaliencyMix: A Saliency Guided Data Augmentation Strategy for Better
Regularization", ICLR 2021. arXiv:2006.01791.

Detector. The paper takes the saliency map of the source image with Montabone & Soto's detector
("Human detection using a mobile platform and novel features derived from a visual saliency mechanism",
Image and Vision Computing 2010), and its official code calls OpenCV's ``StaticSaliencyFineGrained``. The
default ``saliency="fine_grained"`` is that detector re-implemented batched in torch
(:func:`msda._saliency.fine_grained`): on-/off-centre differences of the blurred grey image against the mean
of six surrounds (half-sides 12, 24, 48, 28, 56, 112) from one integral image, summed and normalised with
OpenCV's own byte arithmetic, so its maps — and their first maximum — equal OpenCV's bit for bit (tested
against ``opencv-contrib-python-headless`` on photos at 32, 64 and 224 px). It runs at the image's own
resolution, as the official code does. ``saliency="spectral_residual"`` keeps this project's earlier
detector (Hou & Zhang, CVPR 2007, on a ``saliency_size`` × ``saliency_size`` grey image).

Peak. The first maximum in row-major order (``np.argmax``'s tie-break, which matters: OpenCV's byte map
usually holds 255 at several pixels). The official code centres its box on the pixel index itself (it cuts
rows x − c … x + c − 1), so pixel (col, row) becomes the fractions (col / W, row / H) that CutMix's renderer
centres its box on.

This project's reading, where the official code and the paper's text part ways:

* one box per sample, around its own partner's peak (the official code computes one map, for the partner of
  sample 0, and cuts the same box from every image of the batch);
* the detector sees the 8-bit image round(255·x) in RGB order, which is what it is defined on (the official
  code hands OpenCV the normalised float32 tensor in RGB order; the detector then reads the bytes of the
  float grey image as if they were pixel levels, and its map no longer follows the image: on skimage's
  astronaut, chelsea, coffee and rocket, normalised with the official CIFAR mean and std, its correlation
  with the 8-bit map is between −0.02 and 0.01 and its peak lands in the top two rows for three of the four);
* the box has CutMix's sides round(W·√(1 − λ)) × round(H·√(1 − λ)), clipped at the border (the official
  2·⌊⌊W·√(1 − λ)⌋ / 2⌋ differs by at most two pixels); the label weight is the mask's mean, as always.

The box (area (1 − λ)·H·W before clipping) is cut from the partner around its saliency peak and pasted at the
same place in the image (salient-to-corresponding). ``center_x``/``center_y`` pinned replace the detected peak:
that is how a mix is replayed and how a user places the box.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._saliency import DETECTORS, peak_fractions, saliency_map
from ..distributions import Drawn
from ..registry import MaskMethod, MethodInfo, Mixed, Param, ParamReader, blend_into, get_method, register

INFO = MethodInfo(
    name="saliencymix",
    title="SaliencyMix",
    summary="Cuts the box of area 1 − λ around the partner's most salient point (OpenCV's fine-grained "
            "saliency) and pastes it at the same place.",
    formula=r"c = \arg\max_p S(x_p)(p),\quad M = 1 - \mathbb{1}_{\text{box}(c,\ \sqrt{1-\lambda})},"
            r"\ \tilde x = M\odot x + (1-M)\odot x_p",
    paper='Uddin et al., "SaliencyMix: A Saliency Guided Data Augmentation Strategy for Better Regularization", '
          "ICLR 2021",
    arxiv="2006.01791",
    default_alpha=1.0,
    image_free_mask=False,
    params=(
        Param("saliency", "saliency detector: OpenCV's fine-grained static saliency (Montabone & Soto 2010, "
              "the official code's) or the spectral residual (Hou & Zhang 2007)", default="fine_grained",
              kind="choice", choices=DETECTORS, per_sample=False),
        Param("saliency_size", "side of the grey image the spectral residual is computed on (the fine-grained "
              "detector always runs at the image's size)", default=64, kind="int", low=8, high=512,
              per_sample=False),
        Param("center_x", "box centre, as a fraction of the width; pinned, it replaces the detected peak",
              low=0.0, high=1.0, sampled=Drawn("saliency peak of the partner", 0.0, 1.0)),
        Param("center_y", "box centre, as a fraction of the height; pinned, it replaces the detected peak",
              low=0.0, high=1.0, sampled=Drawn("saliency peak of the partner", 0.0, 1.0)),
    ),
    notes="The peak is the first maximum (row-major) of the partner's map; pixel (col, row) is the centre "
          "(col / W, row / H), where the official code centres its box.",
)


def saliency_peak(images: Tensor, saliency: str = "fine_grained", size: int = 64) -> tuple[Tensor, Tensor]:
    """The saliency maximum of each image as fractions (x, y) of its width and height: two [B] float32.

    Args:
        images: [B, C, H, W] in [0, 1].
        saliency: "fine_grained" (map at the image's size; pixel (col, row) → (col / W, row / H), where the
            official code centres its box) or "spectral_residual" (map at size × size; the pixel's centre,
            ((col + ½) / size, (row + ½) / size), since one map pixel covers several image pixels).
        size: side of the spectral residual's grey image.
    """
    column, row = peak_fractions(saliency_map(images, saliency, size=size))
    if saliency == "spectral_residual":
        half_pixel = 0.5 / size
        return column + half_pixel, row + half_pixel
    return column, row


def _box_centres(read: ParamReader, partner_images: Tensor) -> tuple[Tensor, Tensor]:
    """Pinned centres where given, the partner's saliency peak elsewhere (the detector runs only if needed).

    The centres used — pinned or detected — are recorded in ``read.used``: passed back, they replay the box
    without running the detector.
    """
    detector, size = read.value("saliency"), int(read.value("saliency_size"))
    detected: list[tuple[Tensor, Tensor]] = []

    def peak(axis: int) -> Tensor:
        if not detected:
            detected.append(saliency_peak(partner_images, detector, size))
        return detected[0][axis]

    return read.tensor("center_x", lambda n: peak(0)), read.tensor("center_y", lambda n: peak(1))


class SaliencyMix(MaskMethod):
    def mix(self, batch, partner, lam, *, alpha, generator, params):
        lam = self.draw_lam(lam, alpha, batch, generator)
        height, width = batch.images.shape[-2:]
        read = ParamReader(self.info, params, batch=batch.size, device=batch.device, generator=generator,
                           checked=True)
        partner_images = batch.images[partner]
        center_x, center_y = _box_centres(read, partner_images)
        mask = get_method("cutmix").render_mask(lam, height, width, generator=generator,
                                                params={"center_x": center_x, "center_y": center_y})
        return Mixed(images=blend_into(partner_images, batch.images, mask), mask=mask, lam_requested=lam,
                     details={"peak": torch.stack([center_x, center_y], 1)}, params=read.used)


def saliencymix_mask(lam: Tensor, partner_images: Tensor, *, generator: torch.Generator | None = None,
                     saliency: str = "fine_grained", saliency_size: int = 64,
                     center_x: Tensor | float | None = None, center_y: Tensor | float | None = None) -> Tensor:
    """SaliencyMix mask for given partner images [B, C, H, W]: CutMix's box centred on each saliency peak.

    Args:
        lam: [B] requested λ.
        partner_images: [B, C, H, W] in [0, 1], the images the box is cut from.
        saliency: "fine_grained" (default, OpenCV's detector) or "spectral_residual".
        saliency_size: side of the spectral residual's grey image.
        center_x, center_y: pinned box centres (fractions; a number or [B]) replacing the detected peak.

    Returns [B, 1, H, W] float32 (0 on the box); its mean is the effective λ.
    """
    pinned = {name: value for name, value in (("saliency", saliency), ("saliency_size", saliency_size),
                                              ("center_x", center_x), ("center_y", center_y))
              if value is not None}
    read = ParamReader(INFO, pinned, batch=partner_images.shape[0], device=partner_images.device,
                       generator=generator)
    center_x, center_y = _box_centres(read, partner_images)
    height, width = partner_images.shape[-2:]
    return get_method("cutmix").mask_fn(lam, height, width, generator=generator,
                                        center_x=center_x, center_y=center_y)


register(SaliencyMix(INFO, saliencymix_mask))
