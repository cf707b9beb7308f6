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
from ._random import beta
from .distributions import Derived, Distribution, Drawn


@dataclass(frozen=True)
class Param:
    """A parameter of a method that a caller (an app slider, a test) may pin.

    ``default`` is used when the caller does not pin the parameter; ``default=None`` means the parameter is
    random and is drawn per sample from the law ``sampled`` (:mod:`msda.distributions`: the one place its
    range is written). Numeric parameters accept a Python number or a tensor of shape ``[]`` or ``[B]`` (one
    value per sample) unless ``per_sample`` is False.
    """

    name: str
    description: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    kind: str = "float"  # "float" | "int" | "bool" | "choice" | "tensor" | "names" | "numbers" | "other"
    sampled: Distribution | None = None
    choices: tuple = ()
    per_sample: bool = True
    low_open: bool = False
    high_open: bool = False
    validator: Callable[[str, Any], Any] | None = None  # the check of a kind="other" value: (label, value) -> value

    def __post_init__(self):
        if isinstance(self.sampled, str):  # a law the method draws itself, described in words
            object.__setattr__(self, "sampled", Drawn(self.sampled))

    @property
    def random(self) -> bool:
        """Drawn per call when not pinned (a Derived value is computed, not drawn)."""
        return self.default is None and self.sampled is not None and not isinstance(self.sampled, Derived)

    def check(self, method: str, value: Any) -> Any:
        """Validate a pinned value; returns it (Python numbers normalised)."""
        label = f"{method}: {self.name}"
        if self.validator is not None:
            return self.validator(label, value)
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

    @property
    def slider_range(self) -> tuple[float, float] | None:
        """(low, high) for a control: the pinnable range where it is bounded, else the law's support."""
        support = self.sampled.support if self.sampled is not None else None
        low = self.low if self.low is not None else (support[0] if support else None)
        high = self.high if self.high is not None else (support[1] if support else None)
        return None if low is None or high is None else (float(low), float(high))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["sampled"] = None if self.sampled is None else self.sampled.to_dict()
        out["validator"] = None if self.validator is None else self.validator.__name__
        return out


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
    exact_lam: bool = False  # True: the mask's mean is the requested λ for every λ in [0, 1] (pixel rounding aside)
    area_param: str | None = None  # the parameter that, pinned, decides the mask's area: the requested λ is then unused
    mask_only: bool = True  # True: mixed = mask·x + (1 − mask)·x_partner exactly
    mixes_labels: bool = True  # False: the label stays the sample's own (cutout)
    label_weight: str = "area"  # how the own label's weight is set: "area" (the mask's mean) or "cam" (SnapMix)
    needs: tuple[str, ...] = ()  # the model-derived inputs a call needs, from GUIDANCE: logits, saliency, cams
    image_free_mask: bool = True  # True: listed in msda.MASKS
    notes: str = ""

    def __post_init__(self):
        unknown = [need for need in self.needs if need not in GUIDANCE]
        if unknown:
            raise ValueError(f"{self.name}: unknown needs {unknown}; allowed: {', '.join(GUIDANCE)}")
        if self.label_weight not in ("area", "cam"):
            raise ValueError(f"{self.name}: label_weight must be 'area' or 'cam', got {self.label_weight!r}")

    @property
    def needs_logits(self) -> bool:
        """Whether the method needs the model's logits (HardMix)."""
        return "logits" in self.needs

    @property
    def model_guided(self) -> bool:
        """Whether the mask or the label weight comes from the model (saliency or CAMs), not from λ and pixels."""
        return any(need in ("saliency", "cams") for need in self.needs)

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
        out["params"] = [p.to_dict() for p in self.params]
        out["url"] = self.url
        out["needs_logits"] = self.needs_logits
        return out


GUIDANCE: dict[str, str] = {
    "logits": "logits=model(images)",
    "saliency": "saliency=msda.guidance.input_gradient_saliency(model, images, labels)",
    "cams": "cams=msda.guidance.class_activation_maps(model, images, labels)",
}
"""The model-derived inputs a method may need (``MethodInfo.needs``), each with the call that makes it. They come into
:class:`~msda.mixing.Mixer` calls as tensors — a mixer never runs the model itself."""


