"""Checkpoint key maps: a checkpoint's state_dict key -> the architecture's key.

A backbone whose pretrained file was saved by another implementation of the same
network names the map in ``backbone.checkpoint_key_map``. A map raises
``KeyError`` for a key it cannot place: the checkpoint is of another model.
"""

from __future__ import annotations

import re

__all__ = ["efficientnet_lite_to_timm"]

# EfficientNet-Lite0's blocks per stage (timm's blocks.<stage>.<index>).
_LITE0_STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_LITE_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# The first stage's blocks have no expansion: depthwise conv, then projection.
_LITE_FIRST_STAGE = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_LITE_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_LITE_BLOCK_KEY = re.compile(r"_blocks\.(\d+)\.(\w+)")


def efficientnet_lite_to_timm(key: str) -> str:
    """Map an ``efficientnet-lite-pytorch`` Lite0 key to timm's ``tf_efficientnet_lite0``.

    That package (a fork of lukemelas/EfficientNet-PyTorch) numbers blocks
    flat (``_blocks.9._depthwise_conv.weight``); timm numbers them by stage
    (``blocks.4.0.conv_dw.weight``). The layers are the same, TF "same"
    padding included.

    >>> efficientnet_lite_to_timm("_blocks.9._depthwise_conv.weight")
    'blocks.4.1.conv_dw.weight'
    >>> efficientnet_lite_to_timm("_fc.bias")
    'classifier.bias'
    """
    module, _, leaf = key.rpartition(".")
    match = _LITE_BLOCK_KEY.fullmatch(module)
    if match is None:
        return f"{_LITE_TOP[module]}.{leaf}"
    block = int(match[1])
    start = 0
    for stage, depth in enumerate(_LITE0_STAGE_DEPTHS):
        if block < start + depth:
            names = _LITE_FIRST_STAGE if stage == 0 else _LITE_BLOCK
            return f"blocks.{stage}.{block - start}.{names[match[2]]}.{leaf}"
        start += depth
    raise KeyError(key)
