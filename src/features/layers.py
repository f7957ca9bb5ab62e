"""Layer names: a backbone spec's aliases (the paper's Keras names) or graph nodes.

Run ``python -m src.features.layers inception_v3`` to list a backbone's layers
with their feature dimensions and layouts (any ``conf/backbone`` option, or a
path to a backbone YAML; ``torchvision --name <model>`` for any torchvision
classification model). Offline: the model gets random weights.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import NamedTuple

import torch
from omegaconf import OmegaConf
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from src.errors import ScaleprobeError, exit_on_user_error
from src.features.backbones import (
    CONF_DIR,
    RANDOM_WEIGHTS,
    BackboneSpec,
    WeightsSource,
    backbone_options,
    build_backbone,
    create_backbone_spec,
    get_backbone_spec,
)
from src.features.reduce import Reduction, reduce_node, resolve_layout, token_info

__all__ = [
    "LayerRow",
    "feature_dims",
    "layer_table",
    "list_layers",
    "main",
    "reduced_nodes",
    "resolve_layer",
]


def _random_model(spec: BackboneSpec) -> nn.Module:
    return build_backbone(spec, WeightsSource(RANDOM_WEIGHTS, ""))


@functools.cache
def _graph_nodes_of(builder: str, kwargs_json: str) -> tuple[frozenset[str], tuple[str, ...]]:
    spec = BackboneSpec(name=builder, builder=builder, builder_kwargs=json.loads(kwargs_json))
    model = _random_model(spec)
    _, nodes = get_graph_node_names(model)
    blocks = tuple(child for child, _ in model.named_children())
    # A module whose nodes are in the graph names its last one (encoder.layers.encoder_layer_6).
    prefixes = {node.rsplit(".", i)[0] for node in nodes for i in range(1, node.count(".") + 1)}
    modules = {name for name, _ in model.named_modules() if name in prefixes}
    return frozenset(nodes) | frozenset(blocks) | frozenset(modules), blocks


def _graph_nodes(spec: BackboneSpec) -> tuple[frozenset[str], tuple[str, ...]]:
    """All eval-mode graph nodes and the top-level blocks of a backbone (cached)."""
    return _graph_nodes_of(spec.builder, json.dumps(dict(spec.builder_kwargs), sort_keys=True))


def _listing_argument(spec: BackboneSpec) -> str:
    """Return the listing command's arguments for ``spec``."""
    return spec.name if spec.catalog is None else f"{spec.catalog} --name {spec.name}"


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
        f"`python -m src.features.layers {_listing_argument(spec)} --all` lists"
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
    image = torch.zeros(1, 3, input_size, input_size)

    def run(names: list[str]) -> dict[str, torch.Tensor]:
        extractor = create_feature_extractor(model, return_nodes={n: n for n in names})
        with torch.inference_mode():
            return extractor(image)

    outputs = run(nodes)
    for node in [n for n in nodes if n not in outputs]:  # two names of one graph node
        outputs.update(run([node]))
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


class LayerRow(NamedTuple):
    """One row of a backbone's layer table."""

    name: str
    """The layer's name: the spec's alias or the node itself."""
    node: str
    """The torchvision graph node (or module) it reads."""
    dim: int
    """Length of its feature vector after reduction."""
    layout: str
    """Its output's layout (nchw, nhwc, tokens, flat), as the reduction reads it."""


_HEADS = {"fc", "dropout", "avgpool", "flatten", "classifier", "heads", "head"}


def _listed_blocks(spec: BackboneSpec, model: nn.Module) -> list[str]:
    """Top-level blocks and, inside Sequential containers, their stages (``features.3``)."""
    nodes, blocks = _graph_nodes(spec)
    out = [b for b in blocks if b not in _HEADS]
    modules = dict(model.named_modules())
    for name in modules:
        parent = name.rpartition(".")[0]
        if (
            parent
            and name.count(".") <= 2
            and name.split(".")[0] not in _HEADS
            and isinstance(modules[parent], nn.Sequential)
            and name in nodes
        ):
            out.append(name)
    order = {name: i for i, name in enumerate(modules)}
    return sorted(dict.fromkeys(out), key=order.__getitem__)


def layer_table(
    backbone: BackboneSpec | str, *, all_nodes: bool = False, pooling: str = "mean"
) -> list[LayerRow]:
    """Return each layer's name, node, feature dimension and layout (random weights, offline)."""
    spec = get_backbone_spec(backbone)
    model = _random_model(spec)
    alias_of = {node: alias for alias, node in spec.layer_aliases.items()}
    if all_nodes:
        _, ordered = get_graph_node_names(model)
        nodes = [n for n in ordered if n != "x"]
    else:
        nodes = _listed_blocks(spec, model)
    found = reduced_nodes(model, nodes, spec.input_size, spec.reduction(pooling), spec.builder)
    return [LayerRow(alias_of.get(n, n), n, *found[n]) for n in nodes]


def list_layers(
    backbone: BackboneSpec | str, *, all_nodes: bool = False
) -> list[tuple[str, str, int]]:
    """Return ``(name, torchvision node, feature dim)`` for a backbone's layers."""
    return [(row.name, row.node, row.dim) for row in layer_table(backbone, all_nodes=all_nodes)]


def _backbone_spec(value: str, model: str | None) -> BackboneSpec:
    """Return the spec a command line names: an option (``torchvision --name <m>``) or a YAML."""
    if value.endswith((".yaml", ".yml")) and Path(value).is_file():
        node = OmegaConf.load(value)
    elif value in backbone_options():
        node = OmegaConf.load(CONF_DIR / "backbone" / f"{value}.yaml")
    else:
        raise ScaleprobeError(
            f"{value!r} is not a backbone; choose from {backbone_options()} or a YAML file"
        )
    if node.get("catalog") is not None:
        if model is None:
            raise ScaleprobeError(
                f"backbone {value!r} needs --name <model>, e.g. --name resnet18 (any name of "
                "torchvision.models.list_models(module=torchvision.models))"
            )
        node.name = model
        node.weights = RANDOM_WEIGHTS  # the listing needs no weights
    elif model is not None and model != node.get("name"):
        raise ScaleprobeError(
            f"--name {model} does not apply to {value!r}, which builds {node.get('name')}; "
            "use `torchvision --name <model>`"
        )
    return create_backbone_spec(node)


def main(argv: list[str] | None = None) -> int:
    """Print a backbone's layer names with their feature dimensions and layouts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backbone", help="a conf/backbone option or a backbone YAML file")
    parser.add_argument("--name", help="the model of a catalog backbone (torchvision)")
    parser.add_argument("--all", action="store_true", help="every graph node, not only blocks")
    parser.add_argument(
        "--pooling", default="mean", help="layer.pooling the dims are for (mean, cls)"
    )
    args = parser.parse_args(argv)
    with exit_on_user_error():
        spec = _backbone_spec(args.backbone, args.name)
        rows = layer_table(spec, all_nodes=args.all, pooling=args.pooling)
    width = max(len(row.name) for row in rows)
    nodes = max(30, *(len(row.node) for row in rows))
    lines = [f"{'layer':<{width}}  {'torchvision node':<{nodes}} {'dim':>5}  layout"]
    lines += [f"{r.name:<{width}}  {r.node:<{nodes}} {r.dim:>5}  {r.layout}" for r in rows]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
