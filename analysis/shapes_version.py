"""Which version of the shapes dataset a set of checkpoints was trained on.

Shapes version 1 and 2 (:mod:`msda.data.shapes`) have different classes; a checkpoint's metadata names its
classes, so the studies render the test images of the version the checkpoints name (a version-1 model scored on
version-2 images would be scored on classes it never saw).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["shapes_version"]


def shapes_version(class_lists: Iterable) -> int:
    """The shapes version whose classes every list in `class_lists` names (checkpoints' ``meta["classes"]``);
    lists that name no version (None, or other classes) do not vote, and with no vote the default
    ``DATASET_VERSION``. ValueError when the lists name two versions."""
    from msda.data.shapes import DATASET_VERSION, version_of_classes

    versions = {version_of_classes(classes) for classes in class_lists if classes}
    versions.discard(None)
    if len(versions) > 1:
        raise ValueError(f"the checkpoints were trained on different shapes versions ({sorted(versions)}: their "
                         "classes differ); compare models of one version")
    return versions.pop() if versions else DATASET_VERSION
