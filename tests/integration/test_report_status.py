"""Which sweep `python -m src.report` shows, and what it says of one that did not finish (#19.9).

One real two-job sweep (FINISHED); a later FAILED sweep must not become "latest";
a RUNNING sweep holding one of its two jobs (as a killed sweep leaves it) is
reported only when named, and says so in report.md and in a warning line.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import open_dict
from tiny_run import TINY

from src.errors import ScaleprobeError
from src.report.__main__ import report

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory, shared_dirs):
    root = tmp_path_factory.mktemp("status")
    paths = [f"paths.data_dir={shared_dirs['data']}", f"paths.cache_dir={shared_dirs['cache']}"]
    result = subprocess.run(
        [sys.executable, "-m", "src.run", "-m", "alpha=0,0.001", "n_permutations=2", *TINY, *paths],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{root}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return {
        "root": root,
        "client": client,
        "experiment": experiment,
        "parent": parent,
        "children": children,
    }


@pytest.fixture
def report_cfg(compose_config, finished_sweep, tmp_path):
    cfg = compose_config([])
    with open_dict(cfg):
        cfg.paths.mlruns_dir = str(finished_sweep["root"] / "mlruns")
        cfg.report.output_dir = str(tmp_path / "out")
    return cfg


def test_the_parent_records_how_many_jobs_the_sweep_has(finished_sweep):
    assert finished_sweep["parent"].data.tags["scaleprobe.n_jobs"] == "2"


def test_partial_sweeps_are_not_latest_and_say_what_they_lack(report_cfg, finished_sweep, caplog):
    client, experiment = finished_sweep["client"], finished_sweep["experiment"]
    failed = client.create_run(
        experiment.experiment_id, run_name="sweep later", tags={"scaleprobe.role": "sweep"}
    )
    client.set_terminated(failed.info.run_id, status="FAILED")
    files = report(report_cfg)
    source = json.loads(files[1].read_text())["source"]
    assert source["parent run"] == finished_sweep["parent"].info.run_id
    assert "status" not in source

    # A killed sweep: RUNNING, two jobs launched, one finished (moved here from the real sweep).
    running = client.create_run(
        experiment.experiment_id,
        run_name="sweep killed",
        tags={"scaleprobe.role": "sweep", "scaleprobe.n_jobs": "2"},
    )
    child = next(c for c in finished_sweep["children"] if c.data.params["alpha"] == "0.001")
    client.set_tag(child.info.run_id, "mlflow.parentRunId", running.info.run_id)
    report_cfg.report.parent_run_id = running.info.run_id
    with caplog.at_level(logging.WARNING):
        files = report(report_cfg)
    line = (
        f"sweep {running.info.run_id} is RUNNING, not FINISHED: this report shows 1 finished "
        "job(s), 1 of its 2 jobs missing"
    )
    assert f"- status: `{line}`" in files[0].read_text()
    assert line in caplog.text


def test_no_finished_sweep_names_the_latest_and_how_to_report_it(report_cfg, finished_sweep):
    client = finished_sweep["client"]
    other = client.create_experiment("unfinished")
    run = client.create_run(other, run_name="sweep", tags={"scaleprobe.role": "sweep"})
    client.set_terminated(run.info.run_id, status="KILLED")
    report_cfg.report.experiment = "unfinished"
    with pytest.raises(ScaleprobeError) as info:
        report(report_cfg)
    assert str(info.value) == (
        f"experiment 'unfinished' in {client.tracking_uri} has no FINISHED sweep; the latest, "
        f"{run.info.run_id!r}, is KILLED and has no finished job; rerun the sweep, or pass "
        f"report.parent_run_id={run.info.run_id} to report it as it is"
    )
