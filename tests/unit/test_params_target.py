"""#14.6: params.yaml takes the target and its keys, checked before any stage runs."""

from __future__ import annotations

import pytest

from src.check_params import check_params
from src.errors import ScaleprobeError
from tests.unit.test_config_rules import PARAMS


@pytest.mark.parametrize(
    ("target", "args"),
    [
        ("scale", ""),
        ("position", "target.axis=y"),
        ("aspect", ""),
        ("csv", "target.path=factors.csv target.column=rotation_deg"),
        (
            "csv",
            "target.path=f.csv target.column=b target.id_column=stem target.on_missing=error",
        ),
    ],
)
def test_a_target_and_its_keys_pass(target, args):
    check_params({**PARAMS, "target": target, "target_args": args})


@pytest.mark.parametrize(
    ("target", "args", "message"),
    [
        ("size", "", r"target='size' is not an option of conf/target; choose from \['aspect', "),
        ("position", "target.axis=z", r"target_args: target.axis='z' is not allowed; choose "),
        (
            "scale",
            "target.axis=y",
            r"target_args item 'target.axis=y' is not allowed for target=scale; expected "
            r"target.<key>=<value> with a key of conf/target/scale.yaml: \['area'\]",
        ),
        ("position", "axis=y", r"item 'axis=y' is not allowed for target=position"),
        ("position", "target.axis", r"item 'target.axis' is not allowed"),
        ("csv", "target.path=f.csv", r"target=csv needs target.column=<value> in target_args"),
        ("csv", "target.column=blur", r"target=csv needs target.path=<value> in target_args"),
        ("csv", "target.root=/d target.path=f.csv target.column=b", r"item 'target.root=/d'"),
        ("scale", None, r"target_args=None is not allowed; expected a string"),
    ],
)
def test_a_bad_target_in_params_is_one_line(target, args, message):
    with pytest.raises(ScaleprobeError, match=r"^params.yaml: .*" + message) as info:
        check_params({**PARAMS, "target": target, "target_args": args})
    assert "\n" not in str(info.value)


def test_the_target_keys_are_required():
    params = {k: v for k, v in PARAMS.items() if k != "target_args"}
    with pytest.raises(ScaleprobeError, match="key 'target_args' is missing"):
        check_params(params)
