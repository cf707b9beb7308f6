"""The laws random method parameters are drawn from, as data.

A :class:`~msda.registry.Param` that is random names its law here (``Param.sampled``). The registry is then the
one place a range is written: the method samples through it (``ParamReader.tensor``), the app reads its range
for sliders (:attr:`Distribution.support`) and shows it as text (``str(law)``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ._random import integers, uniform

__all__ = ["Distribution", "Uniform", "Integers", "Drawn", "Derived"]


@dataclass(frozen=True)
class Distribution:
    """A law of one per-sample parameter. ``support`` is (low, high) of the values it draws, or None."""

    @property
    def support(self) -> tuple[float, float] | None:
        return None

    def sample(self, n: int, *, generator: torch.Generator | None, device: torch.device) -> Tensor | None:
        """[n] draws, or None when the method draws the value itself (see :class:`Drawn`)."""
        return None

    def to_dict(self) -> dict:
        support = self.support
        return {"kind": type(self).__name__.lower(), "text": str(self),
                "low": None if support is None else support[0], "high": None if support is None else support[1]}


@dataclass(frozen=True)
class Uniform(Distribution):
    """U(low, high), float32."""

    low: float
    high: float
    text: str | None = None  # how to print it when the numbers alone read badly (U(−π, π))

    @property
    def support(self) -> tuple[float, float]:
        return (self.low, self.high)

    def sample(self, n, *, generator, device):
        return uniform(self.low, self.high, n, generator=generator, device=device)

    def __str__(self) -> str:
        return self.text or f"U({self.low:g}, {self.high:g})"


@dataclass(frozen=True)
class Integers(Distribution):
    """Uniform on {low, …, high}, both ends included."""

    low: int
    high: int

    @property
    def support(self) -> tuple[float, float]:
        return (float(self.low), float(self.high))

    def sample(self, n, *, generator, device):
        return integers(self.low, self.high, n, generator=generator, device=device)

    def __str__(self) -> str:
        return f"U{{{self.low}, …, {self.high}}}"


@dataclass(frozen=True)
class Drawn(Distribution):
    """A law the method itself draws from (a spectrum, a Dirichlet, a saliency peak), described in words.

    ``low``/``high`` bound the values when they have a natural range (for sliders).
    """

    text: str
    low: float | None = None
    high: float | None = None

    @property
    def support(self) -> tuple[float, float] | None:
        return None if self.low is None or self.high is None else (self.low, self.high)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Derived(Drawn):
    """Not drawn at all: computed from λ and the other draws (a σ solved so the mask's mean is λ). Such a value
    is reported in ``MixOutput.details``, and pinning it overrides the computation."""