@dataclass
class Batch:
    """The inputs of one mixing call, already checked."""

    images: Tensor  # [B, C, H, W]
    targets: Tensor  # [B, K] soft labels, rows sum to 1
    logits: Tensor | None = None  # [B, K], the model's predictions on `images`
    images_b: Tensor | None = None  # [B, C, H, W], a second view of `images`
    saliency: Tensor | None = None  # [B, H, W] non-negative, e.g. the input-gradient norm (PuzzleMix)
    cams: Tensor | None = None  # [B, h, w] non-negative class activation maps for each sample's label

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
    details: dict = field(default_factory=dict)  # derived quantities (solved σ, saliency peak, merged layers)
    params: dict = field(default_factory=dict)  # every parameter value used, drawn or given: replays the mix


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

    def needs(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The model-derived inputs (:data:`GUIDANCE` names) a call with these (checked) params needs: the
        method's ``info.needs`` less those the params already pin (a replay needs no model)."""
        return tuple(need for need in self.info.needs if need not in params)

    def needs_logits(self, params: Mapping[str, Any]) -> bool:
        """Whether a call with these (checked) params needs the model's logits."""
        return "logits" in self.needs(params)

    def guidance(self, read: ParamReader, batch: Batch, name: str) -> Tensor:
        """A model-derived input (``"saliency"`` or ``"cams"``): the pinned value (a replay), else the call's;
        recorded in the params either way. Checked: [B, h, w] (saliency: [B, H, W]) on the batch's device."""
        value = read.value(name) if read.pinned(name) else read.record(name, getattr(batch, name))
        height, width = batch.images.shape[-2:]
        full = name == "saliency"
        if (value.ndim != 3 or value.shape[0] != batch.size or min(value.shape) == 0
                or (full and tuple(value.shape[1:]) != (height, width))):
            expected = f"[{batch.size}, {height}, {width}]" if full else f"[{batch.size}, h, w]"
            raise ValueError(f"{self.name}: {name} must be a {expected} tensor, got {describe(value)}")
        return value.to(batch.device).float()

    def reader(self, batch: Batch, generator: torch.Generator | None, params: dict) -> ParamReader:
        """A :class:`ParamReader` over checked params for this batch."""
        return ParamReader(self.info, params, batch=batch.size, device=batch.device, generator=generator,
                           checked=True)

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

    def render(self, lam: Tensor, height: int, width: int, *, generator, params: dict) -> tuple[Tensor, ParamReader]:
        """The mask for checked inputs (no validation, no host sync) and the reader that holds what it used."""
        read = ParamReader(self.info, params, batch=lam.shape[0], device=lam.device, generator=generator,
                           checked=True)
        return self.mask_fn.render(lam, height, width, read), read

    def render_mask(self, lam: Tensor, height: int, width: int, *, generator, params: dict) -> Tensor:
        """The mask for checked inputs (no validation, no host sync)."""
        return self.render(lam, height, width, generator=generator, params=params)[0]

    def mix(self, batch, partner, lam, *, alpha, generator, params):
        lam = self.draw_lam(lam, alpha, batch, generator)
        height, width = batch.images.shape[-2:]
        mask, read = self.render(lam, height, width, generator=generator, params=params)
        return Mixed(images=blend_into(batch.images[partner], batch.images, mask), mask=mask, lam_requested=lam,
                     details=read.derived, params=read.used)


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
    """Reads a method's pinned parameters or samples them, as per-sample tensors on the batch's device, and
    keeps every value it handed out in :attr:`used` — what a :class:`MixOutput` returns as ``params`` and what,
    passed back, replays the mix bit for bit.

    Used inside mask functions::

        read = ParamReader(INFO, params, batch=B, device=lam.device, generator=generator)
        cx = read.tensor("center_x")          # pinned, or drawn from the Param's law
        read.derive("sigma", sigma)            # a derived quantity, for display (not replayed)
    """

    def __init__(self, info: MethodInfo, params: Mapping[str, Any], *, batch: int, device: torch.device,
                 generator: torch.Generator | None, checked: bool = False):
        self.info = info
        self.params = dict(params) if checked else check_params(info, params)
        self.batch = batch
        self.device = device
        self.generator = generator
        self.used: dict[str, Any] = {}
        self.derived: dict[str, Any] = {}

    def value(self, name: str) -> Any:
        """A pinned value as given (number, tensor or choice), or the default; None for an unpinned random one."""
        value = self.params[name] if name in self.params else self.info.param(name).default
        if value is not None:
            self.used.setdefault(name, value)
        return value

    def pinned(self, name: str) -> bool:
        return self.params.get(name) is not None

    def record(self, name: str, value: Any) -> Any:
        """Note a value the method drew itself (a spectrum, a Dirichlet draw); returns it."""
        self.used[name] = value
        return value

    def derive(self, name: str, value: Any) -> Any:
        """Note a quantity computed from the draws (shown, never replayed); returns it."""
        self.derived[name] = value
        return value

    def tensor(self, name: str, sample: Callable[[int], Tensor] | None = None, dtype=torch.float32) -> Tensor:
        """Shape [B]: the pinned value broadcast, or a draw — ``sample(B)``, else the Param's own law."""
        value = self.params[name] if name in self.params else self.info.param(name).default
        if value is None:
            if sample is None:
                law = self.info.param(name).sampled
                drawn = None if law is None else law.sample(self.batch, generator=self.generator,
                                                            device=self.device)
                if drawn is None:
                    raise ValueError(f"{self.info.name}: {name} has no default and was not given")
            else:
                drawn = sample(self.batch)
            return self.record(name, drawn.to(dtype))
        if isinstance(value, Tensor):
            if value.ndim == 1 and value.shape[0] != self.batch:
                raise ValueError(
                    f"{self.info.name}: {name} has {value.shape[0]} values but the batch has {self.batch} samples"
                )
            out = value.to(device=self.device, dtype=dtype).expand(self.batch)
        else:
            out = torch.full((self.batch,), float(value), device=self.device, dtype=dtype)
        return self.record(name, out)


def check_params(info: MethodInfo, params: Mapping[str, Any]) -> dict:
    """Reject unknown parameter names and out-of-range pinned values; returns the checked params."""
    known = {p.name: p for p in info.params}
    unknown = sorted(set(params) - set(known))
    if unknown:
        allowed = ", ".join(known) or "no parameters"
        raise ValueError(f"{info.name} got unknown parameter(s) {', '.join(unknown)}; it takes: {allowed}")
    return {name: known[name].check(info.name, value) for name, value in params.items()}
