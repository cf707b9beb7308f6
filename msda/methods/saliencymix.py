"""SaliencyMix: the CutMix box is centred on the most salient point of the partner.

Uddin, Monira, Shin, Chung, Bae. "SaliencyMix: A Saliency Guided Data Augmentation Strategy for Better
Regularization", ICLR 2021. arXiv:2006.01791.

Saliency is the spectral residual of Hou & Zhang ("Saliency Detection: A Spectral Residual Approach",
CVPR 2007), computed batched in torch as OpenCV's StaticSaliencySpectralResidual does it: grey image resized
to 64 × 64, residual = log-amplitude − its 3 × 3 mean, back-transform with the original phase, squared
magnitude, Gaussian smoothing. The box (area (1 − λ)·H·W, clipped at the border) is cut from the partner
around its saliency peak and pasted at the same place in the image (salient-to-corresponding).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.transforms.v2 import functional as TF

from ..registry import MaskMethod, MethodInfo, Mixed, Param, ParamReader, blend_into, get_method, register

INFO = MethodInfo(
    name="saliencymix",
    title="SaliencyMix",
    summary="Cuts the box of area 1 − λ around the partner's most salient point and pastes it at the same place.",
    formula=r"c = \arg\max_p S(x_p)(p),\quad M = 1 - \mathbb{1}_{\text{box}(c,\ \sqrt{1-\lambda})},"
            r"\ \tilde x = M\odot x + (1-M)\odot x_p",
    paper='Uddin et al., "SaliencyMix: A Saliency Guided Data Augmentation Strategy for Better Regularization", '
          "ICLR 2021",
    arxiv="2006.01791",
    default_alpha=1.0,
    image_free_mask=False,
    params=(
        Param("saliency_size", "side of the grey image the spectral residual is computed on", default=64,
              kind="int", low=8, high=512, per_sample=False),
    ),
)

_LUMA = (0.299, 0.587, 0.114)


def spectral_residual(images: Tensor, size: int = 64) -> Tensor:
    """Spectral-residual saliency of each image at size × size: [B, size, size] float32, each map in [0, 1].

    Args:
        images: [B, C, H, W] (C = 3: luma; otherwise the channel mean).
    """
    x = images.float()
    if x.shape[1] == 3:
        grey = (x * torch.tensor(_LUMA, device=x.device)[None, :, None, None]).sum(1, keepdim=True)
    else:
        grey = x.mean(1, keepdim=True)
    grey = TF.resize(grey, [size, size], antialias=True)[:, 0]
    spectrum = torch.fft.fft2(grey)
    log_amplitude = torch.log(spectrum.abs() + 1e-8)
    mean_filtered = F.avg_pool2d(F.pad(log_amplitude[:, None], (1, 1, 1, 1), mode="reflect"), 3, 1)[:, 0]
    residual = torch.polar((log_amplitude - mean_filtered).exp(), spectrum.angle())
    saliency = torch.fft.ifft2(residual).abs() ** 2
    saliency = TF.gaussian_blur(saliency[:, None], kernel_size=[5, 5], sigma=[8.0, 8.0])[:, 0]
    low = saliency.amin((1, 2), keepdim=True)
    high = saliency.amax((1, 2), keepdim=True)
    return (saliency - low) / (high - low).clamp_min(1e-12)


def saliency_peak(images: Tensor, size: int = 64) -> tuple[Tensor, Tensor]:
    """The saliency maximum of each image as fractions (x, y) of its width and height: two [B] tensors."""
    saliency = spectral_residual(images, size)
    flat = saliency.flatten(1).argmax(1)
    return (flat % size + 0.5) / size, torch.div(flat, size, rounding_mode="floor").add(0.5) / size


class SaliencyMix(MaskMethod):
    def mix(self, batch, partner, lam, *, alpha, generator, params):
        lam = self.draw_lam(lam, alpha, batch, generator)
        height, width = batch.images.shape[-2:]
        read = ParamReader(self.info, params, batch=batch.size, device=batch.device, generator=generator,
                           checked=True)
        partner_images = batch.images[partner]
        center_x, center_y = saliency_peak(partner_images, int(read.value("saliency_size")))
        mask = get_method("cutmix").render_mask(lam, height, width, generator=generator,
                                                params={"center_x": center_x, "center_y": center_y})
        return Mixed(images=blend_into(partner_images, batch.images, mask), mask=mask, lam_requested=lam,
                     details={"peak": torch.stack([center_x, center_y], 1)})


def saliencymix_mask(lam: Tensor, partner_images: Tensor, *, generator: torch.Generator | None = None,
                     saliency_size: int = 64) -> Tensor:
    """SaliencyMix mask for given partner images [B, C, H, W]: CutMix's box centred on each saliency peak.

    Returns [B, 1, H, W] float32 (0 on the box); its mean is the effective λ.
    """
    center_x, center_y = saliency_peak(partner_images, saliency_size)
    height, width = partner_images.shape[-2:]
    return get_method("cutmix").mask_fn(lam, height, width, generator=generator,
                                        center_x=center_x, center_y=center_y)


register(SaliencyMix(INFO, saliencymix_mask))
