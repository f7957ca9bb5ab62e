"""One table of config constraints, shared by runs, sweeps and params.yaml (issue 12.5)."""

from __future__ import annotations

import pytest
from omegaconf import open_dict

from src.check_params import check_params
from src.config import RULES, Rule, validate_config
from src.errors import ScaleprobeError

PARAMS = {
    "data": "synthetic",
    "backbone": "inception_v3",
    "weights": "random",
    "layer": "mixed8",
    "pair": "albatross_kite",
    "alpha": "0,0.01",
    "seed": 0,
    "n_splits": 4,
    "n_train": 8,
    "n_test": 6,
    "tracking": "local",
    "target": "scale",
    "target_args": "",
}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("n_permutations", 0, "n_permutations=0 is out of range; expected a value >= 1"),
        ("n_permutations", 2.5, "n_permutations=2.5 is not an integer"),
        ("path_alphas", [0, -1], "path_alphas[1]=-1 is out of range; expected a value >= 0.0"),
        ("path_alphas", [], "path_alphas=[] is not allowed; expected a non-empty list"),
        ("extract.num_workers", -1, "extract.num_workers=-1 is out of range"),
    ],
)
def test_keys_checked_only_in_run_py_before_are_in_the_table(compose_config, key, value, message):
    cfg = compose_config()
    with open_dict(cfg):
        parent, _, leaf = key.rpartition(".")
        (cfg[parent] if parent else cfg)[leaf] = value
    with pytest.raises(ScaleprobeError) as info:
        validate_config(cfg)
    assert str(info.value).startswith(message)


def test_num_workers_auto_is_allowed(compose_config):
    cfg = compose_config(["extract.num_workers=auto"])
    validate_config(cfg)


def test_config_and_params_yaml_read_the_same_range(compose_config, monkeypatch):
    cfg = compose_config(["n_splits=4"])
    validate_config(cfg)
    check_params(PARAMS)
    monkeypatch.setitem(RULES, "n_splits", Rule("n_splits", "integer", minimum=5))
    with pytest.raises(ScaleprobeError, match="n_splits=4 is out of range; expected a value >= 5"):
        validate_config(cfg)
    with pytest.raises(
        ScaleprobeError, match="n_splits=4 is not allowed; expected an integer >= 5"
    ):
        check_params(PARAMS)


def test_a_new_key_is_one_line(compose_config, monkeypatch):
    cfg = compose_config(["+data.blur_policy=ignore"])
    validate_config(cfg)  # not in the table: not checked
    rule = Rule("data.blur_policy", "choice", choices=("keep", "drop"))
    monkeypatch.setitem(RULES, rule.key, rule)
    with pytest.raises(ScaleprobeError, match=r"data.blur_policy='ignore' is not allowed"):
        validate_config(cfg)
