"""torchvision as a model library: names, weights in torch's hub cache, preprocessing.

``backbone=torchvision backbone.name=<model>`` builds any model of
``torchvision.models.list_models(module=torchvision.models)``; its input size and
normalization come from its weights' transforms (only the crop size, mean and
std: the whole image is resized to that square, never center-cropped).
Pretrained files are looked up in torch's hub cache; nothing is downloaded.

A model library (:class:`src.features.model_library.ModelLibrary`): the spec
calls these functions when ``backbone.library`` is ``torchvision``.
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torchvision.models import get_model, get_model_weights, list_models

from src.errors import ScaleprobeError
from src.features.model_library import PretrainedFile

__all__ = [
    "AUTO",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "build_model",
    "check_model",
    "classification_models",
    "hub_checkpoint_path",
    "preprocessing",
    "pretrained_file",
    "weights_member",
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


def check_model(key: str, name: Any) -> None:
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


def preprocessing(builder: str, weights: str) -> tuple[int, tuple, tuple]:
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


def build_model(builder: str, kwargs: dict[str, Any]) -> nn.Module:
    """Build torchvision's ``builder`` with random weights (the caller seeds them)."""
    return get_model(builder, weights=None, **kwargs)


def hub_checkpoint_path(builder: str, weights: str) -> Path:
    """Where torch's hub cache keeps the file of torchvision weights ``weights``."""
    enum = get_model_weights(builder)
    try:
        member = enum[weights]
    except KeyError:
        choices = ["random", *enum.__members__]
        raise ScaleprobeError(
            f"backbone.weights={weights!r} is not a weights name of {builder}; "
            f"choose from {choices}"
        ) from None
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(member.url).name


def pretrained_file(builder: str, weights: str) -> PretrainedFile:
    """Find the hub-cache file of ``weights`` (``DEFAULT`` resolves to its real name)."""
    path = hub_checkpoint_path(builder, weights)
    member = get_model_weights(builder)[weights]
    advice = (
        f"put {path.name} in {path.parent} (download it from {member.url} on a machine "
        "with internet) or set backbone.weights_path=<file>"
    )
    return PretrainedFile(path if path.is_file() else None, member.name, advice)
