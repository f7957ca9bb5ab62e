"""MLflow runs of a sweep: one parent per invocation, one child per job.

Everything is logged through ``MlflowClient`` with explicit run ids, so no
process-global "active run" leaks between Hydra jobs, and each child is
logged in a few batched calls: it is FINISHED only once every value is in.
"""

from __future__ import annotations

import logging
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.errors import ScaleprobeError

__all__ = [
    "TrackingTarget",
    "check_reachable",
    "check_store_present",
    "check_writable",
    "child_statuses",
    "create_parent_run",
    "end_run",
    "fail_parent",
    "get_experiment_id",
    "list_child_runs",
    "log_child_run",
    "metric_history",
    "sweep_summary",
    "tracking_target",
]

logger = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
N_JOBS_TAG = "scaleprobe.n_jobs"  # on a sweep's parent: how many jobs the sweep launches

# MLflow's log_batch takes at most 100 params a call (params come from the config now).
_MAX_PARAMS_PER_BATCH = 100
# Names of the children this process logged, per parent: what a lost store held.
_LOGGED: dict[str, list[str]] = {}


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go: a tracking URI, an experiment name and (local stores) an artifact root."""

    uri: str
    experiment: str = "scaleprobe"
    artifact_location: str | None = None

    @property
    def is_remote(self) -> bool:
        """True for an ``http(s)://`` tracking server."""
        return self.uri.startswith(("http://", "https://"))


def _client(target: TrackingTarget) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=target.uri)


def check_reachable(target: TrackingTarget, timeout: float = 10.0) -> None:
    """Fail fast, before any extraction, when a tracking server does not answer."""
    if target.is_remote:
        url = target.uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only)
                response.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ScaleprobeError(
                f"MLflow tracking server {target.uri} does not answer ({reason}); start it "
                "(README, 'Team tracking') or use tracking=local"
            ) from None
    elif target.uri.startswith("sqlite:///"):
        db = Path(target.uri.removeprefix("sqlite:///"))
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ScaleprobeError(
                f"tracking.uri={target.uri!r}: cannot create {db.parent}: {error.strerror}"
            ) from None
        check_writable(target)


def _writable_error(what: str, path: Path, error: OSError) -> ScaleprobeError:
    return ScaleprobeError(
        f"MLflow store {what} {path} cannot be written ({error.strerror}); make it writable "
        "or set paths.mlruns_dir to a writable directory"
    )


def _probe_dir(path: Path) -> None:
    """Create and remove a file in ``path``: what sqlite's journal and MLflow's artifacts need."""
    probe = path / f".scaleprobe-write-test-{os.getpid()}"
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    probe.unlink()


def check_writable(target: TrackingTarget) -> None:
    """Fail before any extraction when a local store cannot take a run.

    sqlite opens a read-only database without complaint and fails only at
    the first write, i.e. after all the compute; so this opens the database
    file for writing, creates a file beside it (sqlite writes its journal
    there) and one in the local artifact root.
    """
    if not target.uri.startswith("sqlite:///"):
        return
    db = Path(target.uri.removeprefix("sqlite:///"))
    try:
        _probe_dir(db.parent)
    except OSError as error:
        raise _writable_error("directory", db.parent, error) from None
    if db.exists():
        try:
            os.close(os.open(db, os.O_RDWR))
        except OSError as error:
            raise _writable_error("database", db, error) from None
    location = target.artifact_location
    if location and "://" not in location:
        root = Path(location)
        try:
            root.mkdir(parents=True, exist_ok=True)
            _probe_dir(root)
        except OSError as error:
            raise _writable_error("artifact directory", root, error) from None


def get_experiment_id(target: TrackingTarget) -> str:
    """Return the experiment's id, creating it (with its artifact root) if needed."""
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
    return client.create_experiment(target.experiment, artifact_location=location)


def _sqlite_path(target: TrackingTarget) -> Path | None:
    return (
        Path(target.uri.removeprefix("sqlite:///")) if target.uri.startswith("sqlite:///") else None
    )


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
) -> str:
    """Log one job as a child of ``parent_run_id`` and return the child's id.

    ``per_split`` become metric histories (mean last), ``scalars`` single
    metrics, ``arrays`` ``.npy`` artifacts, ``texts`` text artifacts. The run
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
            client.log_artifacts(run_id, tmp)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    _LOGGED.setdefault(parent_run_id, []).append(run_name)
    return run_id


def tracking_target(tracking: Any) -> TrackingTarget:
    """Build a :class:`TrackingTarget` from the ``tracking`` config node (or a mapping)."""
    return TrackingTarget(
        uri=str(tracking["uri"]),
        experiment=str(tracking["experiment"]),
        artifact_location=tracking.get("artifact_location"),
    )


def list_child_runs(
    target: TrackingTarget,
    parent_run_id: str,
    *,
    experiment_id: str | None = None,
    status: str | None = None,
) -> list[Any]:
    """Return the MLflow runs whose parent is ``parent_run_id``, oldest first.

    The one query for a sweep's jobs (the callback, the summary, the report and
    the stale-parent cleanup all use it). ``status`` keeps only runs in that
    state; ``experiment_id`` saves looking the parent up.
    """
    client = _client(target)
    if experiment_id is None:
        experiment_id = client.get_run(parent_run_id).info.experiment_id
    where = f"tags.`{PARENT_TAG}` = '{parent_run_id}'"
    if status is not None:
        where += f" and attributes.status = '{status}'"
    return client.search_runs(
        [experiment_id],
        filter_string=where,
        order_by=["attributes.start_time ASC"],
        max_results=50_000,
    )


def child_statuses(target: TrackingTarget, parent_run_id: str) -> list[str]:
    """Statuses of the children of ``parent_run_id``."""
    return [run.info.status for run in list_child_runs(target, parent_run_id)]


def sweep_summary(
    target: TrackingTarget,
    parent_run_id: str,
    metrics: tuple[str, ...] = ("r2_test", "nnz", "angle_deg", "r2_test_shuffled"),
) -> dict[str, Any]:
    """Read the sweep back from MLflow: parent id, child counts, each child's mean metrics.

    Children are keyed ``{pair: {"alpha=<alpha>": {metric: mean}}}`` so that
    ``dvc metrics show`` and ``dvc exp show`` get one column per pair, alpha and
    metric; read back from the store, the file says what the runs really logged.
    """
    parent = _client(target).get_run(parent_run_id)
    runs = list_child_runs(target, parent_run_id, experiment_id=parent.info.experiment_id)
    children: dict[str, dict[str, dict[str, float]]] = {}
    for run in runs:
        params = run.data.params
        by_alpha = children.setdefault(params.get("pair", run.info.run_name), {})
        by_alpha[f"alpha={params.get('alpha')}"] = {
            name: run.data.metrics[name] for name in metrics if name in run.data.metrics
        }
    return {
        "parent_run_id": parent_run_id,
        "experiment_id": parent.info.experiment_id,
        "tracking_uri": target.uri,
        "n_runs": len(runs),
        "n_finished": sum(run.info.status == "FINISHED" for run in runs),
        "runs": {pair: dict(sorted(v.items())) for pair, v in sorted(children.items())},
    }
