"""One file per mixing method; importing this package registers them all, in this order."""

from . import mixup, cutout, cutmix, fmix, lmix, gridmix, gmix, agmix, smoothmix_s, smoothmix_c, saliencymix, resizemix, hardmix, miamix, puzzlemix, snapmix, attentive_cutmix  # noqa: F401
