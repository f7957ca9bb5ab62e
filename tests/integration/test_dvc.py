"""`dvc repro` in fresh clones: end to end, a no-op the second time, what reruns, sharing.

One clone runs the pipeline once (module fixture); the tests then read its logs,
ask `dvc status` what a parameter change would rerun, push its caches to a
local-directory remote that a second clone pulls, and feed it bad input.
"""

from __future__ import annotations

import json
import re

import pytest
from pipeline_repo import (
    HAS_REPORT,
    TARGETS,
    clone,
    dvc,
    entries,
    free_port,
    git,
    make_origin,
    ok,
    write_params,
)

pytestmark = pytest.mark.slow

STAGES_BEFORE_REPORT = ["params", "data", "features", "probes"]


def stages_run(log: str) -> list[str]:
    """Stages DVC ran (not skipped), in order."""
    return re.findall(r"Running stage '([^']+)'", log)


def changed_stages(repo) -> set[str]:
    """Stages `dvc status` reports as changed (what `dvc repro` would run)."""
    result = dvc(repo, "status", "--json", *(["--with-deps", *TARGETS] if TARGETS else []))
    ok(result)
    return set(json.loads(result.stdout))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Clone A of a fresh origin after `dvc repro`, lock committed; plus both repro logs."""
    root = tmp_path_factory.mktemp("dvc")
    origin = make_origin(root / "origin")
    repo = clone(origin, root / "a")
    first = ok(dvc(repo, "repro", *TARGETS))
    second = ok(dvc(repo, "repro", *TARGETS))
    status = ok(dvc(repo, "status", *(["--with-deps", *TARGETS] if TARGETS else [])))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pipeline outputs")
    return {"root": root, "repo": repo, "first": first, "second": second, "status": status}


def test_fresh_clone_repro_runs_end_to_end_then_is_a_no_op(pipeline):
    repo, first = pipeline["repo"], pipeline["first"]
    expected = [*STAGES_BEFORE_REPORT, *(["report"] if HAS_REPORT else [])]
    assert stages_run(first) == expected, first[-4000:]
    assert first.count("extracting Mixed_7a") == 2, first[-4000:]  # albatross and kite, once

    manifest = (repo / "data" / "manifest.csv").read_text().splitlines()
    assert manifest[0].startswith("class_id,image_id,file,")
    assert len(manifest) == 1 + 2 * 16
    assert str(repo) not in "\n".join(manifest)  # paths relative to the data root
    # the backbone's two classes and their pixel controls (histogram, thumbnail); the
    # random-weights control of a random backbone is the backbone's own entry
    assert len(entries(repo)) == 2 + 2 * 2
    assert "extracting" not in first.split("Running stage 'probes'")[1], first[-4000:]
    summary = json.loads((repo / "results" / "probes.json").read_text())
    assert summary["n_runs"] == summary["n_finished"] == 2
    assert set(summary["runs"]["albatross_kite"]) == {"alpha=0.0", "alpha=0.01"}
    assert (repo / "mlruns" / "mlflow.db").is_file()
    if HAS_REPORT:
        assert any((repo / "reports").iterdir())
    # mlruns/ is MLflow's: git-ignored and no DVC output.
    assert "mlruns" not in (repo / "dvc.lock").read_text()
    assert git(repo, "check-ignore", "mlruns/mlflow.db").strip() == "mlruns/mlflow.db"

    second = pipeline["second"]
    assert stages_run(second) == [], second
    assert "extracting" not in second
    assert "up to date" in pipeline["status"], pipeline["status"]


@pytest.mark.parametrize(
    ("change", "reruns"),
    [
        ({"alpha": "0.001"}, {"params", "probes"}),
        ({"n_splits": 4}, {"params", "probes"}),
        ({"layer": "mixed7"}, {"params", "features", "probes"}),
        ({"backbone": "resnet50", "layer": "layer3"}, {"params", "features", "probes"}),
        ({"pair": "albatross_albatross"}, {"params", "data", "features", "probes"}),
        # #14.6: features are target-free; report follows probes (results/probes.json)
        ({"target": "position", "target_args": "target.axis=y"}, {"params", "probes"}),
    ],
)
def test_a_parameter_change_reruns_its_stage_onward(pipeline, change, reruns):
    repo = pipeline["repo"]
    write_params(repo, **change)
    try:
        # Stages whose own params or deps changed; `report` follows once probes rewrote
        # results/probes.json (test_pushed_cache_... runs it).
        assert changed_stages(repo) == reruns
    finally:
        git(repo, "checkout", "--", "params.yaml")
    assert changed_stages(repo) == set()


def test_pushed_cache_is_pulled_by_a_second_clone_that_extracts_nothing(pipeline):
    repo, root = pipeline["repo"], pipeline["root"]
    remote = root / "remote"
    ok(dvc(repo, "remote", "add", "-d", "shared", str(remote)))
    git(repo, "add", ".dvc/config")
    git(repo, "commit", "-q", "-m", "DVC remote")
    pushed = ok(dvc(repo, "push", *TARGETS, *(["--with-deps"] if TARGETS else [])))
    assert "pushed" in pushed

    other = clone(repo, root / "b")
    # B's machine-local settings differ (not in the cache key, not a pipeline input).
    local = other / "conf" / "local" / "default.yaml"
    local.write_text(local.read_text().replace("batch_size: 8", "batch_size: 4"))
    ok(dvc(other, "pull", *TARGETS, *(["--with-deps"] if TARGETS else [])))
    assert entries(other) == entries(repo)
    assert changed_stages(other) == set()
    assert not (other / "data" / "synthetic").exists()  # images are not shared, only features

    # An experiment in the second clone: new alphas, the pulled features, no extraction.
    result = dvc(other, "exp", "run", "-S", "alpha=0.001", *TARGETS)
    log = ok(result)
    assert stages_run(log) == ["params", "probes", *(["report"] if HAS_REPORT else [])], log
    assert "extracting" not in log
    assert entries(other) == entries(repo)
    name = re.search(r"Ran experiment\(s\): (\S+)", log)
    assert name is not None, log
    shown = ok(dvc(other, "exp", "show", "--no-pager", "--md"))
    assert name.group(1) in shown
    summary = json.loads((other / "results" / "probes.json").read_text())
    assert list(summary["runs"]["albatross_kite"]) == ["alpha=0.001"]


def test_a_remote_that_does_not_exist_gives_one_line_and_changes_nothing(pipeline):
    repo = pipeline["repo"]
    before = entries(repo)
    result = dvc(repo, "push", "-r", "nowhere")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
    assert len(errors) == 1
    assert "remote 'nowhere' doesn't exist" in errors[0]
    assert entries(repo) == before
    assert git(repo, "status", "--porcelain", "--untracked-files=no").strip() == ""


def test_pull_from_an_empty_remote_fails_and_leaves_the_clone_as_it_was(pipeline, tmp_path):
    other = clone(pipeline["repo"], tmp_path / "c")
    empty = tmp_path / "empty-remote"
    ok(dvc(other, "remote", "add", "-f", "-d", "shared", str(empty)))
    result = dvc(other, "pull", *TARGETS, *(["--with-deps"] if TARGETS else []))
    assert result.returncode == 1
    assert "ERROR: failed to pull data from the cloud" in result.stderr
    assert entries(other) == []
    assert not (other / "data" / "manifest.csv").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alpah": 0.1}, "error: params.yaml: unknown key 'alpah'; allowed keys: ["),
        ({"alpha": "0,-1"}, "error: params.yaml: alpha='0,-1': '-1' is not allowed"),
        ({"layer": "mixed99"}, "error: params.yaml: layer='mixed99' is not an option"),
        ({"n_train": 1.5}, "error: params.yaml: n_train=1.5 is not allowed; expected an integer"),
        ({"pair": "albatross_kite,custom"}, "'custom' is not an option of conf/pair"),
    ],
)
def test_bad_params_stop_repro_with_one_line_before_any_stage(pipeline, change, message):
    repo = pipeline["repo"]
    before = entries(repo)
    summary = (repo / "results" / "probes.json").read_text()
    write_params(repo, **change)
    try:
        result = dvc(repo, "repro", *TARGETS)
    finally:
        git(repo, "checkout", "--", "params.yaml")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert "Traceback" not in result.stderr
    assert stages_run(result.stdout) == ["params"]
    assert entries(repo) == before
    assert (repo / "results" / "probes.json").read_text() == summary
    assert (repo / "data" / "manifest.csv").is_file()


def test_tracking_server_that_does_not_answer_stops_repro_before_extraction(pipeline):
    repo = pipeline["repo"]
    before = entries(repo)
    write_params(repo, tracking="server", layer="mixed7")  # would extract new features
    url = f"http://127.0.0.1:{free_port()}"
    try:
        result = dvc(repo, "repro", *TARGETS, MLFLOW_TRACKING_URI=url)
    finally:
        git(repo, "checkout", "--", "params.yaml")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert f"MLflow tracking server {url} does not answer" in errors[0]
    assert "extracting" not in result.stdout + result.stderr
    assert entries(repo) == before
