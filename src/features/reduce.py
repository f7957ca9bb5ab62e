"""A node's output -> one vector per image, by the output's layout.

The paper's rule is the mean of a feature map over its spatial positions; the
same rule carries over to every layout a torchvision (or timm) node can have:

* ``nchw`` (B, C, H, W): mean over H and W (CNNs; the default run's InceptionV3);
* ``nhwc`` (B, H, W, C): mean over H and W, never over channels (Swin, ConvNeXt's
  block internals);
* ``tokens`` (B, T, D): ``pooling=mean`` averages the patch tokens (the class
  token left out), ``pooling=cls`` takes the class token;
* ``flat`` (B, D): used as is.

A (T, D) token map is never flattened into T·D features. ``auto`` decides the
layout from the output's rank and the model, and stops with one line where the
shape cannot tell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from src.errors import ScaleprobeError

__all__ = [
    "LAYOUTS",
    "POOLINGS",
    "Reduction",
    "TokenInfo",
    "reduce_node",
    "resolve_layout",
    "token_info",
]

#: What ``backbone.layout`` may hold.
LAYOUTS = ("auto", "nchw", "nhwc", "tokens", "flat")
#: What ``layer.pooling`` may hold.
POOLINGS = ("mean", "cls")
_RANK = {"nchw": 4, "nhwc": 4, "tokens": 3, "flat": 2}
# Builders whose 4-d outputs are channels-last (B, H, W, C).
_NHWC_FAMILIES = ("swin",)


@dataclass(frozen=True)
class Reduction:
    """How every node's output is reduced: the spec's layout and the layer's pooling.

    Both are key fields of every cache entry (:meth:`fields`).
    """

    layout: str = "auto"
    pooling: str = "mean"

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ScaleprobeError(
                f"backbone.layout={self.layout!r} is not allowed; choose from {list(LAYOUTS)}"
            )
        if self.pooling not in POOLINGS:
            raise ScaleprobeError(
                f"layer.pooling={self.pooling!r} is not allowed; choose from {list(POOLINGS)}"
            )

    def fields(self) -> dict[str, str]:
        """Return the key fields: ``layout`` and ``pooling``."""
        return {"layout": self.layout, "pooling": self.pooling}


@dataclass(frozen=True)
class TokenInfo:
    """What a model says about its token sequences (ViT): why a class token is known.

    Attributes
    ----------
    prefix_tokens : int
        Tokens before the patch tokens (the class token: 1; none: 0).
    seq_length : int or None
        The length of a full sequence (prefix + patches) where the model says it.
    family : str
        The builder's name: channels-last families (Swin) read rank-4 outputs as NHWC.
    """

    prefix_tokens: int = 0
    seq_length: int | None = None
    family: str = ""


def token_info(model: nn.Module, family: str = "") -> TokenInfo:
    """Read a model's class-token count and sequence length (torchvision ViT, timm)."""
    prefix = getattr(model, "num_prefix_tokens", None)  # timm
    if prefix is None:
        prefix = 1 if isinstance(getattr(model, "class_token", None), torch.Tensor) else 0
    seq = getattr(model, "seq_length", None)  # torchvision ViT: patches + class token
    return TokenInfo(int(prefix), int(seq) if isinstance(seq, int) else None, family)


def _shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def resolve_layout(node: str, shape: Sequence[int], layout: str, info: TokenInfo) -> str:
    """Return the concrete layout of ``node``'s output of ``shape`` (batch first).

    ``layout`` is the spec's: a concrete one must fit the rank; ``auto`` takes
    rank 2 as flat, 3 as tokens, 4 as the family's NCHW (NHWC for Swin) unless
    the spatial sides (equal: inputs are square) say the other.
    """
    rank = len(shape)
    if layout != "auto":
        if rank != _RANK[layout]:
            raise ScaleprobeError(
                f"node {node!r} outputs shape {_shape(shape)}, not {layout} "
                f"({_RANK[layout]}-d); set backbone.layout=auto or choose another layer"
            )
        return layout
    if rank == 2:
        return "flat"
    if rank == 3:
        return "tokens"
    if rank == 4:
        fits = {"nchw": shape[2] == shape[3], "nhwc": shape[1] == shape[2]}
        preferred = "nhwc" if info.family.startswith(_NHWC_FAMILIES) else "nchw"
        other = "nchw" if preferred == "nhwc" else "nhwc"
        if fits[preferred]:
            return preferred
        if fits[other]:
            return other
    raise ScaleprobeError(
        f"node {node!r} outputs shape {_shape(shape)}: its layout cannot be told; set "
        f"backbone.layout to one of {list(LAYOUTS[1:])} or choose another layer"
    )


def _patch_start(node: str, tokens: int, pooling: str, info: TokenInfo) -> int:
    """Index of the first patch token of a (B, T, D) output."""
    prefix = info.prefix_tokens
    if info.seq_length is not None and prefix and tokens == info.seq_length - prefix:
        prefix = 0  # the patch tokens alone (before the class token is added)
    elif info.seq_length is not None and tokens != info.seq_length:
        raise ScaleprobeError(
            f"node {node!r} outputs {tokens} tokens, not the model's {info.seq_length} "
            "(class token + patches): its layout cannot be told; choose another layer"
        )
    if pooling == "cls" and prefix == 0:
        raise ScaleprobeError(
            f"layer.pooling=cls: node {node!r} has no class token; use layer.pooling=mean"
        )
    return prefix


def reduce_node(
    node: str, out: torch.Tensor, reduction: Reduction, info: TokenInfo | None = None
) -> torch.Tensor:
    """Turn ``node``'s batch output into ``(batch, dim)`` features by its layout.

    Raises
    ------
    ScaleprobeError
        One line naming the node and its shape when the layout cannot be told,
        does not fit the spec's, or ``pooling=cls`` meets a node without a class
        token (any CNN map).
    """
    info = info or TokenInfo()
    layout = resolve_layout(node, tuple(out.shape), reduction.layout, info)
    if layout in ("nchw", "nhwc", "flat") and reduction.pooling == "cls":
        raise ScaleprobeError(
            f"layer.pooling=cls: node {node!r} outputs a {layout} map "
            f"{_shape(out.shape)}, which has no class token; use layer.pooling=mean"
        )
    if layout == "nchw":
        return out.mean(dim=(2, 3))
    if layout == "nhwc":
        return out.mean(dim=(1, 2))
    if layout == "flat":
        return out
    start = _patch_start(node, out.shape[1], reduction.pooling, info)
    if reduction.pooling == "cls":
        return out[:, 0]
    return out[:, start:].mean(dim=1)
