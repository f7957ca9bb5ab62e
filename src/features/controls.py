"""The control feature sources a job evaluates beside its backbone (``conf/controls``).

- ``random_weights``: the same backbone spec, layer and images with
  ``weights=random`` (initialised under a fixed seed, which names the weights
  in every cache key: ``random-init-seed-0``): what the architecture alone gives.
- ``pixels``: the input-space controls of :mod:`src.features.pixels` (a joint
  RGB histogram and a small thumbnail): what no network is needed for.

Every source is cached like the backbone's own features.
"""

from __future__ import annotations

import dataclasses
from collections.abc import MutableMapping

import numpy as np
from omegaconf import DictConfig

from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.features.backbones import RANDOM_WEIGHTS, create_backbone_spec
from src.features.classes import class_features, extraction_settings
from src.features.pixels import pixel_features
from src.features.scan import scan_layers

__all__ = ["CONTROL_KINDS", "control_features", "control_kinds"]

CONTROL_KINDS = ("random_weights", "pixels")


def control_kinds(cfg: DictConfig) -> list[str]:
    """Return the controls the config asks for (none without a ``controls`` node)."""
    node = cfg.get("controls")
    if node is None:
        return []
    kinds = list(node.kinds)
    for kind in kinds:
        if kind not in CONTROL_KINDS:
            raise ScaleprobeError(
                f"controls.kinds has {kind!r}; allowed: {list(CONTROL_KINDS)} (or controls=[])"
            )
    return kinds


def control_features(
    cfg: DictConfig, records: MutableMapping[str, list[ImageRecord]]
) -> dict[str, dict[str, np.ndarray]]:
    """Return, per control source, its per-class features (rows in ``records``' order).

    ``records`` must already be the backbone's (unreadable images removed),
    so every source has the same rows. Sources: ``random_weights``,
    ``pixels_histogram``, ``pixels_thumbnail``.
    """
    kinds = control_kinds(cfg)
    out: dict[str, dict[str, np.ndarray]] = {}
    spec = create_backbone_spec(cfg.backbone)
    if "random_weights" in kinds:
        random_spec = dataclasses.replace(spec, weights=RANDOM_WEIGHTS, weights_path=None)
        made = class_features(
            records,
            backbone=random_spec,
            # A scan's other layers too: the random network's pass serves every job of it.
            layers=[cfg.layer.name, *scan_layers(cfg)],
            settings=extraction_settings(cfg.extract),
            cache_dir=cfg.paths.cache_dir,
            pooling=cfg.layer.get("pooling", "mean"),
            recalibrate_bn=cfg.controls.random_bn,
        )
        out["random_weights"] = made.features
    if "pixels" in kinds:
        settings = {
            "histogram": cfg.controls.histogram_bins,
            "thumbnail": cfg.controls.thumbnail_size,
        }
        for kind, setting in settings.items():
            out[f"pixels_{kind}"] = {
                class_id: pixel_features(
                    class_records,
                    kind=kind,
                    input_size=spec.input_size,
                    setting=setting,
                    cache_dir=cfg.paths.cache_dir,
                )
                for class_id, class_records in records.items()
            }
    return out
