"""The joblib launcher's workers started early: the launcher's pool reused, env passed on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from joblib import Parallel, delayed
from joblib.externals.loky import reusable_executor
from omegaconf import OmegaConf

from src.tracking import joblib_workers

CONF = Path(__file__).resolve().parents[2] / "conf"
JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"


def _launcher(n_jobs: int = 2):
    """``hydra.launcher`` as conf's hydra/launcher=joblib composes it (the plugin's fields)."""
    from hydra_plugins.hydra_joblib_launcher.config import JobLibLauncherConf

    launcher = OmegaConf.structured(JobLibLauncherConf)
    launcher.n_jobs = n_jobs
    return launcher


def test_only_the_joblib_launcher_is_joblib():
    assert joblib_workers.is_joblib(_launcher())
    assert joblib_workers.is_joblib(OmegaConf.create({"_target_": JOBLIB}))
    basic = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
    assert not joblib_workers.is_joblib(OmegaConf.create({"_target_": basic}))
    assert not joblib_workers.is_joblib(OmegaConf.create({}))


@pytest.mark.parametrize(
    "value",
    [
        json.dumps({"3f2a9c": ["blocks.5", "features.3"]}),  # SCALEPROBE_SCAN_LAYERS
        "5b0f351b9a9a4a3d8a82d8beb84bdd81",  # a parent run id
        "it's a \\ path, [1,2] {a: b} = x",
        "a backslash before a quote \\' and at the end \\",
        "${not.an.interpolation}, \\${nor this}",
    ],
)
def test_job_env_reaches_every_job_through_hydra_env_set(monkeypatch, value):
    name = "SCALEPROBE_TEST_ENV"
    monkeypatch.delenv(name, raising=False)
    config = OmegaConf.create({"hydra": {"overrides": {"hydra": ["hydra/launcher=joblib"]}}})
    OmegaConf.set_readonly(config, True)  # as Hydra hands it to the callback
    joblib_workers.set_job_env(config, name, value)
    assert os.environ[name] == value
    # Hydra's ConfigLoaderImpl.load_sweep_config: these, then the job's own, composed anew.
    overrides = OmegaConf.to_container(config.hydra.overrides.hydra)
    assert overrides[0] == "hydra/launcher=joblib"
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        job = compose("config", overrides=overrides[1:], return_hydra_config=True)
    assert job.hydra.job.env_set[name] == value


def test_the_launcher_reuses_the_pool_started_early(monkeypatch):
    """The jobs' Parallel (hydra_joblib_launcher/_core.py) runs on the workers started early."""
    monkeypatch.setattr(joblib_workers, "_JOB_MODULE", "json")  # cheap for a test; src.job in use
    launcher = _launcher(n_jobs=2)
    try:
        joblib_workers.wait_started(joblib_workers.start_workers(launcher))
        early = reusable_executor._executor
        early_pids = set(early._processes)
        assert len(early_pids) == 2
        kwargs = {k: v for k, v in OmegaConf.to_container(launcher).items() if k != "_target_"}
        kwargs["backend"] = "loky"  # what the launcher itself does
        from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg

        process_joblib_cfg(kwargs)
        job_pids = set(Parallel(**kwargs)(delayed(os.getpid)() for _ in range(8)))
        assert reusable_executor._executor is early
        assert job_pids <= early_pids
    finally:
        joblib_workers.stop_workers()
    assert not any(p.is_alive() for p in early._processes.values())
