"""timm as a model library: any of its model names, preprocessing from its pretrained config.

``backbone=timm backbone.name=<model>`` builds any model of ``timm.list_models()``
with random weights, or with pretrained weights from a local file: timm cannot
download here, so ``weights: DEFAULT`` (or a tag, ``d2_in1k``) looks for the
file in the Hugging Face cache, where ``huggingface-cli download`` puts it, and
``backbone.weights_path`` names any other. Input size, mean and std come from
the weights' pretrained config. A model library
(:class:`src.features.model_library.ModelLibrary`).
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Any

import timm
from huggingface_hub import constants, try_to_load_from_cache
from torch import nn

from src.errors import ScaleprobeError
from src.features.model_library import PretrainedFile
from src.features.torchvision_models import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["build_model", "check_model", "preprocessing", "pretrained_file", "timm_models"]

DEFAULT_WEIGHTS = "DEFAULT"
_CHECKPOINT_FILES = ("model.safetensors", "pytorch_model.bin")


@functools.cache
def timm_models() -> tuple[str, ...]:
    """Names of timm's models."""
    return tuple(timm.list_models())


def check_model(key: str, name: Any) -> None:
    """Raise one line listing close matches unless ``name`` is a timm model."""
    models = timm_models()
    if name in models:
        return
    matches = difflib.get_close_matches(str(name), models, n=5)
    raise ScaleprobeError(
        f"{key}={name!r} is not a timm model; close matches: {matches} (any name of "
        "timm.list_models())"
    )


def _pretrained_cfg(builder: str, weights: str) -> Any:
    """Return the pretrained config of ``weights`` (``DEFAULT``: the default tag)."""
    name = builder if weights in (DEFAULT_WEIGHTS, "random") else f"{builder}.{weights}"
    try:
        cfg = timm.models.get_pretrained_cfg(name)
    except RuntimeError:  # timm: "Invalid pretrained tag"
        cfg = None
    if cfg is None:
        tags = [n.partition(".")[2] for n in timm.list_pretrained(f"{builder}.*")]
        raise ScaleprobeError(
            f"backbone.weights={weights!r} is not a pretrained tag of timm's {builder}; "
            f"choose from {['random', DEFAULT_WEIGHTS, *tags]}"
        )
    return cfg


def preprocessing(builder: str, weights: str) -> tuple[int, tuple, tuple]:
    """Input size, mean and std of the weights' pretrained config (224, ImageNet's if none)."""
    if weights == "random":  # the default tag's, if the model has one
        cfg = timm.models.get_pretrained_cfg(builder)
        if cfg is None:
            return 224, IMAGENET_MEAN, IMAGENET_STD
    else:
        cfg = _pretrained_cfg(builder, weights)
    size = int(cfg.input_size[-1])
    return size, tuple(float(v) for v in cfg.mean), tuple(float(v) for v in cfg.std)


def build_model(builder: str, kwargs: dict[str, Any]) -> nn.Module:
    """Build timm's ``builder`` with random weights (the caller seeds them)."""
    return timm.create_model(builder, pretrained=False, **kwargs)


def pretrained_file(builder: str, weights: str) -> PretrainedFile:
    """Find the weights' file in the Hugging Face cache (``$HF_HUB_CACHE``)."""
    cfg = _pretrained_cfg(builder, weights)
    label = f"{cfg.architecture}.{cfg.tag}" if cfg.tag else str(cfg.architecture)
    repo, cache = cfg.hf_hub_id, constants.HF_HUB_CACHE  # $HF_HUB_CACHE or $HF_HOME/hub
    if repo:
        for filename in _CHECKPOINT_FILES:
            found = try_to_load_from_cache(repo, filename, cache_dir=cache)
            if isinstance(found, str):
                return PretrainedFile(Path(found), label, "")
        where = (
            f"put {repo}'s {_CHECKPOINT_FILES[0]} in the Hugging Face cache {cache} "
            f"(`huggingface-cli download {repo}` on a machine with internet, then copy the cache)"
        )
    else:
        where = f"download {cfg.url or label} on a machine with internet"
    return PretrainedFile(None, label, f"{where} or set backbone.weights_path=<file>")
