"""`python -m src.report` on a tiny three-pair sweep, as a user runs it, and its bad inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import open_dict
from PIL import Image
from tiny_run import TINY as BASE_TINY

from src.errors import ScaleprobeError
from src.report.__main__ import report
from src.report.build import FIGURES

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TINY = [*BASE_TINY, "n_permutations=5"]
PAIRS = "pair=albatross_albatross,albatross_kite,albatross_racing_car"


def run_module(cwd: Path, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, shared_dirs):
    """One tiny sweep (3 pairs x 2 alphas) and its report, shared by this module's tests."""
    root = tmp_path_factory.mktemp("report")
    paths = [f"paths.data_dir={shared_dirs['data']}", f"paths.cache_dir={shared_dirs['cache']}"]
    result = run_module(root, "src.run", "-m", PAIRS, "alpha=0,0.001", *TINY, *paths)
    assert result.returncode == 0, result.stderr[-3000:]
    report_run = run_module(root, "src.report", "report.output_dir=reports")
    assert report_run.returncode == 0, report_run.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{root}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {r.info.run_id: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    return {
        "root": root,
        "client": client,
        "parent": parent,
        "children": children,
        "log": report_run.stdout + report_run.stderr,
    }


def test_report_tables_equal_the_logged_metrics(sweep):
    out = sweep["root"] / "reports"
    assert "Traceback" not in sweep["log"]
    report_json = json.loads((out / "report.json").read_text())
    assert report_json["source"]["parent run"] == sweep["parent"].info.run_id
    runs = report_json["runs"]
    assert len(runs) == 6
    table1, table2 = (
        next(t for t in report_json["tables"] if t["title"].startswith(prefix))
        for prefix in ("Table 1", "Table 2")
    )
    md = (out / "report.md").read_text()
    tests = ["albatross", "kite", "racing car"]
    wnids = ["n02058221", "n01608432", "n04037443"]
    for row1, row2, test, wnid in zip(table1["rows"], table2["rows"], tests, wnids, strict=False):
        assert (row1["test"], row2["test"]) == (test, test)
        ols = sweep["children"][runs[f"n02058221|{wnid}|0"]].data.metrics
        las = sweep["children"][runs[f"n02058221|{wnid}|0.001"]].data.metrics
        assert row1["R² non-reg (alpha=0)"] == [ols["r2_test"], ols["r2_test_std"]]
        assert row1["R² Lasso (alpha=0.001)"] == [las["r2_test"], las["r2_test_std"]]
        assert row1["p Lasso"] == las["r2_test_pvalue"]
        assert row2["angle Lasso (alpha=0.001)"] == las["angle_deg"]
        assert row2["cos non-reg"] == ols["cos"]
        assert row2["p angle Lasso"] == las["angle_deg_pvalue"]
        # the Markdown shows the same numbers, rounded
        assert f"{las['r2_test']:.3f} ± {las['r2_test_std']:.3f}" in md
        assert f"| {las['angle_deg']:.1f} |" in md
    # the p-values come from 5 permutations: in [1/6, 1]
    assert all(1 / 6 - 1e-12 <= r["p Lasso"] <= 1 for r in table1["rows"])


def test_report_figures_are_pngs_and_logged_on_the_parent(sweep):
    out = sweep["root"] / "reports"
    for name in FIGURES.values():
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 1000
        with Image.open(out / name) as image:
            image.verify()
    logged = {a.path for a in sweep["client"].list_artifacts(sweep["parent"].info.run_id, "report")}
    expected = {f"report/{n}" for n in ["report.md", "report.json", *FIGURES.values()]}
    assert logged == expected


def test_jobs_log_path_null_and_pvalues(sweep):
    client = sweep["client"]
    for run_id, child in sweep["children"].items():
        assert {"r2_test_pvalue", "angle_deg_pvalue"} <= set(child.data.metrics)
        assert child.data.params["n_permutations"] == "5"
        artifacts = {a.path for a in client.list_artifacts(run_id)}
        assert {"coef.npy", "coef_test.npy", "path.json", "null.json"} <= artifacts
        history = client.get_metric_history(run_id, "r2_test")
        assert [m.step for m in history] == [0, 1, 2, 3]


@pytest.fixture
def report_cfg(compose_config, sweep, tmp_path):
    """A composed config pointing at the sweep's store, writing into tmp_path."""
    cfg = compose_config([])
    with open_dict(cfg):
        cfg.paths.mlruns_dir = str(sweep["root"] / "mlruns")
        cfg.report.output_dir = str(tmp_path / "out")
    return cfg


def test_report_by_parent_id_and_experiment_name(report_cfg, sweep):
    expected = json.loads((sweep["root"] / "reports" / "report.json").read_text())["tables"]
    report_cfg.report.parent_run_id = sweep["parent"].info.run_id
    files = report(report_cfg)
    assert json.loads(files[1].read_text())["tables"] == expected
    report_cfg.report.parent_run_id = None
    report_cfg.report.experiment = "scaleprobe"
    files = report(report_cfg)
    assert json.loads(files[1].read_text())["tables"] == expected


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "parent_run_id",
            "0123456789abcdef",
            "report.parent_run_id='0123456789abcdef' is not a run",
        ),
        ("experiment", "nope", "report.experiment='nope' is not an experiment"),
        ("select", {"layer": "mixed7"}, "matches none of the sweep's 6 runs"),
    ],
)
def test_bad_report_input_is_one_line(report_cfg, key, value, message):
    with open_dict(report_cfg):
        report_cfg.report[key] = value
    with pytest.raises(ScaleprobeError, match=message) as info:
        report(report_cfg)
    assert "\n" not in str(info.value)


def test_a_job_id_or_a_sweep_without_finished_jobs_is_refused(report_cfg, sweep):
    child = next(iter(sweep["children"]))
    report_cfg.report.parent_run_id = child
    with pytest.raises(ScaleprobeError, match="is a job, not a sweep; its sweep's parent run is"):
        report(report_cfg)
    client = sweep["client"]
    empty = client.create_experiment("empty")
    client.create_run(empty, run_name="sweep", tags={"scaleprobe.role": "sweep"})
    report_cfg.report.parent_run_id = None
    report_cfg.report.experiment = "empty"
    with pytest.raises(ScaleprobeError, match="has no finished job"):
        report(report_cfg)


def test_missing_store_is_refused_without_creating_it(report_cfg, tmp_path):
    report_cfg.paths.mlruns_dir = str(tmp_path / "none")
    with pytest.raises(ScaleprobeError, match="no MLflow store at"):
        report(report_cfg)
    assert not (tmp_path / "none" / "mlflow.db").exists()


def test_cli_bad_parent_id_prints_one_line_and_exits_1(sweep):
    result = run_module(sweep["root"], "src.report", "report.parent_run_id=nope")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: report.parent_run_id='nope' is not a run in sqlite:///mlruns/mlflow.db; use "
        "the id of a sweep's parent run (see `mlflow ui`) or leave it unset for the latest"
    ]
