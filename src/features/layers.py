"""Layer names: a backbone spec's aliases (the paper's Keras names) or graph nodes.

Run ``python -m src.features.layers inception_v3`` to list a backbone's layers
with their feature dimensions and layouts (any ``conf/backbone`` option, or a
path to a backbone YAML; ``torchvision --name <model>`` for any torchvision
classification model, ``timm --name <model>`` for any timm model). Offline:
the model gets random weights.
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
from src.features.graph import feature_extractor, graph_node_names
from src.features.reduce import Reduction, reduce_node, resolve_layout, token_info

__all__ = [
    "ALL_LAYERS",
    "LAST_STAGE",
    "GraphNodes",
    "LayerRow",
    "feature_dims",
    "layer_table",
    "list_layers",
    "main",
    "reduced_nodes",
    "resolve_layer",
    "scan_blocks",
]


def _random_model(spec: BackboneSpec) -> nn.Module:
    return build_backbone(spec, WeightsSource(RANDOM_WEIGHTS, ""))


#: The layer name of a timm model's last feature stage (its ``feature_info``).
LAST_STAGE = "last_stage"

#: ``layer=all``: every named block of the backbone (:func:`scan_blocks`), as a sweep.
ALL_LAYERS = "all"


class GraphNodes(NamedTuple):
    """What layer names a backbone has, read from its eval-mode graph."""

    nodes: frozenset[str]
    """Every graph node, top-level block and module whose nodes are in the graph."""
    blocks: tuple[str, ...]
    """The top-level blocks, in order."""
    stage_aliases: dict[str, str]
    """Names of a timm model's stages: ``stride<s>`` (its output stride) and ``last_stage``."""


@functools.cache
def _graph_nodes_of(library: str, builder: str, kwargs_json: str) -> GraphNodes:
    kwargs = json.loads(kwargs_json)
    spec = BackboneSpec(name=builder, library=library, builder=builder, builder_kwargs=kwargs)
    model = _random_model(spec)
    nodes = graph_node_names(model)
    blocks = tuple(child for child, _ in model.named_children())
    # A module whose nodes are in the graph names its last one (encoder.layers.encoder_layer_6).
    prefixes = {node.rsplit(".", i)[0] for node in nodes for i in range(1, node.count(".") + 1)}
    modules = {name for name, _ in model.named_modules() if name in prefixes}
    # timm models list where each feature stage ends, with its stride (2x .. 32x).
    stages = list(getattr(model, "feature_info", None) or [])
    aliases = {f"stride{info['reduction']}": info["module"] for info in stages}
    if stages:
        aliases[LAST_STAGE] = stages[-1]["module"]
    return GraphNodes(frozenset(nodes) | frozenset(blocks) | frozenset(modules), blocks, aliases)


def _graph_nodes(spec: BackboneSpec) -> GraphNodes:
    """All eval-mode graph nodes, top-level blocks and stage names of a backbone (cached)."""
    kwargs = json.dumps(dict(spec.builder_kwargs), sort_keys=True)
    return _graph_nodes_of(spec.library, spec.builder, kwargs)


def _listing_argument(spec: BackboneSpec) -> str:
    """Return the listing command's arguments for ``spec``."""
    return spec.name if spec.catalog is None else f"{spec.catalog} --name {spec.name}"


def resolve_layer(backbone: BackboneSpec | str, layer: str) -> str:
    """Return the graph node name for ``layer``: an alias (the spec's, a stage's) or a node.

    A timm model's feature stages are named by their output stride,
    ``stride8`` .. ``stride32``, the last one ``last_stage`` too (the default
    layer of ``backbone=timm``).
    """
    spec = get_backbone_spec(backbone)
    if layer == ALL_LAYERS:
        raise ScaleprobeError(
            f"layer={ALL_LAYERS} scans every block of {spec.name}, one job per layer: run it as "
            f"a sweep, `python -m src.run -m layer={ALL_LAYERS}`"
        )
    nodes, blocks, stages = _graph_nodes(spec)
    aliases = {**stages, **spec.layer_aliases}
    if layer in aliases:
        return aliases[layer]
    if layer in nodes:
        return layer
    raise ScaleprobeError(
        f"layer={layer!r} is not a layer of {spec.name}; choose from "
        f"{[*aliases, *blocks]} or any node that "
        f"`python -m src.features.layers {_listing_argument(spec)} --all` lists"
    )


def _blocks_of(model: nn.Module, nodes: frozenset[str]) -> list[str]:
    """Return the named blocks of a model, in network order (see :func:`scan_blocks`)."""
    modules = dict(model.named_modules())

    def sequential(name: str) -> bool:
        return isinstance(modules[name], nn.Sequential) and name.split(".")[0] not in _HEADS

    def children(name: str) -> list[str]:
        prefix = f"{name}." if name else ""
        return [f"{prefix}{child}" for child, _ in modules[name].named_children()]

    top = [name for name in children("") if sequential(name) and name in nodes]
    if len(top) >= 3:  # ResNet: layer1 .. layer4
        return top
    for depth in range(1, 4):
        found = [
            name for name in modules if name.count(".") == depth - 1 and name and sequential(name)
        ]
        found = [name for name in found if len(children(name)) >= 2]
        if found:
            best = max(found, key=lambda name: len(children(name)))  # first of the longest
            return [child for child in children(best) if child in nodes]
    return []


