"""One file per mixing method; importing this package registers them all, in this order."""

from . import mixup, cutout, cutmix  # noqa: F401
