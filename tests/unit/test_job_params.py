"""A job's MLflow params come from its composed config (issue 12.4)."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import open_dict

import src.job
from src.tracking import job_log
from src.tracking.job_params import job_params

COMPUTED = {"weights": "random", "feature_dim": 1280, "cache_key": "k1,k2"}


def _todays_params(cfg):
    """The hand-written dict src/run.py logged before (names and values must stay)."""
    return {
        "backbone": cfg.backbone.name,
        "layer": cfg.layer.name,
        "pair": cfg.pair.name,
        "train_class": cfg.pair.train_class,
        "test_class": cfg.pair.test_class,
        "alpha": float(cfg.alpha),
        "seed": cfg.seed,
        "n_splits": cfg.n_splits,
        "n_train": cfg.n_train,
        "n_test": cfg.n_test,
        **COMPUTED,
        "data": cfg.data.name,
        "n_permutations": cfg.n_permutations,
    }


@pytest.mark.parametrize("overrides", [[], ["alpha=0", "pair=albatross_kite", "backbone=resnet50"]])
def test_todays_params_keep_their_names_and_values(compose_config, overrides):
    cfg = compose_config(overrides)
    params = {k: str(v) for k, v in job_params(cfg, **COMPUTED).items()}
    expected = {k: str(v) for k, v in _todays_params(cfg).items()}
    assert {k: params.get(k) for k in expected} == expected


def test_a_new_config_key_is_logged_without_code(compose_config):
    knobs = ["+backbone.new_knob=3", "+layer.reduce=mean", "backbone.input_size=64"]
    cfg = compose_config(["backbone=inception_v3", *knobs])
    params = job_params(cfg, **COMPUTED)
    assert params["backbone.new_knob"] == 3
    assert params["layer.reduce"] == "mean"
    assert params["backbone.input_size"] == 64
    assert params["backbone.transform_input"] is True
    assert "data.root" not in params  # data: its name only (the rest are machine paths)
    assert "extract.batch_size" not in params


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([], {"target": "scale", "target.area": "box"}),
        (["target=position", "target.axis=y"], {"target": "position", "target.axis": "y"}),
        (["target=aspect"], {"target": "aspect"}),
        (
            ["target=csv", "target.path=factors.csv", "target.column=rotation_deg"],
            {
                "target": "csv",
                "target.path": "factors.csv",
                "target.column": "rotation_deg",
                "target.id_column": "image_id",
                "target.on_missing": "skip",
            },
        ),
    ],
)
def test_the_target_and_its_settings_are_params(compose_config, overrides, expected):
    # #14.5; target.root is data.root (a machine path, as data's other keys): not logged.
    params = job_params(compose_config(overrides), **COMPUTED)
    logged = {k: v for k, v in params.items() if k == "target" or k.startswith("target.")}
    assert logged == {**expected, "target._target_": logged["target._target_"]}
    assert logged["target._target_"].startswith("src.targets.")


@pytest.mark.slow
def test_a_run_logs_the_config_params_and_reads_provenance_once(cfg_tiny, monkeypatch):
    calls = []
    real = job_log.provenance
    monkeypatch.setattr(job_log, "provenance", lambda: calls.append(1) or real())
    with open_dict(cfg_tiny):
        del cfg_tiny["hydra"]  # its sweep paths need a running Hydra job
    src.job.run(cfg_tiny)
    assert len(calls) == 1
    client = MlflowClient(tracking_uri=cfg_tiny.tracking.uri)
    experiment = client.get_experiment_by_name("scaleprobe")
    (child,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`scaleprobe.role` = 'job'"
    )
    logged = child.data.params
    assert logged["backbone.input_size"] == str(cfg_tiny.backbone.input_size)
    assert logged["alpha"] == str(float(cfg_tiny.alpha))
    assert logged["weights"] == "random"
    assert logged["feature_dim"] == "192"  # Lite0 blocks.5, the default layer
