"""Layer names: the paper's Keras names mapped to torchvision graph nodes.

Run ``python -m src.features.layers inception_v3`` to list a backbone's layers
with their feature dimensions.
"""

from __future__ import annotations

import argparse
import functools
import sys

import torch
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from src.errors import ScaleprobeError

__all__ = ["LAYER_ALIASES", "feature_dims", "list_layers", "main", "resolve_layer"]

# Keras InceptionV3 block names (as in the paper) -> torchvision modules.
LAYER_ALIASES: dict[str, dict[str, str]] = {
    "inception_v3": {
        "mixed0": "Mixed_5b",
        "mixed1": "Mixed_5c",
        "mixed2": "Mixed_5d",
        "mixed3": "Mixed_6a",
        "mixed4": "Mixed_6b",
        "mixed5": "Mixed_6c",
        "mixed6": "Mixed_6d",
        "mixed7": "Mixed_6e",
        "mixed8": "Mixed_7a",
        "mixed9": "Mixed_7b",
        "mixed10": "Mixed_7c",
    },
    "resnet50": {},
}

_INPUT_SIZE = {"inception_v3": 299, "resnet50": 224}


def _random_model(name: str) -> nn.Module:
    from src.features.backbones import RANDOM_WEIGHTS, WeightsSource, build_backbone

    return build_backbone(name, WeightsSource(RANDOM_WEIGHTS, ""))


@functools.cache
def _graph_nodes(name: str) -> tuple[frozenset[str], tuple[str, ...]]:
    """All eval-mode graph nodes and the top-level blocks, for a backbone name."""
    model = _random_model(name)
    _, nodes = get_graph_node_names(model)
    blocks = tuple(child for child, _ in model.named_children())
    return frozenset(nodes) | frozenset(blocks), blocks


def resolve_layer(backbone: str, layer: str) -> str:
    """Return the torchvision node name for ``layer`` (a Keras alias or a node name)."""
    aliases = LAYER_ALIASES.get(backbone, {})
    if layer in aliases:
        return aliases[layer]
    nodes, blocks = _graph_nodes(backbone)
    if layer in nodes:
        return layer
    raise ScaleprobeError(
        f"layer={layer!r} is not a layer of {backbone}; choose from "
        f"{[*aliases, *blocks]} or any node that "
        f"`python -m src.features.layers {backbone} --all` lists"
    )


def feature_dims(model: nn.Module, nodes: list[str], input_size: int) -> dict[str, int]:
    """Channels of each node's output for one dummy image (the spatial mean keeps them)."""
    extractor = create_feature_extractor(model, return_nodes={n: n for n in nodes})
    with torch.inference_mode():
        outputs = extractor(torch.zeros(1, 3, input_size, input_size))
    return {n: int(out.shape[1]) for n, out in outputs.items()}


def list_layers(backbone: str, *, all_nodes: bool = False) -> list[tuple[str, str, int]]:
    """Return ``(name, torchvision node, feature dim)`` for a backbone's layers."""
    model = _random_model(backbone)
    aliases = LAYER_ALIASES.get(backbone, {})
    alias_of = {node: alias for alias, node in aliases.items()}
    _, blocks = _graph_nodes(backbone)
    if all_nodes:
        _, ordered = get_graph_node_names(model)
        nodes = [n for n in ordered if n != "x"]
    else:
        nodes = [b for b in blocks if b not in {"fc", "dropout", "avgpool", "flatten"}]
    dims = feature_dims(model, nodes, _INPUT_SIZE[backbone])
    return [(alias_of.get(n, n), n, dims[n]) for n in nodes]


def main(argv: list[str] | None = None) -> int:
    """Print a backbone's layer names with their feature dimensions."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backbone", choices=sorted(LAYER_ALIASES))
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
