"""The architecture registry: one constructor per name, registered by the file that defines it.

A model family lives in one file of this package and decorates its constructors with :func:`register_model`;
:func:`msda.models.build_model` and the tests find them here.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

ModelConstructor = Callable[..., nn.Module]

_CONSTRUCTORS: dict[str, ModelConstructor] = {}


def register_model(constructor: ModelConstructor) -> ModelConstructor:
    """Register ``constructor(num_classes=…, **kwargs) -> nn.Module`` under its function name."""
    name = constructor.__name__
    if name in _CONSTRUCTORS:
        raise RuntimeError(f"architecture {name!r} is registered twice")
    _CONSTRUCTORS[name] = constructor
    return constructor


def registered_names() -> tuple[str, ...]:
    """Our architecture names, in registration order."""
    return tuple(_CONSTRUCTORS)


def constructor_for(name: str) -> ModelConstructor | None:
    return _CONSTRUCTORS.get(name)
