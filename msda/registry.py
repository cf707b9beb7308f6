"""The method registry: one entry per mixing method, found by name.

Each method lives in one file under ``msda/methods/`` and registers itself with :func:`register`. The
:class:`MethodInfo` it registers is what the app builds its widgets and method cards from, what MiAMix draws
its candidate masks from, and what the contract tests iterate over.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

import torch
from torch import Tensor

from ._checks import (check_choice, check_generator, check_int, check_lam, check_real, check_size,
                      check_values_in, describe)
from ._random import beta, uniform


@dataclass(frozen=True)
class Param:
    """A parameter of a method that a caller (an app slider, a test) may pin.

    ``default`` is used when the caller does not pin the parameter; ``default=None`` means the parameter is
    random and is drawn per sample as ``sampled`` describes. Numeric parameters accept a Python number or a
    tensor of shape ``[]`` or ``[B]`` (one value per sample) unless ``per_sample`` is False.
    """

    name: str
    description: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    kind: str = "float"  # "float" | "int" | "bool" | "choice" | "tensor" | "names" | "numbers"
    sampled: str | None = None
    choices: tuple = ()
    per_sample: bool = True
    low_open: bool = False
    high_open: bool = False

    @property
    def random(self) -> bool:
        return self.default is None and self.sampled is not None

    def check(self, method: str, value: Any) -> Any:
        """Validate a pinned value; returns it (Python numbers normalised)."""
        label = f"{method}: {self.name}"
        if self.kind == "tensor":
            if not isinstance(value, Tensor):
                raise ValueError(f"{label} must be a tensor, got {describe(value)}")
            return value
        if self.kind == "choice":
            return check_choice(label, value, self.choices)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{label} must be True or False, got {describe(value)}")
            return value
        if self.kind in ("names", "numbers"):
            if isinstance(value, (str, Tensor)) or not hasattr(value, "__iter__") or len(value) == 0:
                raise ValueError(f"{label} must be a non-empty list, got {describe(value)}")
            if self.kind == "names":
                if not all(isinstance(v, str) for v in value):
                    raise ValueError(f"{label} must be a list of names, got {describe(value)}")
                return tuple(value)
            return tuple(check_real(f"{label} entry", v, low=self.low, high=self.high) for v in value)
        if isinstance(value, Tensor):
            if not self.per_sample:
                raise ValueError(f"{label} must be a Python number (one value for the batch), got {describe(value)}")
            if value.ndim > 1:
                raise ValueError(f"{label} must be a scalar or a per-sample tensor of shape [B], got {describe(value)}")
            if self.kind == "int" and value.is_floating_point() and not bool((value == value.round()).all()):
                raise ValueError(f"{label} must hold integers, got {describe(value)}")
            check_values_in(label, value.float(), self.low, self.high,
                            low_open=self.low_open, high_open=self.high_open)
            return value
        if self.kind == "int":
            return check_int(label, value, low=None if self.low is None else int(self.low),
                             high=None if self.high is None else int(self.high))
        return check_real(label, value, low=self.low, high=self.high,
                          low_open=self.low_open, high_open=self.high_open)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class MethodInfo:
    """What a method is, for people (cards, docs) and for code (widgets, contract tests)."""

    name: str
    title: str
    summary: str  # one sentence: what the method does
    formula: str  # LaTeX, in the project's λ convention
    paper: str  # authors, title, venue
    arxiv: str | None  # arXiv id, when the paper has one
    default_alpha: float | None  # concentration of the λ prior; None when λ is not drawn
    params: tuple[Param, ...] = ()
    uses_lam: bool = True  # False: the requested λ does not shape the mask (cutout, smoothmix by default)
    mask_only: bool = True  # True: mixed = mask·x + (1 − mask)·x_partner exactly
    mixes_labels: bool = True  # False: the label stays the sample's own (cutout)
    needs_logits: bool = False
    image_free_mask: bool = True  # True: listed in msda.MASKS
    notes: str = ""

    @property
    def url(self) -> str | None:
        return f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else None

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["url"] = self.url
        return out


@dataclass
class Batch:
    """The inputs of one mixing call, already checked."""

    images: Tensor  # [B, C, H, W]
    targets: Tensor  # [B, K] soft labels, rows sum to 1
    logits: Tensor | None = None  # [B, K], the model's predictions on `images`
    images_b: Tensor | None = None  # [B, C, H, W], a second view of `images`

    @property
    def size(self) -> int:
        return self.images.shape[0]

    @property
    def device(self) -> torch.device:
        return self.images.device


@dataclass
class Mixed:
    """What a method's ``mix`` returns: the mixed images and the mask, before label mixing."""

    images: Tensor
    mask: Tensor  # [B, 1, H, W] float32, weight of the own image
    lam_requested: Tensor  # [B] the λ the mask was asked for (pinned by the caller or drawn)
    partner: Tensor | None = None  # overrides the pairing (self-mixing samples point to themselves)
    lam: Tensor | None = None  # overrides lam = mask mean (cutout keeps its label: lam = 1)
    details: dict = field(default_factory=dict)


