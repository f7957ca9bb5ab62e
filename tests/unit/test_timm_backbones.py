"""#13.2, #13.6, #13.8 (timm part): any timm model by name, offline; bad input is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from huggingface_hub import constants
from omegaconf import OmegaConf
from safetensors.torch import save_file
from tiny_run import TINY, assert_one_line_and_nothing_cached
from torch import nn

from src.errors import ScaleprobeError
from src.features import timm_models
from src.features.backbones import (
    CONF_DIR,
    BackboneSpec,
    build_backbone,
    create_backbone_spec,
    resolve_weights,
)
from src.features.graph import graph_node_names
from src.features.layers import layer_table, main, resolve_layer

TIMM = [*TINY, "backbone=timm", "backbone.name=convnext_atto"]


def _spec(**changes) -> BackboneSpec:
    node = OmegaConf.merge(OmegaConf.load(CONF_DIR / "backbone" / "timm.yaml"), changes)
    return create_backbone_spec(node)


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache of this test's own."""
    cache = tmp_path / "hf" / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_a_timm_model_takes_size_and_normalization_from_its_pretrained_config():
    spec = _spec(name="tf_efficientnet_lite0", weights="random")
    assert (spec.library, spec.builder, spec.input_size) == ("timm", "tf_efficientnet_lite0", 224)
    assert spec.mean == (0.5, 0.5, 0.5)  # timm's config for the TF-trained Lite0
    assert _spec(name="convnext_atto").mean == pytest.approx((0.485, 0.456, 0.406))


def test_the_last_stage_is_the_default_layer_and_stages_are_named_by_stride():
    spec = _spec(name="convnext_atto", weights="random")
    assert resolve_layer(spec, "last_stage") == "stages.3"
    assert resolve_layer(spec, "stride16") == "stages.2"
    rows = {row.node: row for row in layer_table(spec)}
    assert (rows["stages.3"].name, rows["stages.3"].dim, rows["stages.3"].layout) == (
        "stride32",
        320,  # convnext_atto's width
        "nchw",
    )


def test_the_layer_listing_command_lists_a_timm_model(capsys):
    assert main(["timm", "--name", "convnext_atto"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["layer", "graph", "node", "dim", "layout"]
    assert ["stride32", "stages.3", "320", "nchw"] in [line.split() for line in lines]


def test_a_pretrained_file_in_the_hugging_face_cache_is_found_and_hashed(hf_cache):
    spec = _spec(name="convnext_atto", weights="DEFAULT", require_weights=True)
    model = build_backbone(spec, resolve_weights(spec, "random"))
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.5)  # not the seeded random init
    snapshot = hf_cache / "models--timm--convnext_atto.d2_in1k" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("abc123")
    save_file(model.state_dict(), snapshot / "model.safetensors")
    source = resolve_weights(spec)
    assert source.label == "convnext_atto.d2_in1k"
    assert source.path == snapshot / "model.safetensors"
    assert len(source.sha256) == 64
    loaded = build_backbone(spec, source).state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())


def test_a_missing_pretrained_file_says_which_file_where_and_how(hf_cache, caplog):
    spec = _spec(name="convnext_atto", weights="DEFAULT", require_weights=True)
    with pytest.raises(ScaleprobeError) as info:
        resolve_weights(spec)
    message = str(info.value)
    assert "\n" not in message
    assert "timm/convnext_atto.d2_in1k's model.safetensors" in message
    assert str(hf_cache) in message
    assert "huggingface-cli download timm/convnext_atto.d2_in1k" in message
    assert "backbone.weights_path=<file>" in message
    source = resolve_weights(spec, require_weights=False)
    assert source.label == "random"
    assert "using random weights" in caplog.text


def test_a_safetensors_weights_path_loads(tmp_path):
    spec = _spec(name="convnext_atto", weights="random")
    model = build_backbone(spec, resolve_weights(spec))
    save_file(model.state_dict(), tmp_path / "mine.safetensors")
    source = resolve_weights(spec, weights_path=tmp_path / "mine.safetensors")
    assert source.label == "file:mine.safetensors"
    assert isinstance(build_backbone(spec, source), nn.Module)
    (tmp_path / "broken.safetensors").write_bytes(b"not safetensors")
    broken = resolve_weights(spec, weights_path=tmp_path / "broken.safetensors")
    with pytest.raises(ScaleprobeError, match=r"broken.safetensors cannot be read as safetensors"):
        build_backbone(spec, broken)


class _Untraceable(nn.Module):
    """A model whose forward branches on a tensor's value: torch.fx cannot trace it."""

    def __init__(self, **_: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if x.sum() > 0:
            x = x * 2
        return x


@pytest.fixture(scope="module")
def untraceable_model():
    name = "scaleprobe_test_untraceable"

    def build(pretrained: bool = False, **kwargs: object) -> nn.Module:
        return _Untraceable(**kwargs)

    build.__name__ = name
    timm.models.register_model(build)
    timm_models.timm_models.cache_clear()
    yield name
    timm_models.timm_models.cache_clear()


def test_a_model_that_does_not_trace_is_one_line(untraceable_model):
    model = timm.create_model(untraceable_model)
    with pytest.raises(ScaleprobeError) as info:
        graph_node_names(model)
    assert "\n" not in str(info.value)
    assert "model _Untraceable cannot be traced by torch.fx" in str(info.value)


def _write_other_checkpoint(tmp_path: Path) -> None:
    other = timm.create_model("resnet18")
    torch.save(other.state_dict(), tmp_path / "resnet18.pth")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["backbone.name=convnext_attto"], r"'convnext_attto' is not a timm model; close matches"),
        (["backbone.weights=in22k"], r"'in22k' is not a pretrained tag of timm's convnext_atto"),
        (
            ["layer.name=stages.9"],
            r"layer='stages.9' is not a layer of convnext_atto; .*"
            r"`python -m src\.features\.layers timm --name convnext_atto --all`",
        ),
        (
            ["layer.pooling=cls"],
            r"layer.pooling=cls: node 'stages.3' outputs a nchw map \(1, 320, 7, 7\)",
        ),
        (["backbone.weights_path=OTHER"], r"does not fit convnext_atto: missing keys"),
        (["backbone.name=UNTRACEABLE"], r"cannot be traced by torch.fx"),
        (["backbone.weights=DEFAULT", "backbone.require_weights=true"], r"not found: put"),
    ],
)
def test_bad_timm_input_is_one_line_and_caches_nothing(
    overrides, message, compose_config, shared_dirs, tmp_path, untraceable_model, hf_cache
):
    if any("OTHER" in o for o in overrides):  # a checkpoint of another architecture
        _write_other_checkpoint(tmp_path)
    overrides = [
        o.replace("OTHER", str(tmp_path / "resnet18.pth")).replace("UNTRACEABLE", untraceable_model)
        for o in overrides
    ]
    cfg = compose_config([*TIMM, *overrides])
    assert_one_line_and_nothing_cached(cfg, shared_dirs, tmp_path, message)
