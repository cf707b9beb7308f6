"""AGMix: GMix with a random covariance and rotation — elongated, tilted Gaussian blobs.

Liang, Liang, Jia. "MiAMix: Enhancing Image Classification through a Multi-stage Augmented Mixed
Sample Data Augmentation Method", Processes 2023. arXiv:2308.02804 (miamix.md §3.1).
"""

from __future__ import annotations

import math

from torch import Tensor

from .._gaussian import gaussian_mask, sigma_in_pixels
from ..distributions import Uniform
from ..registry import MaskMethod, MethodInfo, Param, ParamReader, mask_generator, register
from .gmix import CENTER_PARAMS

INFO = MethodInfo(
    name="agmix",
    title="AGMix",
    summary="A Gaussian blob with random correlation q and rotation θ, sized so it covers 1 − λ of the image.",
    formula=r"M(p) = 1 - \exp\!\left(-\tfrac12 (p-c)^\top \Sigma^{-1} (p-c)\right),\ "
            r"\Sigma = \sigma^2 R_\theta \begin{bmatrix}1 & q\\ q & 1\end{bmatrix} R_\theta^\top",
    paper='Liang, Liang, Jia, "MiAMix: Enhancing Image Classification through a Multi-stage Augmented Mixed Sample '
          'Data Augmentation Method", Processes 2023',
    arxiv="2308.02804",
    default_alpha=1.0,
    exact_lam=True,
    area_param="sigma",
    params=CENTER_PARAMS + (
        Param("q", "off-diagonal correlation of the covariance; |q| < 1", low=-1.0, high=1.0, low_open=True,
              high_open=True, sampled=Uniform(-0.95, 0.95, "U(−0.95, 0.95)")),
        Param("theta", "rotation of the blob, radians", low=-math.pi, high=math.pi,
              sampled=Uniform(-math.pi, math.pi, "U(−π, π)")),
    ),
    notes="q is drawn from U(−0.95, 0.95) rather than the paper's U(−1, 1): at |q| → 1 the covariance is "
          "singular and the blob degenerates to a line. σ is calibrated to λ as in GMix.",
)


@mask_generator(INFO)
def agmix_mask(lam: Tensor, height: int, width: int, read: ParamReader) -> Tensor:
    """AGMix mask 1 − exp(−½ dᵀΣ⁻¹d) with Σ = σ²·R(θ)[[1, q], [q, 1]]R(θ)ᵀ, σ calibrated so the mean is λ.

    Params: ``center_x``/``center_y`` U(0, 1), ``q`` U(−0.95, 0.95), ``theta`` U(−π, π), ``sigma``
    (fraction of √(H·W); pins σ and ignores λ). Returns [B, 1, H, W] float32.
    """
    sigma = read.value("sigma")
    return gaussian_mask(
        lam,
        read.tensor("center_x") * width,
        read.tensor("center_y") * height,
        read.tensor("q"),
        read.tensor("theta"),
        None if sigma is None else sigma_in_pixels(read.tensor("sigma"), height, width),
        height, width, read,
    )


register(MaskMethod(INFO, agmix_mask))
