"""Tests for src.targets: the scale target and building a target from config."""

from __future__ import annotations

import math

import numpy as np
import pytest
from omegaconf import OmegaConf

from src.data.boxes import Box, scale_ratio
from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.targets import AspectTarget, PositionTarget, ScaleTarget, Target, build_target

RECORDS = [
    ImageRecord("a", "/x/a.JPEG", "n02058221", 200, 100, Box(10, 10, 60, 30)),
    ImageRecord("b", "/x/b.JPEG", "n02058221", 100, 100, Box(0, 0, 100, 100)),
    ImageRecord("c", "/x/c.JPEG", "n02058221", 201, 101, Box(1, 1, 202, 102)),  # clipped
]


def test_scale_target_is_the_scale_ratio_as_float64():
    target = ScaleTarget()
    y = target.values(RECORDS)
    assert y.dtype == np.float64
    assert y.shape == (3,)
    assert y[0] == pytest.approx(math.sqrt(0.05))
    assert y[1] == 1.0
    np.testing.assert_array_equal(y, [scale_ratio(r.box, r.width, r.height) for r in RECORDS])
    assert (target.name, target.label) == ("scale", "scale ratio r = sqrt(box area / image area)")
    assert target.values([]).shape == (0,)


def test_the_default_config_builds_the_scale_target(compose_config):
    cfg = compose_config([])
    assert cfg.target.name == "scale"
    target = build_target(cfg.target)
    assert isinstance(target, ScaleTarget)
    assert target.name == "scale"


class _Broken(Target):
    label = "broken"

    def value(self, record: ImageRecord) -> float:
        return float("nan") if record.image_id == "b" else 1.0


def test_a_non_finite_value_names_the_target_and_the_image():
    with pytest.raises(ScaleprobeError, match=r"target 'broken' gave nan for image /x/b.JPEG"):
        _Broken("broken").values(RECORDS)


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"name": "x"}, "target._target_ is not set"),
        ({"_target_": "src.targets.nowhere.Target", "name": "x"}, "cannot be built"),
        ({"_target_": "collections.OrderedDict", "name": "x"}, "not a src.targets.base.Target"),
        ({"_target_": "src.targets.scale.ScaleTarget", "name": ""}, "target.name=''"),
    ],
)
def test_bad_target_config_is_one_line(node, message):
    with pytest.raises(ScaleprobeError, match=message) as info:
        build_target(OmegaConf.create(node))
    assert "\n" not in str(info.value)


def test_position_is_the_box_centre_over_the_image_size():
    x = PositionTarget(axis="x").values(RECORDS)
    y = PositionTarget(axis="y").values(RECORDS)
    np.testing.assert_allclose(x, [35 / 200, 0.5, 101 / 201])  # c is clipped to 1..201
    np.testing.assert_allclose(y, [20 / 100, 0.5, 51 / 101])
    assert PositionTarget(axis="y").label == "box centre y / image height"


def test_aspect_is_the_log_of_box_width_over_height():
    y = AspectTarget().values(RECORDS)
    np.testing.assert_allclose(y, [math.log(50 / 20), 0.0, math.log(200 / 100)])
    tall = ImageRecord("t", "/x/t.JPEG", "n02058221", 100, 100, Box(0, 0, 20, 40))
    assert AspectTarget().values([tall])[0] == pytest.approx(-math.log(2))


def test_box_targets_reject_a_box_outside_the_image_as_scale_does():
    outside = ImageRecord("o", "/x/o.JPEG", "n02058221", 100, 100, Box(0, 0, 150, 50))
    for target in (ScaleTarget(), PositionTarget(), AspectTarget()):
        with pytest.raises(ScaleprobeError, match="lies outside the 100x100 image"):
            target.values([outside])


@pytest.mark.parametrize(
    ("overrides", "kind", "settings"),
    [
        (["target=position"], PositionTarget, {"name": "position", "axis": "x"}),
        (["target=position", "target.axis=y"], PositionTarget, {"axis": "y"}),
        (["target=aspect"], AspectTarget, {"name": "aspect"}),
    ],
)
def test_the_box_target_configs_build(compose_config, overrides, kind, settings):
    target = build_target(compose_config(overrides).target)
    assert isinstance(target, kind)
    assert {key: getattr(target, key) for key in settings} == settings


def test_a_bad_axis_is_one_line(compose_config):
    from src.config import validate_config

    cfg = compose_config(["target=position", "target.axis=z"])
    with pytest.raises(ScaleprobeError, match=r"target.axis='z' is not allowed.*\['x', 'y'\]"):
        validate_config(cfg)
    with pytest.raises(ScaleprobeError, match=r"target.axis='z' is not allowed"):
        build_target(cfg.target)