class Method:
    """A registered mixing method: a pairing rule and a mixing rule.

    Subclasses override :meth:`pair` (default: :func:`random_partners`) and :meth:`mix`.
    ``mix`` receives ``lam=None`` unless the caller pinned λ; it then draws λ itself (:meth:`draw_lam`), which
    lets a method with its own prior (MiAMix's Dirichlet) keep it.
    """

    info: MethodInfo

    def __init__(self, info: MethodInfo):
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    def check_params(self, params: Mapping[str, Any]) -> dict:
        """Reject unknown names and out-of-range pinned values; returns the checked params."""
        return check_params(self.info, params)

    def pair(self, batch: Batch, *, generator: torch.Generator | None, params: dict) -> Tensor:
        return random_partners(batch.size, generator=generator, device=batch.device)

    def draw_lam(self, lam: Tensor | None, alpha: float, batch: Batch,
                 generator: torch.Generator | None) -> Tensor:
        """The pinned λ, or λ ~ Beta(α, α) per sample."""
        if lam is not None:
            return lam
        return beta(alpha, batch.size, generator=generator, device=batch.device)

    def mix(self, batch: Batch, partner: Tensor, lam: Tensor | None, *, alpha: float,
            generator: torch.Generator | None, params: dict) -> Mixed:
        raise NotImplementedError


class MaskMethod(Method):
    """A method defined by an image-free mask: mixed = mask·x + (1 − mask)·x_partner."""

    def __init__(self, info: MethodInfo, mask_fn: Callable[..., Tensor]):
        super().__init__(info)
        self.mask_fn = mask_fn

    def render_mask(self, lam: Tensor, height: int, width: int, *, generator, params: dict) -> Tensor:
        """The mask for checked inputs (no validation, no host sync)."""
        read = ParamReader(self.info, params, batch=lam.shape[0], device=lam.device, generator=generator,
                           checked=True)
        return self.mask_fn.render(lam, height, width, read)

    def mix(self, batch, partner, lam, *, alpha, generator, params):
        lam = self.draw_lam(lam, alpha, batch, generator)
        height, width = batch.images.shape[-2:]
        mask = self.render_mask(lam, height, width, generator=generator, params=params)
        return Mixed(images=blend_into(batch.images[partner], batch.images, mask), mask=mask, lam_requested=lam)


def mask_generator(info: MethodInfo):
    """Turn ``render(lam, height, width, read) -> mask`` into the public mask generator

    ``fn(lam: Tensor[B], height, width, *, generator=None, **params) -> Tensor[B, 1, H, W]``

    which checks its arguments, resolves pinned/sampled parameters through a :class:`ParamReader` and keeps
    ``render`` reachable as ``fn.render`` for callers whose inputs are already checked.
    """

    def wrap(render: Callable[..., Tensor]) -> Callable[..., Tensor]:
        def generate(lam: Tensor, height: int, width: int, *, generator: torch.Generator | None = None,
                     **params) -> Tensor:
            if isinstance(lam, Tensor):  # a generator on the wrong device is named before values are read
                generator = check_generator(generator, lam.device)
            lam = check_lam(lam)
            height, width = check_size(height, width)
            read = ParamReader(info, params, batch=lam.shape[0], device=lam.device, generator=generator)
            return render(lam.float(), height, width, read)

        generate.__name__ = generate.__qualname__ = render.__name__
        generate.__doc__ = render.__doc__
        generate.__module__ = render.__module__
        generate.render = render
        generate.info = info
        return generate

    return wrap


