"""Team tracking: two clones log to one `mlflow server` at once; one reads the other's runs.

And a server that does not answer stops a run, single or sweep, with one line
before any data is generated or feature extracted.
"""

from __future__ import annotations

import json
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from pipeline_repo import REPO, TINY, clone, free_port, make_origin, ok, python, sh

pytestmark = pytest.mark.slow

# Run in clone B: everything the server holds for one experiment, and clone A's
# coefficient artifact downloaded through the server (--serve-artifacts).
READ_RUNS = """
import json, sys, tempfile
import numpy as np
from mlflow.tracking import MlflowClient

client = MlflowClient(sys.argv[1])
experiment = client.get_experiment_by_name(sys.argv[2])
runs = []
for run in client.search_runs([experiment.experiment_id]):
    item = {
        "id": run.info.run_id,
        "name": run.info.run_name,
        "status": run.info.status,
        "parent": run.data.tags.get("mlflow.parentRunId"),
        "alpha": run.data.params.get("alpha"),
        "r2_test": run.data.metrics.get("r2_test"),
        "artifact_uri": run.info.artifact_uri,
    }
    if item["alpha"] == sys.argv[3]:
        path = client.download_artifacts(run.info.run_id, "coef.npy", tempfile.mkdtemp())
        item["coef_shape"] = list(np.load(path).shape)
    runs.append(item)
print(json.dumps(runs))
"""


def _runs_in_postgres(uri: str, experiment: str) -> int:
    """Count the experiment's runs in the server's PostgreSQL tables (MLflow's schema)."""
    import psycopg

    with psycopg.connect(uri) as db, db.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM runs JOIN experiments USING (experiment_id) "
            "WHERE experiments.name = %s",
            (experiment,),
        )
        return cursor.fetchone()[0]


def test_two_clones_share_runs_through_one_server(mlflow_server, postgres_uri, tmp_path):
    url = str(mlflow_server["url"])
    experiment = f"team-{uuid.uuid4().hex[:8]}"
    origin = make_origin(tmp_path / "origin")
    a = clone(origin, tmp_path / "a")
    b = clone(origin, tmp_path / "b")
    common = ["pair=albatross_kite", "tracking=server", f"tracking.experiment={experiment}", *TINY]

    # At the same time, A: a sweep, the server named by MLFLOW_TRACKING_URI; B: one run,
    # the URL as an override.
    with ThreadPoolExecutor(2) as pool:
        run_a = pool.submit(
            python, a, "-m", "src.run", "-m", "alpha=0,0.01", *common, MLFLOW_TRACKING_URI=url
        )
        run_b = pool.submit(
            python, b, "-m", "src.run", "alpha=0.001", *common, f"tracking.uri={url}"
        )
        log_a, log_b = ok(run_a.result()), ok(run_b.result())
    assert "extracting blocks.5" in log_a
    assert "extracting blocks.5" in log_b  # each machine has its own feature cache
    assert not (a / "mlruns").exists()
    assert not (b / "mlruns").exists()

    read = python(b, "-c", READ_RUNS, url, experiment, "0.01")
    ok(read)
    runs = json.loads(read.stdout.strip().splitlines()[-1])
    parents = {r["id"]: r for r in runs if r["parent"] is None}
    children = [r for r in runs if r["parent"] is not None]
    assert len(parents) == 2  # A's sweep and B's single run
    assert sorted(float(c["alpha"]) for c in children) == [0.0, 0.001, 0.01]
    assert all(r["status"] == "FINISHED" for r in runs)
    sweep = next(p for p in parents.values() if p["name"].startswith("sweep"))
    from_a = [c for c in children if c["parent"] == sweep["id"]]
    assert sorted(c["alpha"] for c in from_a) == ["0.0", "0.01"]
    # B read A's numbers and A's artifact, served by the server (no path on A's disk).
    lasso = next(c for c in from_a if c["alpha"] == "0.01")
    assert isinstance(lasso["r2_test"], float)
    assert lasso["coef_shape"] == [3, 192]  # Lite0 blocks.5, the default layer
    assert lasso["artifact_uri"].startswith("mlflow-artifacts:")
    experiment_dir = lasso["artifact_uri"].removeprefix("mlflow-artifacts:/").split("/")[0]
    stored = (mlflow_server["root"] / "artifacts" / experiment_dir).rglob("coef.npy")
    assert len(list(stored)) == 3  # on the server's disk, one per child
    assert (mlflow_server["root"] / "artifacts" / experiment_dir / lasso["id"]).is_dir()
    assert _runs_in_postgres(postgres_uri, experiment) == len(runs) == 5  # the backend store


def test_a_postgres_store_that_does_not_answer_stops_before_extraction(tmp_path):
    uri = f"postgresql://mlflow@127.0.0.1:{free_port()}/mlflow"
    result = sh(
        tmp_path,
        sys.executable,
        "-m",
        "src.run",
        f"tracking.uri={uri}",
        *TINY,
        PYTHONPATH=str(REPO),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: PostgreSQL tracking store {uri} does not answer (")
    assert "extracting" not in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("args", "use_env"),
    [
        (["tracking=server"], True),
        (["-m", "alpha=0,0.01", "tracking=server"], False),
    ],
    ids=["single-run-env-uri", "sweep-uri-override"],
)
def test_a_server_that_does_not_answer_stops_before_extraction(tmp_path, args, use_env):
    url = f"http://127.0.0.1:{free_port()}"
    env = {"MLFLOW_TRACKING_URI": url} if use_env else {}
    override = [] if use_env else [f"tracking.uri={url}"]
    result = sh(
        tmp_path,
        sys.executable,
        "-m",
        "src.run",
        *args,
        *override,
        *TINY,
        PYTHONPATH=str(REPO),
        **env,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"error: MLflow tracking server {url} does not answer")
    log = result.stdout + result.stderr
    assert "extracting" not in log
    assert "Launching" not in log  # a sweep starts no job
    assert not (tmp_path / "data").exists()  # not even the synthetic set
    assert not (tmp_path / "cache").exists()
