"""Features of each class's images for one backbone and layer(s), from the cache or extracted.

Both entry points fill the cache through this one function (``python -m
src.run`` for a probe job, ``python -m src.prepare`` for the pipeline's features
stage), so an entry one writes is an entry the other reuses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from omegaconf import DictConfig

from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.features.backbones import (
    BackboneSpec,
    WeightsSource,
    build_backbone,
    create_backbone_spec,
    model_fields,
    resolve_weights,
)
from src.features.batchnorm import recalibrate_batchnorm
from src.features.cache import FeatureCache, hash_images
from src.features.extract import (
    ExtractionSettings,
    ensure_features,
    feature_fields,
    resolve_settings,
)
from src.features.layers import resolve_layer
from src.features.scan import scan_layers

__all__ = ["ClassFeatures", "class_features", "class_features_from_config", "extraction_settings"]


class ClassFeatures(NamedTuple):
    """What :func:`class_features` returns."""

    features: dict[str, np.ndarray]
    """Per class, the (n_images, dim) features of the first layer, rows in record order."""
    keys: dict[str, str]
    """Per class, the cache key of that entry."""
    weights: WeightsSource
    """The weights the backbone got (label, sha256)."""
    fields: dict[str, Any]
    """Key fields shared by every class: how the features were made (effective values)."""


def class_features(
    records: MutableMapping[str, list[ImageRecord]],
    *,
    backbone: BackboneSpec,
    layers: Sequence[str],
    settings: ExtractionSettings,
    cache_dir: str | os.PathLike[str],
    pooling: str = "mean",
    recalibrate_bn: bool = False,
) -> ClassFeatures:
    """Return the features of ``layers[0]`` per class, extracting only cache misses.

    Parameters
    ----------
    records : mutable mapping of str to list of ImageRecord
        Records per class. Images the extraction skipped as unreadable
        (``on_bad_image="skip"``) are removed in place, so records and
        feature rows stay aligned.
    backbone : BackboneSpec
        The model, its weights source, preprocessing and layer aliases.
    layers : sequence of str
        Layer names (aliases or graph nodes); all are extracted in one pass,
        the first is returned.
    settings : ExtractionSettings
        How the predict loop runs (resolved here for this machine).
    cache_dir : path-like
        The feature cache's root.
    pooling : {"mean", "cls"}, default="mean"
        How a token output becomes one vector (``layer.pooling``); with the
        spec's layout it is part of every key.
    recalibrate_bn : bool, default=False
        Re-estimate every BatchNorm's statistics on the images of all classes
        in ``records`` before extracting (``controls.random_bn``,
        :mod:`src.features.batchnorm`); those images' hash joins the key.
    """
    if not layers:
        raise ScaleprobeError("layer is not set; name at least one layer")
    reduction = backbone.reduction(pooling)
    source = resolve_weights(backbone)
    nodes = list(dict.fromkeys(resolve_layer(backbone, name) for name in layers))
    settings = resolve_settings(settings)
    model = model_fields(backbone, source)
    preprocessing = backbone.preprocessing()
    calibration = [r for rs in records.values() for r in rs] if recalibrate_bn else []
    if calibration:
        model = {**model, "batchnorm": f"recalibrated-{hash_images(calibration)}"}

    def build_model() -> Any:
        built = build_backbone(backbone, source)
        return recalibrate_batchnorm(built, calibration, preprocessing) if calibration else built

    cache = FeatureCache(cache_dir)
    features, keys = {}, {}
    for class_id, class_records in records.items():
        entries = ensure_features(
            cache,
            backbone=backbone.name,
            weights=source.label,
            weights_sha256=source.sha256,
            build_model=build_model,
            nodes=nodes,
            records=class_records,
            preprocessing=preprocessing,
            settings=settings,
            model_fields=model,
            reduction=reduction,
        )
        entry = entries[nodes[0]]
        by_id = {r.image_id: r for r in class_records}
        if not set(entry.image_ids) <= by_id.keys():
            raise ScaleprobeError(
                f"cache entry {entry.path} does not match the images of {class_id}"
            )
        records[class_id] = [by_id[image_id] for image_id in entry.image_ids]
        features[class_id] = np.asarray(entry.features)
        keys[class_id] = entry.key
    fields = feature_fields(
        backbone=backbone.name,
        weights=source.label,
        weights_sha256=source.sha256,
        preprocessing=preprocessing,
        settings=settings,
        model_fields=model,
        reduction=reduction,
    )
    return ClassFeatures(features, keys, source, fields)


def extraction_settings(extract: DictConfig | Mapping[str, Any]) -> ExtractionSettings:
    """Return the :class:`ExtractionSettings` a composed ``extract`` node describes."""
    return ExtractionSettings(
        batch_size=extract["batch_size"],
        num_workers=extract["num_workers"],
        accelerator=extract["accelerator"],
        devices=extract["devices"],
        num_nodes=extract.get("num_nodes", 1),
        precision=str(extract["precision"]),
        channels_last=extract["channels_last"],
        progress=extract["progress"],
        on_bad_image=extract.get("on_bad_image", "skip"),
        gpu_decode=extract.get("gpu_decode", True),
    )


def class_features_from_config(
    cfg: DictConfig, records: MutableMapping[str, list[ImageRecord]]
) -> ClassFeatures:
    """Run :func:`class_features` as a composed config says (backbone, layer, extract, paths)."""
    return class_features(
        records,
        backbone=create_backbone_spec(cfg.backbone),
        layers=[cfg.layer.name, *cfg.extract.extra_layers, *scan_layers(cfg)],
        settings=extraction_settings(cfg.extract),
        cache_dir=cfg.paths.cache_dir,
        pooling=cfg.layer.get("pooling", "mean"),
    )