def random_partners(n: int, *, generator: torch.Generator | None, device: torch.device) -> Tensor:
    """[n] partner indices: the samples in random order, each paired with the next (a random n-cycle).

    Each sample's partner is uniform over the *other* samples and no sample is paired with itself (n > 1),
    unlike a plain random permutation, which leaves about one sample per batch unmixed.
    """
    order = torch.randperm(n, generator=generator, device=device)
    return torch.empty_like(order).scatter_(0, order, order.roll(-1))


def blend(images: Tensor, partner_images: Tensor, mask: Tensor) -> Tensor:
    """``mask·images + (1 − mask)·partner_images`` in the images' dtype (one fused pass)."""
    return torch.lerp(partner_images, images, mask.to(images.dtype))


def blend_into(partner_images: Tensor, images: Tensor, mask: Tensor) -> Tensor:
    """:func:`blend`, written into `partner_images` — a tensor the caller owns and no longer needs, such as a
    fresh ``images[partner]`` gather. Saves allocating (and, on a CPU, first touching) a batch-sized output:
    about a third of the time of a CutMix call at 128 × 224²."""
    return partner_images.lerp_(images, mask.to(images.dtype))


_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add a method to the registry (called once, at the bottom of the method's file)."""
    name = method.info.name
    if name in _METHODS:
        raise ValueError(f"a method named {name!r} is registered already")
    _METHODS[name] = method
    return method


def get_method(name: str) -> Method:
    if name not in _METHODS:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(_METHODS)}")
    return _METHODS[name]


def method_names() -> tuple[str, ...]:
    return tuple(_METHODS)


def mask_functions() -> Mapping[str, Callable[..., Tensor]]:
    return MappingProxyType({n: m.mask_fn for n, m in _METHODS.items() if m.info.image_free_mask})


def methods_info() -> dict[str, MethodInfo]:
    """Per method: title, one-sentence summary, formula, paper, default α and the pinnable parameters."""
    return {name: m.info for name, m in _METHODS.items()}


class ParamReader:
    """Reads a method's pinned parameters or samples them, as per-sample tensors on the batch's device.

    Used inside mask functions::

        read = ParamReader(INFO, params, batch=B, device=lam.device, generator=generator)
        cx = read.tensor("center_x", lambda n: uniform(0, 1, n, ...))
    """

    def __init__(self, info: MethodInfo, params: Mapping[str, Any], *, batch: int, device: torch.device,
                 generator: torch.Generator | None, checked: bool = False):
        self.info = info
        self.params = dict(params) if checked else check_params(info, params)
        self.batch = batch
        self.device = device
        self.generator = generator

    def value(self, name: str) -> Any:
        """A pinned value as given (number, tensor or choice), or the default."""
        if name in self.params:
            return self.params[name]
        return self.info.param(name).default

    def tensor(self, name: str, sample: Callable[[int], Tensor] | None = None, dtype=torch.float32) -> Tensor:
        """Shape [B]: the pinned value broadcast, or ``sample(B)`` for a random parameter."""
        value = self.value(name)
        if value is None:
            if sample is None:
                raise ValueError(f"{self.info.name}: {name} has no default and was not given")
            return sample(self.batch).to(dtype)
        if isinstance(value, Tensor):
            if value.ndim == 1 and value.shape[0] != self.batch:
                raise ValueError(
                    f"{self.info.name}: {name} has {value.shape[0]} values but the batch has {self.batch} samples"
                )
            return value.to(device=self.device, dtype=dtype).expand(self.batch)
        return torch.full((self.batch,), float(value), device=self.device, dtype=dtype)

    def uniform(self, low, high) -> Tensor:
        """Shape [B] draws from U(low, high)."""
        return uniform(low, high, self.batch, generator=self.generator, device=self.device)

    def sample_uniform(self, name: str, low, high) -> Tensor:
        """The pinned value of `name`, else U(low, high) per sample."""
        return self.tensor(name, lambda n: self.uniform(low, high))


def check_params(info: MethodInfo, params: Mapping[str, Any]) -> dict:
    """Reject unknown parameter names and out-of-range pinned values; returns the checked params."""
    known = {p.name: p for p in info.params}
    unknown = sorted(set(params) - set(known))
    if unknown:
        allowed = ", ".join(known) or "no parameters"
        raise ValueError(f"{info.name} got unknown parameter(s) {', '.join(unknown)}; it takes: {allowed}")
    return {name: known[name].check(info.name, value) for name, value in params.items()}
