"""Validate a composed config: one clear line per mistake, before any work starts."""

from __future__ import annotations

import math
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.errors import ScaleprobeError

__all__ = ["validate_config"]

_POLICIES = ("single", "largest", "union")
_DATA_SOURCES = ("synthetic", "imagenet", "voc")
_SIZE_MISMATCH = ("use_image", "skip", "error")
_LAYOUTS = {
    "imagenet": "the ILSVRC folder holding train/<wnid>/*.JPEG and Annotation/<wnid>/*.xml",
    "voc": "the VOC year folder holding JPEGImages/ and Annotations/",
}


def _value(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except OmegaConfBaseException:
        raise ScaleprobeError(f"{key} is not set; pass {key}=<value> on the command line") from None


def _number(cfg: DictConfig, key: str, *, minimum: float, integer: bool = False) -> float:
    value = _value(cfg, key)
    kind = Integral if integer else Real
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        expected = "an integer" if integer else "a finite number"
        raise ScaleprobeError(
            f"{key}={value!r} is not {expected}; expected {expected} >= {minimum}"
        )
    if value < minimum:
        raise ScaleprobeError(f"{key}={value!r} is out of range; expected a value >= {minimum}")
    return value


def _choice(cfg: DictConfig, key: str, choices: tuple[str, ...]) -> str:
    value = _value(cfg, key)
    if value not in choices:
        raise ScaleprobeError(f"{key}={value!r} is not allowed; choose from {list(choices)}")
    return value


def validate_config(cfg: DictConfig) -> None:
    """Check every value the run reads; raise :class:`ScaleprobeError` on the first bad one."""
    from src.features.backbones import backbone_options, create_backbone_spec

    _number(cfg, "alpha", minimum=0.0)
    _number(cfg, "seed", minimum=0, integer=True)
    _number(cfg, "n_splits", minimum=2, integer=True)
    _number(cfg, "n_train", minimum=2, integer=True)
    _number(cfg, "n_test", minimum=2, integer=True)
    _choice(cfg, "backbone.name", tuple(backbone_options()))
    _number(cfg, "backbone.input_size", minimum=32, integer=True)
    create_backbone_spec(cfg.backbone)  # every other backbone key, one line per mistake
    _choice(cfg, "data.name", _DATA_SOURCES)
    _choice(cfg, "data.policy", _POLICIES)
    _choice(cfg, "data.on_size_mismatch", _SIZE_MISMATCH)
    for key in ("pair.train_class", "pair.test_class", "layer.name"):
        value = _value(cfg, key)
        if not isinstance(value, str) or not value:
            raise ScaleprobeError(f"{key}={value!r} must be a non-empty string")
    _number(cfg, "extract.batch_size", minimum=1, integer=True)
    if _value(cfg, "extract.num_workers") != "auto":
        _number(cfg, "extract.num_workers", minimum=0, integer=True)
    _number(cfg, "reference_alpha", minimum=0.0)
    if cfg.data.name in ("imagenet", "voc"):
        root = Path(_value(cfg, "data.root"))
        if not root.is_dir():
            layout = _LAYOUTS[cfg.data.name]
            raise ScaleprobeError(
                f"data.root={str(root)!r} is not a directory; point it at {layout}"
            )
    if cfg.data.name == "synthetic":
        from src.data.synthetic import SYNTHETIC_CLASSES

        _number(cfg, "data.n_per_class", minimum=2, integer=True)
        for key in ("pair.train_class", "pair.test_class"):
            if _value(cfg, key) not in SYNTHETIC_CLASSES:
                raise ScaleprobeError(
                    f"{key}={_value(cfg, key)!r} is not a class of the synthetic set; "
                    f"choose from {list(SYNTHETIC_CLASSES)}"
                )
