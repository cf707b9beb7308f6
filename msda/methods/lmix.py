"""LMix: an FMix mask drawn from a high-boosted random spectrum, so the partner's regions are more numerous.

Yan et al. "LMix: Regularization Strategy for Convolutional Neural Networks", Signal, Image and Video
Processing, 2023 (lmix.txt §3, eq. 1–6).

Where the paper's sharpening acts. §3 applies the high-boost filter of eq. (5) inside **mask generation**: its
output is named ``gmask``, and the text goes on "now all that remains is to convert the grayscale image to a
binary mask" (eq. 6, ``mask(λ, g)``); the closing paragraph of §3 describes that grayscale as the inverse FFT
of the frequency-scaled random spectrum; and eq. (1), the mixed image, is a plain mask mix with no sharpening
term. The abstract's aim is to "increase the number of image masks". So this project reads LMix as:

    g = Re F⁻¹[(1 + k·f_HP) · f_LP(Z)],   f_LP(Z) = Z / max(f, f_min)^δ  (eq. 3),   f_HP = 1 − L_δ  (eq. 4),
    M = 1 on the top round(λ·H·W) pixels of g  (eq. 6),   x̃ = M ⊙ x_A + (1 − M) ⊙ x_B  (eq. 1),

with L_δ = (f_min / max(f, f_min))^δ the low-pass normalised to 1 at the lowest frequencies, Z the complex
Gaussian spectrum and k the ``sharpen`` strength. With k = 0 the mask is FMix's, bit for bit (same draws);
with k > 0 the rings above the lowest are boosted, the grey image gains detail and its top-λ region breaks into
more pieces: at λ = 0.5, δ = 3 and k = 1, 32 px, the partner covers 2.11 regions per FMix mask and more per
LMix mask (``tests/test_lmix.py`` measures it with :func:`msda.stats.connected_regions`; the README has the
figures).

For users who read the abstract's "sharpen the images" literally, ``sharpen_image=True`` also high-boosts the
*mixed image*: a Gaussian high-pass with its own cutoff ``image_cutoff`` (not the mask's δ), gain 1 at DC
rising with frequency to at most 1 + ``image_gain``, the result clamped to each image's own value range. It
is off by default: the paper's eq. (1) has no such term.
"""

from __future__ import annotations

from torch import Tensor

from .._fourier import sharpen
from ..registry import MaskMethod, MethodInfo, Param, ParamReader, mask_generator, register
from .fmix import FOURIER_PARAMS, fourier_mask

INFO = MethodInfo(
    name="lmix",
    title="LMix",
    summary="Thresholds a high-boosted random low-frequency image, so the partner fills more, finer blobs "
            "than FMix's covering 1 − λ.",
    formula=r"g = \mathcal{F}^{-1}\!\big[(1 + k\,(1 - L_\delta))\,Z/f^{\delta}\big],\ "
            r"M = \mathbb{1}\big[g \in \operatorname{top}_{\lambda HW}(g)\big],\ \tilde x = M\odot x + (1-M)\odot x_p",
    paper='Yan et al., "LMix: Regularization Strategy for Convolutional Neural Networks", '
          "Signal, Image and Video Processing, 2023",
    arxiv=None,
    default_alpha=1.0,
    exact_lam=True,
    params=FOURIER_PARAMS + (
        Param("sharpen", "high-boost strength k of the mask's spectrum (eq. 5); 0 gives FMix's mask", default=1.0,
              low=0.0, high=10.0),
        Param("sharpen_image", "also sharpen the mixed image (a literal reading of the abstract; not in eq. 1)",
              default=False, kind="bool"),
        Param("image_gain", "with sharpen_image: the largest extra gain of the image's high frequencies",
              default=1.0, low=0.0, high=4.0),
        Param("image_cutoff", "with sharpen_image: cutoff of the image's Gaussian high-pass, cycles per pixel",
              default=0.15, low=0.01, high=0.5),
    ),
    notes="The mixed image is the plain mask mix (eq. 1) unless sharpen_image=True.",
)


@mask_generator(INFO)
def lmix_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """LMix mask: 1 on the round(λ·H·W) highest pixels of the high-boosted 1/f^δ image g (eq. 5–6).

    Params: ``decay`` δ (default 3), ``sharpen`` k (default 1; 0 gives FMix's mask), ``max_soft``, ``noise``
    ([B, 2, H, W//2 + 1] spectrum, N(0, 1) when not pinned). Returns [B, 1, H, W] float32 with mean
    round(λ·H·W)/(H·W).
    """
    return fourier_mask(lam, height, width, read, boost=read.tensor("sharpen"))


class LMix(MaskMethod):
    def mix(self, batch, partner, lam, *, alpha, generator, params):
        mixed = super().mix(batch, partner, lam, alpha=alpha, generator=generator, params=params)
        read = self.reader(batch, generator, params)
        if read.value("sharpen_image"):
            mixed.images = sharpen(mixed.images, read.tensor("image_gain"), read.tensor("image_cutoff"))
        mixed.params.update(read.used)
        return mixed


register(LMix(INFO, lmix_mask))
