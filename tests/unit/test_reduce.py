"""A node's output -> one vector per image, by its layout (#13.3), on known tensors."""

from __future__ import annotations

import pytest
import torch

from src.errors import ScaleprobeError
from src.features.reduce import Reduction, TokenInfo, reduce_node, resolve_layout

VIT = TokenInfo(prefix_tokens=1, seq_length=5, family="vit_b_16")


def _known(*shape: int) -> torch.Tensor:
    return torch.arange(float(torch.tensor(shape).prod())).reshape(shape)


def test_nchw_is_the_mean_over_h_and_w_bit_for_bit():
    out = torch.randn(2, 7, 5, 5)
    reduced = reduce_node("Mixed_7a", out, Reduction())
    assert torch.equal(reduced, out.mean(dim=(2, 3)))  # the paper's rule, as before #13
    assert reduced.shape == (2, 7)


def test_nhwc_averages_positions_not_channels():
    out = _known(1, 2, 2, 3)  # (B, H, W, C): channel c holds c, c+3, c+6, c+9
    reduced = reduce_node("features.1", out, Reduction(layout="nhwc"))
    assert reduced.tolist() == [[4.5, 5.5, 6.5]]
    swin = TokenInfo(family="swin_t")
    assert resolve_layout("features.1", (1, 7, 7, 96), "auto", swin) == "nhwc"
    assert resolve_layout("permute", (1, 96, 7, 7), "auto", swin) == "nchw"
    assert resolve_layout("features.1.0.block.2", (1, 56, 56, 96), "auto", TokenInfo()) == "nhwc"


def test_tokens_mean_leaves_the_class_token_out_and_cls_takes_it():
    out = torch.tensor([[[100.0, -100.0], [1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]]])
    mean = reduce_node("encoder.layers.encoder_layer_6", out, Reduction(pooling="mean"), VIT)
    assert mean.tolist() == [[4.0, 5.0]]
    cls = reduce_node("encoder.layers.encoder_layer_6", out, Reduction(pooling="cls"), VIT)
    assert cls.tolist() == [[100.0, -100.0]]
    # the patch tokens alone (before the class token is prepended): all of them count
    patches = reduce_node("permute", out[:, 1:], Reduction(), VIT)
    assert patches.tolist() == [[4.0, 5.0]]


def test_tokens_are_never_flattened():
    out = torch.randn(3, 5, 8)
    assert reduce_node("encoder.ln", out, Reduction(), VIT).shape == (3, 8)  # not 5 * 8


def test_flat_is_used_as_is():
    out = torch.randn(2, 10)
    assert torch.equal(reduce_node("fc", out, Reduction()), out)


@pytest.mark.parametrize(
    ("shape", "layout", "pooling", "message"),
    [
        ((1, 4, 3, 5), "auto", "mean", r"node 'n' outputs shape \(1, 4, 3, 5\): its layout cannot"),
        ((1, 2, 3, 4, 5), "auto", "mean", r"node 'n' outputs shape \(1, 2, 3, 4, 5\)"),
        ((1, 8, 7, 7), "tokens", "mean", r"node 'n' outputs shape \(1, 8, 7, 7\), not tokens"),
        ((1, 8, 7, 7), "auto", "cls", r"layer.pooling=cls: node 'n' outputs a nchw map"),
        ((1, 8), "auto", "cls", r"layer.pooling=cls: node 'n' outputs a flat map"),
        ((1, 768, 4), "auto", "mean", r"node 'n' outputs 768 tokens, not the model's 5"),
        ((1, 4, 8), "auto", "cls", r"layer.pooling=cls: node 'n' has no class token"),
    ],
)
def test_a_layout_that_cannot_be_told_is_one_line(shape, layout, pooling, message):
    with pytest.raises(ScaleprobeError, match=message) as info:
        reduce_node("n", torch.zeros(shape), Reduction(layout, pooling), VIT)
    assert "\n" not in str(info.value)


def test_bad_layout_or_pooling_names_the_key():
    with pytest.raises(ScaleprobeError, match=r"backbone.layout='hwc' is not allowed"):
        Reduction(layout="hwc")
    with pytest.raises(ScaleprobeError, match=r"layer.pooling='max' is not allowed"):
        Reduction(pooling="max")
