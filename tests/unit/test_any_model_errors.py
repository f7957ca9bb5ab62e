"""#13.8 (torchvision part): each bad input is one line, and nothing is cached."""

from __future__ import annotations

import pytest
import torch
from tiny_run import TINY, assert_one_line_and_nothing_cached
from torchvision.models import mobilenet_v3_small

TORCHVISION = [*TINY, "backbone=torchvision", "backbone.name=resnet18", "layer.name=layer3"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["backbone.name=resnt18"], r"backbone.name='resnt18' is not a torchvision model; close "),
        (
            ["backbone.name=fasterrcnn_resnet50_fpn"],
            r"'fasterrcnn_resnet50_fpn' is a torchvision detection model, not a classification",
        ),
        (
            ["layer.name=layer9"],
            r"layer='layer9' is not a layer of resnet18; .*"
            r"`python -m src\.features\.layers torchvision --name resnet18 --all`",
        ),
        (
            ["layer.pooling=cls"],
            r"layer.pooling=cls: node 'layer3' outputs a nchw map \(1, 256, 14, 14\), which has no "
            r"class token",
        ),
        (["layer.pooling=max"], r"layer.pooling='max' is not allowed; choose from \['mean'"),
        (["backbone.weights_path=OTHER"], r"does not fit resnet18: missing keys"),
    ],
)
def test_bad_input_is_one_line_and_caches_nothing(
    overrides, message, compose_config, shared_dirs, tmp_path
):
    overrides = [o.replace("OTHER", str(tmp_path / "mobilenet.pth")) for o in overrides]
    if any("mobilenet.pth" in o for o in overrides):  # a checkpoint of another architecture
        torch.save(mobilenet_v3_small().state_dict(), tmp_path / "mobilenet.pth")
    cfg = compose_config([*TORCHVISION, *overrides])
    assert_one_line_and_nothing_cached(cfg, shared_dirs, tmp_path, message)
