"""Figure specs of the λ priors: Beta(α, α), and the marginals of MiAMix's Dir(α, …, α, k·α); densities from
:mod:`msda.stats`."""

from __future__ import annotations

import torch

from msda import stats

from .figures import prior_spec

GRID = torch.linspace(0.002, 0.998, 499)


def beta_prior_spec(alpha: float, lam: float | None) -> dict:
    """Beta(α, α) with the requested λ marked (nothing marked when λ is drawn)."""
    density = stats.beta_density(GRID, alpha, alpha).numpy()
    marks = [(f"requested λ = {lam:.2f}", lam, None)] if lam is not None else []
    return prior_spec(GRID.numpy(), [(f"Beta({alpha:g}, {alpha:g})", density)], marks,
                      title=f"λ ~ Beta(α, α), α = {alpha:g}")


def dirichlet_prior_spec(alpha: float, k: int, layer_lams: list[float], own_share: float, own_pinned: bool) -> dict:
    """MiAMix with k layers: λ_i ~ Beta(α, (2k − 1)α) and λ_{k+1} ~ Beta(kα, kα), the sampled values marked."""
    a, b = stats.dirichlet_marginals(torch.tensor([alpha] * k + [k * alpha]))
    curves = [(f"λ₁…λ{subscript(k)} ~ Beta({a[0]:g}, {b[0]:g})", stats.beta_density(GRID, a[0], b[0]).numpy()),
              (f"λ{subscript(k + 1)} ~ Beta({a[-1]:g}, {b[-1]:g})", stats.beta_density(GRID, a[-1], b[-1]).numpy())]
    marks = [(f"λ{subscript(i + 1)} = {value:.2f}", value, 0) for i, value in enumerate(layer_lams)]
    marks.append((f"λ{subscript(k + 1)} = {own_share:.2f}" + (" (pinned λ)" if own_pinned else ""), own_share, 1))
    return prior_spec(GRID.numpy(), curves, marks, title=f"MiAMix's Dirichlet marginals, k = {k}, α = {alpha:g}",
                      height=300)


def subscript(number: int) -> str:
    """A number as Unicode subscript digits (λ₃)."""
    return str(number).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))
