"""Weights: hub-cache lookup, local state_dict checkpoints, random control, clear errors."""

from __future__ import annotations

import hashlib

import pytest
import torch
from omegaconf import OmegaConf

from src.errors import ScaleprobeError
from src.features.backbones import (
    CONF_DIR,
    RANDOM_WEIGHTS,
    BackboneSpec,
    WeightsSource,
    build_backbone,
    create_backbone_spec,
    get_backbone_spec,
    model_fields,
    resolve_weights,
)
from src.features.torchvision_models import hub_checkpoint_path


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_random_weights_are_seeded_and_reproducible():
    source = resolve_weights("resnet50", RANDOM_WEIGHTS)
    assert source.label == "random"
    first = build_backbone("resnet50", source).state_dict()
    second = build_backbone("resnet50", source).state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_hub_path_uses_torchvisions_file_names(empty_hub):
    assert hub_checkpoint_path("inception_v3", "IMAGENET1K_V1") == (
        empty_hub / "inception_v3_google-0cc3c7bd.pth"
    )
    assert hub_checkpoint_path("resnet50", "IMAGENET1K_V2").name == "resnet50-11ad3fa6.pth"


def test_missing_pretrained_file_falls_back_to_random_with_one_line(empty_hub, caplog):
    source = resolve_weights("inception_v3", "IMAGENET1K_V1")
    assert source.label == "random"
    (record,) = [r for r in caplog.records if "not found" in r.message]
    assert "inception_v3_google-0cc3c7bd.pth" in record.message
    assert str(empty_hub) in record.message
    assert "weights=random" in record.message


def test_missing_pretrained_file_is_an_error_when_required(empty_hub):
    with pytest.raises(ScaleprobeError) as info:
        resolve_weights("resnet50", "IMAGENET1K_V1", require_weights=True)
    message = str(info.value)
    assert "\n" not in message
    assert "resnet50-0676ba61.pth" in message
    assert str(empty_hub) in message
    assert "https://download.pytorch.org/models/resnet50-0676ba61.pth" in message


def test_unknown_weights_name_lists_choices():
    with pytest.raises(
        ScaleprobeError,
        match=r"choose from \['random', 'IMAGENET1K_V1', 'IMAGENET1K_V2', 'DEFAULT'\]",
    ):
        resolve_weights("resnet50", "IMAGENET1K_V9")


def test_hub_file_is_found_hashed_and_loaded(empty_hub):
    model = build_backbone("resnet50", WeightsSource("random", "x"))
    with torch.no_grad():
        model.fc.bias.fill_(0.5)
    empty_hub.mkdir(parents=True)
    path = empty_hub / "resnet50-0676ba61.pth"
    torch.save(model.state_dict(), path)
    source = resolve_weights("resnet50", "IMAGENET1K_V1", require_weights=True)
    assert source.label == "IMAGENET1K_V1"
    assert source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = build_backbone("resnet50", source)
    assert torch.all(loaded.fc.bias == 0.5)
    assert not loaded.training


def test_local_checkpoint_with_aux_head_loads_strictly(tmp_path):
    from torchvision.models import inception_v3

    reference = inception_v3(weights=None, aux_logits=True, init_weights=False)
    path = tmp_path / "inception.pth"
    torch.save({"state_dict": reference.state_dict()}, path)  # Lightning-style wrapper
    source = resolve_weights("inception_v3", weights_path=path)
    assert source.label == "file:inception.pth"
    model = build_backbone("inception_v3", source, transform_input=True)
    assert model.transform_input is True
    assert torch.equal(
        model.Mixed_7a.branch3x3_1.conv.weight, reference.Mixed_7a.branch3x3_1.conv.weight
    )


def test_checkpoint_of_another_architecture_is_rejected(tmp_path):
    path = tmp_path / "resnet.pth"
    torch.save(build_backbone("resnet50", WeightsSource("random", "x")).state_dict(), path)
    source = resolve_weights("inception_v3", weights_path=path)
    with pytest.raises(
        ScaleprobeError, match=r"resnet.pth does not fit inception_v3: missing keys"
    ):
        build_backbone("inception_v3", source)


