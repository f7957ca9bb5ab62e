"""Writing runs to MLflow: a sweep's parent, one child per job, the report's files.

Everything is logged through ``MlflowClient`` with explicit run ids, so no
process-global "active run" leaks between Hydra jobs, and each child is
logged in a few batched calls: it is FINISHED only once every value is in.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from src.errors import ScaleprobeError
from src.tracking.store import (
    PARENT_TAG,
    TrackingTarget,
    _client,
    _sqlite_path,
    check_reachable,
)

__all__ = [
    "check_store_present",
    "create_parent_run",
    "end_run",
    "fail_parent",
    "get_experiment_id",
    "log_child_run",
    "log_report",
    "metric_history",
]

logger = logging.getLogger(__name__)

# MLflow's log_batch takes at most 100 params a call (params come from the config now).
_MAX_PARAMS_PER_BATCH = 100
# Names of the children this process logged, per parent: what a lost store held.
_LOGGED: dict[str, list[str]] = {}


def get_experiment_id(target: TrackingTarget) -> str:
    """Return the experiment's id, creating it (with its artifact root) if needed.

    Two members starting at once against one server may both find no
    experiment; the one whose create loses the race reads the winner's.
    """
    from mlflow.exceptions import MlflowException

    check_reachable(target)
    client = _client(target)
    experiment = client.get_experiment_by_name(target.experiment)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if target.artifact_location and "://" not in target.artifact_location:
        location = Path(target.artifact_location).resolve().as_uri()
    elif target.artifact_location:
        location = target.artifact_location
    try:
        return client.create_experiment(target.experiment, artifact_location=location)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        experiment = client.get_experiment_by_name(target.experiment)
        if experiment is None:
            raise
        return experiment.experiment_id


def check_store_present(target: TrackingTarget, parent_run_id: str) -> None:
    """Stop a sweep's job when its local store vanished (or was replaced) since the sweep began.

    An MLflow client on a missing sqlite file silently creates an empty store,
    so every later call fails with its own traceback and the runs logged so
    far are lost unnoticed; this says so in one line instead, naming the jobs
    this process logged there.
    """
    db = _sqlite_path(target)
    if db is None:
        return
    done = _LOGGED.get(parent_run_id, [])
    finished = (
        f"{len(done)} job(s) had finished and were logged there: {done}"
        if done
        else "no job of it had finished in this process"
    )
    if not db.is_file():
        raise ScaleprobeError(
            f"MLflow store {db} was deleted during the sweep; stopping it: its parent run "
            f"{parent_run_id} went with it, {finished}; rerun the sweep"
        )
    from mlflow.exceptions import MlflowException

    try:
        _client(target).get_run(parent_run_id)
    except MlflowException:
        raise ScaleprobeError(
            f"MLflow store {db} no longer holds the sweep's parent run {parent_run_id} (was it "
            f"replaced during the sweep?); stopping it: {finished}; rerun the sweep"
        ) from None


def fail_parent(target: TrackingTarget, run_id: str, error: str) -> None:
    """Mark a sweep's parent FAILED after a job's error, unless its store is gone.

    A store lost mid-sweep holds nothing to mark (and must not be recreated
    by trying); the job's error already says so.
    """
    db = _sqlite_path(target)
    if db is not None and not db.is_file():
        return
    from mlflow.exceptions import MlflowException

    try:
        end_run(target, run_id, "FAILED", error=error)
    except MlflowException as lost:
        logger.warning("could not mark the sweep's parent run %s FAILED: %s", run_id, lost)


# A sweep job's number (Hydra's hydra.job.num) on its child run: the launcher that
# accounts for failed jobs (src/cluster.py) finds the child a job left, if any.
JOB_NUM_TAG = "scaleprobe.job_num"


def create_parent_run(target: TrackingTarget, run_name: str, tags: Mapping[str, str]) -> str:
    """Create the sweep's parent run (RUNNING) and return its id."""
    client = _client(target)
    run = client.create_run(
        get_experiment_id(target), run_name=run_name, tags={**tags, "scaleprobe.role": "sweep"}
    )
    return run.info.run_id


def end_run(target: TrackingTarget, run_id: str, status: str = "FINISHED", **tags: str) -> None:
    """Close a run with ``status`` (FINISHED, FAILED or KILLED), tagging why."""
    client = _client(target)
    for key, value in tags.items():
        client.set_tag(run_id, f"scaleprobe.{key}", value)
    client.set_terminated(run_id, status=status)


def metric_history(name: str, values: np.ndarray, timestamp: int) -> list[Any]:
    """Per-split values at steps 0..n-1, then their mean at step n (what tables show)."""
    from mlflow.entities import Metric

    points = [Metric(name, float(v), timestamp, step) for step, v in enumerate(values)]
    points.append(Metric(name, float(np.mean(values)), timestamp, len(values)))
    return points


def log_child_run(
    target: TrackingTarget,
    parent_run_id: str,
    run_name: str,
    *,
    params: Mapping[str, Any],
    per_split: Mapping[str, np.ndarray],
    scalars: Mapping[str, float],
    arrays: Mapping[str, np.ndarray],
    tags: Mapping[str, str],
    texts: Mapping[str, str] | None = None,
    files: Mapping[str, str | Path] | None = None,
) -> str:
    """Log one job as a child of ``parent_run_id`` and return the child's id.

    ``per_split`` become metric histories (mean last), ``scalars`` single
    metrics, ``arrays`` ``.npy`` artifacts, ``texts`` text artifacts, ``files``
    ``{artifact name: file}`` copied as they are (binary: a PNG). The run
    is marked FAILED if any call fails, so no child looks finished while
    missing values.
    """
    import time

    from mlflow.entities import Metric, Param, RunTag

    check_store_present(target, parent_run_id)
    client = _client(target)
    run = client.create_run(
        get_experiment_id(target),
        run_name=run_name,
        tags={**tags, PARENT_TAG: parent_run_id, "scaleprobe.role": "job"},
    )
    run_id = run.info.run_id
    try:
        now = int(time.time() * 1000)
        metrics = [p for name, v in per_split.items() for p in metric_history(name, v, now)]
        metrics += [Metric(name, float(v), now, 0) for name, v in scalars.items()]
        client.log_batch(
            run_id, metrics=metrics, tags=[RunTag("scaleprobe.n_metrics", str(len(metrics)))]
        )
        logged = [Param(k, str(v)) for k, v in params.items()]
        for start in range(0, len(logged), _MAX_PARAMS_PER_BATCH):
            client.log_batch(run_id, params=logged[start : start + _MAX_PARAMS_PER_BATCH])
        with tempfile.TemporaryDirectory() as tmp:
            for name, array in arrays.items():
                np.save(Path(tmp) / f"{name}.npy", np.asarray(array), allow_pickle=False)
            for name, text in (texts or {}).items():
                (Path(tmp) / name).write_text(text)
            for name, file in (files or {}).items():
                shutil.copyfile(file, Path(tmp) / name)
            client.log_artifacts(run_id, tmp)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    _LOGGED.setdefault(parent_run_id, []).append(run_name)
    return run_id


def log_report(target: TrackingTarget, run_id: str, files: Sequence[str | Path]) -> None:
    """Log the report's files as artifacts of ``run_id`` under ``report/``.

    Only the given files are logged, not their whole directory, which may
    hold anything (``report.output_dir=.`` is allowed).
    """
    client = _client(target)
    for path in files:
        client.log_artifact(run_id, str(path), artifact_path="report")
