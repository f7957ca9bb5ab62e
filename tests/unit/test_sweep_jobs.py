"""A sweep's jobs listed and validated before any runs (issue 19.10, 19.9's job count)."""

from __future__ import annotations

import pytest
from hydra import compose, initialize
from hydra.core.global_hydra import GlobalHydra
from omegaconf import open_dict

from src.config import validate_config
from src.errors import ScaleprobeError
from src.tracking.sweep_jobs import list_sweep_jobs, validate_sweep_jobs


@pytest.fixture
def sweep():
    """Compose a sweep's config with Hydra initialized, as the callback sees it."""
    GlobalHydra.instance().clear()

    def make(*task: str):
        cfg = compose("config", return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.overrides.task = list(task)
        return cfg

    with initialize(version_base="1.3", config_path="../../conf"):
        yield make
    GlobalHydra.instance().clear()


def test_jobs_are_the_basic_sweepers_product_in_launch_order(sweep):
    cfg = sweep("alpha=0,0.001", "n_train=8", "pair=glob(albatross_a*)")
    assert list_sweep_jobs(cfg) == [
        ["alpha=0", "n_train=8", "pair=albatross_albatross"],
        ["alpha=0.001", "n_train=8", "pair=albatross_albatross"],
    ]


def test_another_sweeper_has_no_list(sweep):
    cfg = sweep("alpha=0,0.001")
    with open_dict(cfg):
        cfg.hydra.sweeper._target_ = "hydra_plugins.hydra_optuna_sweeper.OptunaSweeper"
    assert list_sweep_jobs(cfg) is None


def test_a_bad_value_in_any_job_names_the_job_and_the_value(sweep):
    cfg = sweep("alpha=0.001,-1,0.01", "n_train=8")
    with pytest.raises(ScaleprobeError) as info:
        validate_sweep_jobs(cfg, list_sweep_jobs(cfg), validate_config)
    assert str(info.value) == (
        "sweep job #1 (alpha=-1): alpha=-1 is out of range; expected a value >= 0.0"
    )


def test_a_bad_group_option_in_a_job_is_one_line(sweep):
    cfg = sweep("pair=albatross_kite,nope")
    with pytest.raises(ScaleprobeError, match=r"^sweep job #1 \(pair=nope\): ") as info:
        validate_sweep_jobs(cfg, list_sweep_jobs(cfg), validate_config)
    assert "\n" not in str(info.value)
    assert "albatross_kite" in str(info.value)  # Hydra's list of options


def test_the_sweep_checks_keys_run_py_alone_checked_before(sweep):
    cfg = sweep("n_permutations=5,0")
    with pytest.raises(ScaleprobeError) as info:
        validate_sweep_jobs(cfg, list_sweep_jobs(cfg), validate_config)
    assert str(info.value) == (
        "sweep job #1 (n_permutations=0): n_permutations=0 is out of range; expected a value >= 1"
    )
