"""Layer names: a backbone spec's aliases (the paper's Keras names) or graph nodes.

Run ``python -m src.features.layers inception_v3`` to list a backbone's layers
with their feature dimensions (any ``conf/backbone`` option, or a path to a
backbone YAML).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from src.errors import ScaleprobeError
from src.features.backbones import (
    RANDOM_WEIGHTS,
    BackboneSpec,
    WeightsSource,
    backbone_options,
    build_backbone,
    create_backbone_spec,
    get_backbone_spec,
)
from src.features.reduce import Reduction, reduce_node, resolve_layout, token_info

__all__ = ["feature_dims", "list_layers", "main", "reduced_nodes", "resolve_layer"]


def _random_model(spec: BackboneSpec) -> nn.Module:
    return build_backbone(spec, WeightsSource(RANDOM_WEIGHTS, ""))


@functools.cache
def _graph_nodes_of(builder: str, kwargs_json: str) -> tuple[frozenset[str], tuple[str, ...]]:
    spec = BackboneSpec(name=builder, builder=builder, builder_kwargs=json.loads(kwargs_json))
    model = _random_model(spec)
    _, nodes = get_graph_node_names(model)
    blocks = tuple(child for child, _ in model.named_children())
    return frozenset(nodes) | frozenset(blocks), blocks


def _graph_nodes(spec: BackboneSpec) -> tuple[frozenset[str], tuple[str, ...]]:
    """All eval-mode graph nodes and the top-level blocks of a backbone (cached)."""
    return _graph_nodes_of(spec.builder, json.dumps(dict(spec.builder_kwargs), sort_keys=True))


def resolve_layer(backbone: BackboneSpec | str, layer: str) -> str:
    """Return the torchvision node name for ``layer`` (an alias of the spec or a node name)."""
    spec = get_backbone_spec(backbone)
    aliases = spec.layer_aliases
    if layer in aliases:
        return aliases[layer]
    nodes, blocks = _graph_nodes(spec)
    if layer in nodes:
        return layer
    raise ScaleprobeError(
        f"layer={layer!r} is not a layer of {spec.name}; choose from "
        f"{[*aliases, *blocks]} or any node that "
        f"`python -m src.features.layers {spec.name} --all` lists"
    )


def reduced_nodes(
    model: nn.Module,
    nodes: list[str],
    input_size: int,
    reduction: Reduction | None = None,
    family: str = "",
) -> dict[str, tuple[int, str]]:
    """Each node's feature length and layout after reduction, from one dummy image.

    ``family`` is the builder's name (Swin's maps are channels-last). Raises
    the reduction's one-line error for a node whose layout cannot be told.
    """
    reduction = reduction or Reduction()
    info = token_info(model, family)
    extractor = create_feature_extractor(model, return_nodes={n: n for n in nodes})
    with torch.inference_mode():
        outputs = extractor(torch.zeros(1, 3, input_size, input_size))
    out = {}
    for node, value in outputs.items():
        layout = resolve_layout(node, tuple(value.shape), reduction.layout, info)
        out[node] = (int(reduce_node(node, value, reduction, info).shape[1]), layout)
    return out


def feature_dims(
    model: nn.Module,
    nodes: list[str],
    input_size: int,
    reduction: Reduction | None = None,
    family: str = "",
) -> dict[str, int]:
    """Length of each node's feature vector after reduction, from one dummy image."""
    dims = reduced_nodes(model, nodes, input_size, reduction, family)
    return {node: dim for node, (dim, _) in dims.items()}


def list_layers(
    backbone: BackboneSpec | str, *, all_nodes: bool = False
) -> list[tuple[str, str, int]]:
    """Return ``(name, torchvision node, feature dim)`` for a backbone's layers."""
    spec = get_backbone_spec(backbone)
    model = _random_model(spec)
    alias_of = {node: alias for alias, node in spec.layer_aliases.items()}
    _, blocks = _graph_nodes(spec)
    if all_nodes:
        _, ordered = get_graph_node_names(model)
        nodes = [n for n in ordered if n != "x"]
    else:
        nodes = [b for b in blocks if b not in {"fc", "dropout", "avgpool", "flatten"}]
    dims = feature_dims(model, nodes, spec.input_size, spec.reduction(), spec.builder)
    return [(alias_of.get(n, n), n, dims[n]) for n in nodes]


def _spec_argument(value: str) -> BackboneSpec:
    if value.endswith((".yaml", ".yml")) and Path(value).is_file():
        return create_backbone_spec(OmegaConf.load(value))
    if value not in backbone_options():
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a backbone; choose from {backbone_options()} or a YAML file"
        )
    return get_backbone_spec(value)


def main(argv: list[str] | None = None) -> int:
    """Print a backbone's layer names with their feature dimensions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "backbone", type=_spec_argument, help="a conf/backbone option or a backbone YAML file"
    )
    parser.add_argument("--all", action="store_true", help="every graph node, not only blocks")
    args = parser.parse_args(argv)
    rows = list_layers(args.backbone, all_nodes=args.all)
    width = max(len(name) for name, _, _ in rows)
    lines = [f"{'layer':<{width}}  {'torchvision node':<30} dim"]
    lines += [f"{name:<{width}}  {node:<30} {dim}" for name, node, dim in rows]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
