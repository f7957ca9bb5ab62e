"""Tests for src.targets: the scale target and building a target from config."""

from __future__ import annotations

import math

import numpy as np
import pytest
from omegaconf import OmegaConf

from src.data.boxes import Box, scale_ratio
from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.targets import ScaleTarget, Target, build_target

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
