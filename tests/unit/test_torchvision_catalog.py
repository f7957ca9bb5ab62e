"""#13.1: `backbone=torchvision backbone.name=<any classification model>`."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf

from src.config import validate_config
from src.errors import ScaleprobeError
from src.features.backbones import (
    CONF_DIR,
    BackboneSpec,
    build_backbone,
    create_backbone_spec,
    resolve_weights,
)
from src.features.layers import reduced_nodes
from src.features.torchvision_models import IMAGENET_MEAN, hub_checkpoint_path

GENERIC = OmegaConf.load(CONF_DIR / "backbone" / "torchvision.yaml")


def _spec(**changes) -> BackboneSpec:
    return create_backbone_spec(OmegaConf.merge(GENERIC, changes))


def test_the_generic_preset_validates_with_the_model_as_its_name(compose_config):
    cfg = compose_config(["backbone=torchvision", "backbone.name=resnet18", "layer.name=layer3"])
    validate_config(cfg)
    spec = create_backbone_spec(cfg.backbone)
    assert (spec.name, spec.builder, spec.input_size, spec.mean) == (
        "resnet18",
        "resnet18",
        224,
        IMAGENET_MEAN,
    )


@pytest.mark.parametrize(
    ("name", "size", "kwargs"),
    [
        ("vit_b_16", 224, {}),  # IMAGENET1K_V1's crop size: the ViT's own 224
        ("efficientnet_b3", 300, {}),
        ("vit_h_14", 518, {"image_size": 518}),  # SWAG weights: the ViT is built at 518
    ],
)
def test_input_size_comes_from_the_weights_transforms(name, size, kwargs):
    spec = _spec(name=name, weights="random")
    assert spec.input_size == size
    assert dict(spec.builder_kwargs) == kwargs
    assert spec.preprocessing().size == size


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "resnt18",
            r"^backbone.name='resnt18' is not a torchvision model; close matches: \['resnet18'",
        ),
        (
            "fasterrcnn_resnet50_fpn",
            r"^backbone.name='fasterrcnn_resnet50_fpn' is a torchvision detection model, not a "
            r"classification model",
        ),
        ("???", r"^backbone.name='\?\?\?' must be a non-empty string \(backbone=torchvision"),
    ],
)
def test_a_bad_model_name_is_one_line(name, message):
    with pytest.raises(ScaleprobeError, match=message) as info:
        _spec(name=name)
    assert "\n" not in str(info.value)


def test_a_bad_model_name_stops_the_config_check(compose_config):
    cfg = compose_config(["backbone=torchvision", "backbone.name=resnet1800"])
    with pytest.raises(ScaleprobeError, match=r"close matches: \['resnet18"):
        validate_config(cfg)
    cfg = compose_config(["backbone=resnet50", "backbone.name=resnet18"])
    with pytest.raises(ScaleprobeError, match=r"backbone.name='resnet18' is not allowed"):
        validate_config(cfg)  # a preset still names itself


def test_default_weights_are_found_in_the_hub_under_their_own_name(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    spec = _spec(name="resnet18")
    assert spec.weights == "DEFAULT"
    path = hub_checkpoint_path(spec.builder, "DEFAULT")
    assert path.name == "resnet18-f37072fd.pth"
    path.parent.mkdir(parents=True)
    model = build_backbone(spec, resolve_weights(spec, "random"))
    torch.save(model.state_dict(), path)
    source = resolve_weights(spec)
    assert source.label == "IMAGENET1K_V1"
    assert source.path == path


def test_a_vit_encoder_layer_is_768_patch_token_means():
    spec = _spec(name="vit_b_16", weights="random")
    model = build_backbone(spec, resolve_weights(spec))
    nodes = ["encoder.layers.encoder_layer_6", "conv_proj", "getitem_5"]
    found = reduced_nodes(model, nodes, spec.input_size, spec.reduction(), spec.builder)
    assert found == {
        "encoder.layers.encoder_layer_6": (768, "tokens"),
        "conv_proj": (768, "nchw"),
        "getitem_5": (768, "flat"),
    }
