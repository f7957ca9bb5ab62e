"""torchvision's catalog of classification models: names, weights enums, preprocessing.

``backbone=torchvision backbone.name=<model>`` builds any model of
``torchvision.models.list_models(module=torchvision.models)``; its input size and
normalization come from its weights' transforms (only the crop size, mean and
std: the whole image is resized to that square, never center-cropped).
"""

from __future__ import annotations

import difflib
import functools
from typing import Any

import torchvision
from torchvision.models import get_model_weights, list_models

from src.errors import ScaleprobeError

__all__ = [
    "AUTO",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "check_classification_model",
    "classification_models",
    "weights_member",
    "weights_preprocessing",
]

AUTO = "auto"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_OTHER_TASKS = ("detection", "segmentation", "video", "optical_flow", "quantization")


@functools.cache
def classification_models() -> tuple[str, ...]:
    """Names of torchvision's classification models."""
    return tuple(list_models(module=torchvision.models))


def _task_of(name: str) -> str | None:
    for task in _OTHER_TASKS:
        module = getattr(torchvision.models, task, None)
        if module is not None and name in list_models(module=module):
            return task
    return None


def check_classification_model(key: str, name: Any) -> None:
    """Raise one line when ``name`` (the value of ``key``) is no classification model.

    An unknown name lists its close matches; a model of another task
    (detection, segmentation, video, ...) is named as such.
    """
    models = classification_models()
    if name in models:
        return
    task = _task_of(str(name))
    if task is not None:
        raise ScaleprobeError(
            f"{key}={name!r} is a torchvision {task} model, not a classification model; "
            "choose one of torchvision.models.list_models(module=torchvision.models)"
        )
    matches = difflib.get_close_matches(str(name), models, n=5)
    raise ScaleprobeError(
        f"{key}={name!r} is not a torchvision model; close matches: {matches} (any "
        "classification model of torchvision.models.list_models(module=torchvision.models))"
    )


def weights_member(builder: str, weights: str) -> Any | None:
    """Return the weights enum member ``weights`` (``DEFAULT`` too), or None if unknown."""
    try:
        enum = get_model_weights(builder)
    except (ValueError, KeyError):
        return None
    try:
        return enum[weights]
    except KeyError:
        return None


def weights_preprocessing(builder: str, weights: str) -> tuple[int, tuple, tuple]:
    """Input size, mean and std of ``weights`` (its enum's ``DEFAULT`` for random/unknown).

    Read from the weights' transforms: ``crop_size`` (the size the network was
    trained at), ``mean`` and ``std``; ImageNet's 224 and normalization where
    they say nothing.
    """
    member = weights_member(builder, weights) or weights_member(builder, "DEFAULT")
    keywords = dict(getattr(getattr(member, "transforms", None), "keywords", None) or {})
    size = keywords.get("crop_size", 224)
    size = int(size[0] if isinstance(size, (list, tuple)) else size)
    mean = tuple(float(v) for v in keywords.get("mean", IMAGENET_MEAN))
    std = tuple(float(v) for v in keywords.get("std", IMAGENET_STD))
    return size, mean, std
