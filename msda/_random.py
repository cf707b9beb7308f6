"""Random draws through an explicit ``torch.Generator``, on the generator's device.

torch.distributions takes no generator, so Beta and Dirichlet draws are built from Gamma draws
(``torch._standard_gamma``, the kernel behind torch.distributions.Gamma, which does take one).
"""

from __future__ import annotations

import torch
from torch import Tensor


def uniform(low, high, n: int, *, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Shape [n], float32, U(low, high); low/high may be numbers or [n] tensors."""
    u = torch.rand(n, generator=generator, device=device)
    return low + (high - low) * u


def bernoulli(p, n: int, *, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Shape [n], bool, each True with probability p."""
    return torch.rand(n, generator=generator, device=device) < p


def randint_below(upper: Tensor, *, generator: torch.Generator | None) -> Tensor:
    """Per element an integer uniform in {0, …, upper − 1}; upper is an integer tensor ≥ 1."""
    u = torch.rand(upper.shape, generator=generator, device=upper.device)
    return torch.minimum((u * upper).long(), upper.long() - 1)


def integers(low: int, high: int, n: int, *, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Shape [n], int64, uniform in {low, …, high} (both ends included)."""
    return torch.randint(low, high + 1, (n,), generator=generator, device=device)


def gamma(concentration: Tensor, *, generator: torch.Generator | None) -> Tensor:
    """Gamma(concentration, 1) draws, same shape and device as `concentration` (float32)."""
    return torch._standard_gamma(concentration.float(), generator=generator)


def beta(alpha, n: int, *, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """Shape [n], float32, Beta(α, α). α may be a number or a [n] tensor."""
    conc = torch.as_tensor(alpha, dtype=torch.float32, device=device).expand(2, n).contiguous()
    g = gamma(conc, generator=generator)
    total = g[0] + g[1]
    # Both Gamma draws underflow to 0 for tiny α; the Beta(α, α) limit puts mass ½ on each end.
    return torch.where(total > 0, g[0] / total.clamp_min(torch.finfo(torch.float32).tiny), (g[0] >= g[1]).float())


def dirichlet(concentration: Tensor, *, generator: torch.Generator | None) -> Tensor:
    """Dirichlet draws along the last dim; entries with concentration 0 come out exactly 0.

    That lets a batch hold Dirichlets of different dimension (MiAMix's k + 1 components per sample) in one
    padded tensor.
    """
    active = concentration > 0
    g = gamma(torch.where(active, concentration, torch.ones_like(concentration)), generator=generator)
    g = torch.where(active, g, torch.zeros_like(g))
    total = g.sum(-1, keepdim=True)
    # All-underflow rows (tiny α) fall back to one component taking everything.
    fallback = torch.nn.functional.one_hot(torch.where(active, g, -1.0).argmax(-1), g.shape[-1]).float()
    return torch.where(total > 0, g / total.clamp_min(torch.finfo(torch.float32).tiny), fallback)


def permutation(n: int, *, generator: torch.Generator | None, device: torch.device) -> Tensor:
    return torch.randperm(n, generator=generator, device=device)
