"""A layer scan's one extraction pass: the union of a sweep's layers per (backbone, data).

The sweep callback sees every job before any runs; it resolves each job's layer
(an unknown one stops the sweep there, naming the listing command) and passes
each group's union of layers to the jobs in ``SCALEPROBE_SCAN_LAYERS``. A job
then asks the cache for all of them: the first job extracts every missing
layer in one pass, the others (in this process or in a joblib worker, which
inherits the environment) find their entries, and a later scan adding layers
extracts only the new ones.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from collections.abc import Mapping, Sequence

from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from src.errors import ScaleprobeError
from src.features.backbones import (
    RANDOM_WEIGHTS,
    BackboneSpec,
    WeightsSource,
    build_backbone,
    create_backbone_spec,
)
from src.features.graph import graph_node_names
from src.features.layers import ALL_LAYERS, resolve_layer, scan_blocks

__all__ = [
    "SCAN_LAYERS_ENV",
    "expand_all_layers",
    "layer_depth",
    "scan_group",
    "scan_layers",
    "sweep_layer_union",
]

_BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"

SCAN_LAYERS_ENV = "SCALEPROBE_SCAN_LAYERS"


def scan_group(cfg: DictConfig) -> str:
    """Return what jobs must share to share one pass: backbone, data and pooling (a hash)."""
    shared = {
        "backbone": OmegaConf.to_container(cfg.backbone, resolve=True),
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "pooling": cfg.layer.get("pooling", "mean"),
    }
    text = json.dumps(shared, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def expand_all_layers(config: DictConfig) -> list[str] | None:
    """Turn a sweep's ``layer=all`` into one job per named block of its backbone.

    Called by the sweep callback before it lists the jobs: the expansion is
    written into ``hydra.sweeper.params`` as ``layer.name=<blocks>``, which
    Hydra's basic sweeper reads only after the callback returns, so every
    launcher (joblib, submitit) gets one job per layer and the union of
    :func:`sweep_layer_union` covers them all. Returns the layers (``None``
    when the sweep's layer is not ``all``).

    Raises
    ------
    ScaleprobeError
        Under another sweeper (an optimizer chooses its own jobs), or for a
        backbone without named blocks (:func:`src.features.layers.scan_blocks`).
    """
    if config.get("layer") is None or config.layer.get("name") != ALL_LAYERS:
        return None
    sweeper = config.hydra.sweeper
    if sweeper.get("_target_") != _BASIC_SWEEPER:
        raise ScaleprobeError(
            f"layer={ALL_LAYERS} needs Hydra's basic sweeper (hydra/sweeper=basic); "
            f"this sweep uses {sweeper.get('_target_')}: list the layers as layer.name=<a>,<b>"
        )
    layers = scan_blocks(create_backbone_spec(config.backbone))
    with read_write(sweeper), open_dict(sweeper):
        params = dict(sweeper.get("params") or {})
        params["layer.name"] = ",".join(layers)
        sweeper.params = params
    return layers


def sweep_layer_union(jobs: Sequence[DictConfig]) -> dict[str, list[str]]:
    """Return each group's layers (in job order), every one checked against its backbone.

    Raises
    ------
    ScaleprobeError
        A layer its backbone lacks (the message names the listing command), or
        a sweep that scans layers over more than one backbone.
    """
    backbones = {create_backbone_spec(job.backbone).name for job in jobs}
    layers = {job.layer.name for job in jobs}
    if len(backbones) > 1 and len(layers) > 1:
        raise ScaleprobeError(
            f"a layer scan probes one backbone; this sweep has layers {sorted(layers)} over "
            f"backbones {sorted(backbones)}: run one scan per backbone"
        )
    union: dict[str, list[str]] = {}
    for job in jobs:
        spec = create_backbone_spec(job.backbone)
        for name in [job.layer.name, *job.extract.extra_layers]:
            resolve_layer(spec, name)
        group = union.setdefault(scan_group(job), [])
        group.extend(n for n in [job.layer.name] if n not in group)
    return union


def scan_layers(cfg: DictConfig, env: Mapping[str, str] | None = None) -> list[str]:
    """Return the layers the sweep extracts with this job's (none outside a sweep)."""
    text = (os.environ if env is None else env).get(SCAN_LAYERS_ENV)
    if not text:
        return []
    return list(json.loads(text).get(scan_group(cfg), []))


@functools.cache
def _node_order(library: str, builder: str, kwargs_json: str) -> tuple[str, ...]:
    kwargs = json.loads(kwargs_json)
    spec = BackboneSpec(name=builder, library=library, builder=builder, builder_kwargs=kwargs)
    return tuple(graph_node_names(build_backbone(spec, WeightsSource(RANDOM_WEIGHTS, ""))))


def layer_depth(backbone: BackboneSpec, layer: str) -> int:
    """Return the layer's depth: the index of its (last) graph node in execution order.

    The same for every library (a module's depth is that of its last node), so
    runs of one backbone sort in network order by it (the MLflow param ``layer_depth``).
    """
    node = resolve_layer(backbone, layer)
    kwargs = json.dumps(dict(backbone.builder_kwargs), sort_keys=True)
    order = _node_order(backbone.library, backbone.builder, kwargs)
    return max(i for i, name in enumerate(order) if name == node or name.startswith(f"{node}."))
