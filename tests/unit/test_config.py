from pathlib import Path

import pytest
from omegaconf import OmegaConf, open_dict

from src.config import validate_config, validate_job_config
from src.errors import ScaleprobeError

EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[2] / "conf/experiment").glob("*.yaml"))


def test_default_config_composes_and_validates(compose_config):
    cfg = compose_config()
    validate_config(cfg)
    assert cfg.backbone.name == "efficientnet_lite0"  # trained, offline (#13.5)
    assert cfg.backbone.weights_package.endswith("efficientnet-lite0-57934424.pth")
    assert cfg.layer.name == "blocks.5"
    assert cfg.data.name == "synthetic"
    assert cfg.tracking.uri == "sqlite:///mlruns/mlflow.db"
    assert cfg.n_splits == 10


@pytest.mark.parametrize(
    ("pair", "train", "test"),
    [
        ("albatross_albatross", "n02058221", "n02058221"),
        ("albatross_kite", "n02058221", "n01608432"),
        ("albatross_racing_car", "n02058221", "n04037443"),
    ],
)
def test_pairs_carry_the_papers_wnids(pair, train, test, compose_config):
    cfg = compose_config([f"pair={pair}"])
    assert (cfg.pair.train_class, cfg.pair.test_class) == (train, test)


def test_each_preset_brings_its_own_layer(compose_config):
    assert compose_config(["backbone=inception_v3"]).layer.name == "mixed8"
    assert compose_config(["experiment=paper"]).layer.name == "mixed8"
    assert compose_config(["backbone=timm", "backbone.name=convnext_atto"]).layer.name == (
        "last_stage"
    )


def test_resnet50_defaults_to_a_resnet_layer(compose_config):
    cfg = compose_config(["backbone=resnet50"])
    assert cfg.layer.name == "layer3"
    assert cfg.backbone.input_size == 224


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_preset_composes(experiment, compose_config):
    cfg = compose_config([f"experiment={experiment}"])
    assert cfg.backbone.name in {"efficientnet_lite0", "inception_v3", "resnet50"}
    if experiment == "paper":
        assert (cfg.n_train, cfg.n_test, cfg.n_splits) == (220, 220, 10)
        assert cfg.data.name == "imagenet"
        assert cfg.backbone.require_weights is True
    else:
        validate_config(cfg)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("alpha", -0.1, "alpha=-0.1 is out of range"),
        ("alpha", "abc", "alpha='abc' is not a finite number"),
        ("alpha", float("nan"), "alpha=nan is not a finite number"),
        ("n_train", 2.5, "n_train=2.5 is not an integer"),
        ("n_splits", 1, "n_splits=1 is out of range"),
        ("data.policy", "all", "data.policy='all' is not allowed; choose from"),
        ("pair.train_class", "n99999999", "pair.train_class='n99999999' is not a class"),
        ("backbone.name", "vgg16", "backbone.name='vgg16' is not allowed; choose from"),
        ("controls.kinds", ["pixel"], "controls.kinds has 'pixel'; allowed: ['random_weights'"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(key, value, message, compose_config):
    cfg = compose_config()
    with open_dict(cfg):
        parent, _, leaf = key.rpartition(".")
        (OmegaConf.select(cfg, parent) if parent else cfg)[leaf] = value
    with pytest.raises(ScaleprobeError, match=message.replace("(", r"\(").replace("[", r"\[")):
        validate_config(cfg)


def test_a_probe_job_refuses_several_nodes_in_one_line_naming_src_prepare(compose_config):
    cfg = compose_config(["extract.num_nodes=2"])
    validate_config(cfg)  # src.prepare's check: every srun task runs it
    with pytest.raises(ScaleprobeError, match=r"extract\.num_nodes=2 extracts under python -m "
                       r"src\.prepare.*extract\.num_nodes=1") as info:  # fmt: skip
        validate_job_config(cfg)
    assert "\n" not in str(info.value)
    validate_job_config(compose_config(["extract.num_nodes=1"]))