def test_checkpoint_that_is_not_a_state_dict_is_rejected(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(ScaleprobeError, match=r"garbage.pth cannot be read as a state_dict"):
        build_backbone("resnet50", resolve_weights("resnet50", weights_path=garbage))
    tensor = tmp_path / "tensor.pth"
    torch.save(torch.zeros(3), tensor)
    with pytest.raises(ScaleprobeError, match=r"holds a Tensor, not a state_dict"):
        build_backbone("resnet50", resolve_weights("resnet50", weights_path=tensor))


def test_missing_weights_path_names_it(tmp_path):
    with pytest.raises(ScaleprobeError, match=r"backbone.weights_path='.*nope.pth' does not exist"):
        resolve_weights("resnet50", weights_path=tmp_path / "nope.pth")


def test_unknown_backbone_lists_choices():
    with pytest.raises(ScaleprobeError, match=r"backbone='vgg16' is not supported; choose from"):
        resolve_weights("vgg16")


def _save_whole_model(path):
    torch.save(torch.nn.Linear(2, 2), path)


def _save_truncated_archive(path):
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (lambda p: p.write_bytes(b"not a checkpoint"), "it is not a PyTorch checkpoint file"),
        (lambda p: p.write_bytes(b""), "the file is empty or cut short"),
        (_save_whole_model, "it holds Python objects besides tensors (a whole pickled model?)"),
        (_save_truncated_archive, "the PyTorch archive is damaged (truncated or corrupted)"),
    ],
    ids=["garbage", "empty", "whole-model", "truncated"],
)
def test_a_file_that_is_not_a_checkpoint_is_one_clean_line(tmp_path, write, reason):
    """#19.7e: torch's own page of advice ("please file an issue") must not follow our line."""
    path = tmp_path / "weights.pth"
    write(path)
    with pytest.raises(ScaleprobeError) as info:
        build_backbone("resnet50", resolve_weights("resnet50", weights_path=path))
    message = str(info.value)
    assert message == (
        f"checkpoint {path} cannot be read as a state_dict: {reason}; "
        "expected a state_dict saved by torch.save(model.state_dict(), path)"
    )


def test_shipped_specs_come_from_their_yaml():
    inception = get_backbone_spec("inception_v3")
    assert isinstance(inception, BackboneSpec)
    assert (inception.builder, inception.input_size, inception.reduce) == (
        "inception_v3",
        299,
        "spatial_mean",
    )
    assert dict(inception.builder_kwargs) == {"aux_logits": False, "init_weights": False}
    assert inception.layer_aliases["mixed8"] == "Mixed_7a"
    assert inception.transform_input is True
    assert inception.mean == (0.485, 0.456, 0.406)
    resnet = get_backbone_spec("resnet50")
    assert (resnet.weights, resnet.input_size, dict(resnet.layer_aliases)) == (
        "IMAGENET1K_V1",
        224,
        {},
    )
    assert resnet.preprocessing().size == 224


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"colour": "red"}, r"backbone.colour is not a backbone setting; choose from \['name'"),
        ({"reduce": "max"}, r"backbone.reduce='max' is not allowed; choose from"),
        ({"builder": "resnet9000"}, r"backbone.builder='resnet9000' is not a torchvision model"),
        ({"mean": [0.5, 0.5]}, r"backbone.mean=\[0.5, 0.5\] must be 3 numbers"),
        ({"_target_": "os.getcwd"}, r"backbone._target_='os.getcwd' is not a spec class"),
        ({"builder_kwargs": {"weights": "x"}}, r"builder_kwargs.weights is not allowed"),
    ],
)
def test_a_bad_backbone_yaml_is_one_line_naming_the_key(changes, message):
    node = OmegaConf.merge(OmegaConf.load(CONF_DIR / "backbone" / "resnet50.yaml"), changes)
    with pytest.raises(ScaleprobeError, match=message):
        create_backbone_spec(node)


def test_a_spec_not_in_conf_builds_and_resolves_its_layers():
    spec = BackboneSpec(name="tiny_resnet", builder="resnet18", input_size=64)
    source = resolve_weights(spec)
    assert source.label == RANDOM_WEIGHTS
    model = build_backbone(spec, source)
    assert type(model).__name__ == "ResNet"
    assert model_fields(spec, source) == {
        "library": "torchvision",
        "builder": "resnet18",
        "builder_kwargs": {},
        "transform_input": False,
        "reduce": "spatial_mean",
    }


def test_transform_input_on_a_model_without_it_is_one_line(tmp_path):
    spec = get_backbone_spec("resnet50")
    path = tmp_path / "w.pth"
    torch.save(build_backbone(spec, resolve_weights(spec, RANDOM_WEIGHTS)).state_dict(), path)
    with pytest.raises(ScaleprobeError, match=r"torchvision's resnet50 does not take"):
        build_backbone(spec, resolve_weights(spec, weights_path=path), transform_input=True)