@functools.cache
def _scan_blocks_of(library: str, builder: str, kwargs_json: str) -> tuple[str, ...]:
    kwargs = json.loads(kwargs_json)
    spec = BackboneSpec(name=builder, library=library, builder=builder, builder_kwargs=kwargs)
    return tuple(_blocks_of(_random_model(spec), _graph_nodes(spec).nodes))


def scan_blocks(backbone: BackboneSpec | str) -> list[str]:
    """Return the layers ``layer=all`` scans: every named block of the backbone, in order.

    The spec's aliases when it has them (InceptionV3's Keras ``mixed0`` ..
    ``mixed10``); else three or more top-level ``Sequential`` stages (ResNet's
    ``layer1`` .. ``layer4``); else the children of the shallowest, longest
    ``Sequential`` outside the head (EfficientNet-Lite0's ``blocks.0`` ..
    ``blocks.6``, a ViT's encoder layers, ConvNeXt's ``stages.0`` .. ``stages.3``).
    Raises the one-line error when none is found, naming ``layer.name=<list>``.
    """
    spec = get_backbone_spec(backbone)
    if spec.layer_aliases:
        order = {name: i for i, name in enumerate(graph_node_names(_random_model(spec)))}
        depth = {
            alias: max(i for n, i in order.items() if n == node or n.startswith(f"{node}."))
            for alias, node in spec.layer_aliases.items()
        }
        return sorted(spec.layer_aliases, key=depth.__getitem__)
    kwargs = json.dumps(dict(spec.builder_kwargs), sort_keys=True)
    blocks = list(_scan_blocks_of(spec.library, spec.builder, kwargs))
    if not blocks:
        raise ScaleprobeError(
            f"layer=all finds no named blocks in {spec.name}; list the layers to scan, "
            f"layer.name=<a>,<b>,... from `python -m src.features.layers "
            f"{_listing_argument(spec)}`"
        )
    return blocks


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
        extractor = feature_extractor(model, names)
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
    """The graph node (or module) it reads."""
    dim: int
    """Length of its feature vector after reduction."""
    layout: str
    """Its output's layout (nchw, nhwc, tokens, flat), as the reduction reads it."""


_HEADS = {"fc", "dropout", "avgpool", "flatten", "classifier", "heads", "head"}


def _listed_blocks(spec: BackboneSpec, model: nn.Module) -> list[str]:
    """Top-level blocks and, inside Sequential containers, their stages (``features.3``)."""
    nodes, blocks, _ = _graph_nodes(spec)
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
    stages = {k: v for k, v in _graph_nodes(spec).stage_aliases.items() if k != LAST_STAGE}
    alias_of = {node: alias for alias, node in [*stages.items(), *spec.layer_aliases.items()]}
    if all_nodes:
        nodes = [n for n in graph_node_names(model) if n != "x"]
    else:
        nodes = _listed_blocks(spec, model)
        nodes += [n for n in stages.values() if n not in nodes]
    found = reduced_nodes(model, nodes, spec.input_size, spec.reduction(pooling), spec.builder)
    return [LayerRow(alias_of.get(n, n), n, *found[n]) for n in nodes]


def list_layers(
    backbone: BackboneSpec | str, *, all_nodes: bool = False
) -> list[tuple[str, str, int]]:
    """Return ``(name, graph node, feature dim)`` for a backbone's layers."""
    return [(row.name, row.node, row.dim) for row in layer_table(backbone, all_nodes=all_nodes)]


_CATALOG_LISTS = {
    "torchvision": "torchvision.models.list_models(module=torchvision.models)",
    "timm": "timm.list_models()",
}


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
                f"backbone {value!r} needs --name <model>, e.g. --name resnet18 (any model of "
                f"{node.catalog}: {_CATALOG_LISTS.get(node.catalog, node.catalog)})"
            )
        node.name = model
        node.weights = RANDOM_WEIGHTS  # the listing needs no weights
    elif model is not None and model != node.get("name"):
        raise ScaleprobeError(
            f"--name {model} does not apply to {value!r}, which builds {node.get('name')}; "
            "use `torchvision --name <model>` or `timm --name <model>`"
        )
    return create_backbone_spec(node)


def main(argv: list[str] | None = None) -> int:
    """Print a backbone's layer names with their feature dimensions and layouts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backbone", help="a conf/backbone option or a backbone YAML file")
    parser.add_argument("--name", help="the model of a catalog backbone (torchvision, timm)")
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
    lines = [f"{'layer':<{width}}  {'graph node':<{nodes}} {'dim':>5}  layout"]
    lines += [f"{r.name:<{width}}  {r.node:<{nodes}} {r.dim:>5}  {r.layout}" for r in rows]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
