"""Reading sweeps back from MLflow: a parent's children, their statuses, summaries, artifacts.

The report never recomputes anything from features: it reads what the jobs
logged (params, mean metrics, ``.npy`` and ``.json`` artifacts) through these
functions. Every way of pointing at a sweep that does not exist ends in a
one-line :class:`~src.errors.ScaleprobeError`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from src.errors import ScaleprobeError
from src.tracking.store import (
    N_JOBS_TAG,
    PARENT_TAG,
    ROLE_TAG,
    TrackingTarget,
    _client,
    check_reachable,
)

__all__ = [
    "RunData",
    "child_statuses",
    "find_sweep",
    "list_child_runs",
    "list_children",
    "read_binary_artifact",
    "read_json_artifact",
    "read_npy_artifact",
    "sweep_status",
    "sweep_summary",
]

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class RunData:
    """What the report needs of one MLflow run.

    Attributes
    ----------
    run_id : str
        The run's id.
    run_name : str
        Its name (``"<pair> alpha=<alpha>"`` for a job).
    status : str
        ``FINISHED``, ``FAILED``, ``RUNNING`` or ``KILLED``.
    experiment_id : str
        The experiment holding it.
    params : dict of str to str
        Logged params.
    metrics : dict of str to float
        Last logged value of each metric (for per-split metrics: the mean,
        logged at step ``n_splits``).
    start_time : int
        Start time in ms since the epoch.
    tags : dict of str to str
        The run's tags (a sweep's parent: ``scaleprobe.n_jobs``, ...).
    """

    run_id: str
    run_name: str
    status: str
    experiment_id: str
    params: dict[str, str]
    metrics: dict[str, float]
    start_time: int
    tags: dict[str, str] = field(default_factory=dict)


def _run_data(run: Any) -> RunData:
    return RunData(
        run_id=run.info.run_id,
        run_name=run.info.run_name or "",
        status=run.info.status,
        experiment_id=run.info.experiment_id,
        params=dict(run.data.params),
        metrics={k: float(v) for k, v in run.data.metrics.items()},
        start_time=int(run.info.start_time or 0),
        tags=dict(run.data.tags),
    )


def _check_store(target: TrackingTarget) -> None:
    """Refuse a local sqlite store that does not exist: it has no sweep (and must not be made)."""
    check_reachable(target)
    if target.uri.startswith("sqlite:///"):
        db = Path(target.uri.removeprefix("sqlite:///"))
        if not db.is_file():
            raise ScaleprobeError(
                f"tracking.uri={target.uri!r}: no MLflow store at {db}; run a sweep first "
                "(python -m src.run -m alpha=0,0.001,0.01) or point tracking.uri at one"
            )


def find_sweep(
    target: TrackingTarget, parent_run_id: str | None = None, experiment: str | None = None
) -> RunData:
    """Return a sweep's parent run: the given one, or the latest in an experiment.

    Parameters
    ----------
    target : TrackingTarget
        The tracking store.
    parent_run_id : str or None, default=None
        A parent run id (of any status); ``None`` picks the most recently
        started FINISHED sweep.
    experiment : str or None, default=None
        Experiment to search for the latest sweep; ``None`` uses
        ``target.experiment``. Ignored when ``parent_run_id`` is given.

    Returns
    -------
    RunData
        The parent run.

    Raises
    ------
    ScaleprobeError
        If the store, the run or the experiment does not exist, the run is a
        job rather than a sweep, or the experiment holds no (FINISHED) sweep.
    """
    _check_store(target)
    client = _client(target)
    if parent_run_id is not None:
        from mlflow.exceptions import MlflowException

        try:
            run = client.get_run(str(parent_run_id))
        except MlflowException:
            raise ScaleprobeError(
                f"report.parent_run_id={parent_run_id!r} is not a run in {target.uri}; use the "
                "id of a sweep's parent run (see `mlflow ui`) or leave it unset for the latest"
            ) from None
        parent_of = run.data.tags.get(PARENT_TAG)
        if parent_of is not None:
            raise ScaleprobeError(
                f"report.parent_run_id={parent_run_id!r} is a job, not a sweep; its sweep's "
                f"parent run is {parent_of!r}"
            )
        return _run_data(run)
    name = experiment or target.experiment
    found = client.get_experiment_by_name(name)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ScaleprobeError(
            f"report.experiment={name!r} is not an experiment in {target.uri}; choose from {names}"
        )

    def latest(status: str | None) -> Any:
        where = f"tags.`{ROLE_TAG}` = 'sweep'"
        if status is not None:
            where += f" and attributes.status = '{status}'"
        runs = client.search_runs(
            [found.experiment_id],
            filter_string=where,
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return runs[0] if runs else None

    run = latest("FINISHED")
    if run is not None:
        return _run_data(run)
    run = latest(None)
    if run is None:
        raise ScaleprobeError(
            f"experiment {name!r} in {target.uri} has no sweep; run one first "
            "(python -m src.run -m alpha=0,0.001,0.01)"
        )
    done = sum(s == "FINISHED" for s in child_statuses(target, run.info.run_id))
    jobs = f"{done} finished job(s)" if done else "no finished job"
    raise ScaleprobeError(
        f"experiment {name!r} in {target.uri} has no FINISHED sweep; the latest, "
        f"{run.info.run_id!r}, is {run.info.status} and has {jobs}; rerun the sweep, or pass "
        f"report.parent_run_id={run.info.run_id} to report it as it is"
    )


def sweep_status(target: TrackingTarget, parent: RunData) -> str | None:
    """Say what a sweep that did not finish lacks; ``None`` for a FINISHED sweep.

    A FINISHED parent means every job finished (the sweep callback closes it
    so); any other report shows only part of a sweep, and this line says so.
    The number of jobs is the one the callback recorded at launch
    (``scaleprobe.n_jobs``); sweeps without it count their logged jobs.
    """
    if parent.status == "FINISHED":
        return None
    statuses = child_statuses(target, parent.run_id)
    done = sum(s == "FINISHED" for s in statuses)
    n_jobs = parent.tags.get(N_JOBS_TAG, "")
    if n_jobs.isdigit():
        total = int(n_jobs)
        lacks = f"{total - done} of its {total} jobs missing"
    else:
        lacks = f"{len(statuses) - done} of its {len(statuses)} logged jobs not finished"
    return (
        f"sweep {parent.run_id} is {parent.status}, not FINISHED: this report shows "
        f"{done} finished job(s), {lacks}"
    )


def list_children(target: TrackingTarget, parent: RunData) -> list[RunData]:
    """Return the FINISHED jobs of a sweep, oldest first.

    Parameters
    ----------
    target : TrackingTarget
        The tracking store.
    parent : RunData
        The sweep's parent run.

    Returns
    -------
    list of RunData
        Finished children; failed or running ones are left out (and counted
        in a log line).

    Raises
    ------
    ScaleprobeError
        If the sweep has no finished child.
    """
    runs = list_child_runs(target, parent.run_id, experiment_id=parent.experiment_id)
    finished = [_run_data(r) for r in runs if r.info.status == "FINISHED"]
    if len(finished) < len(runs):
        logger.warning(
            "sweep %s: leaving out %d of %d jobs that did not finish",
            parent.run_id,
            len(runs) - len(finished),
            len(runs),
        )
    if not finished:
        raise ScaleprobeError(
            f"sweep {parent.run_id!r} ({parent.run_name!r}) has no finished job "
            f"({len(runs)} job(s) in all); rerun the sweep or pass another report.parent_run_id"
        )
    return finished


def _download(target: TrackingTarget, run_id: str, path: str, tmp: str) -> Path:
    from mlflow.exceptions import MlflowException

    # MLflow draws a tqdm bar per file; the report logs its own progress lines.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

    try:
        return Path(_client(target).download_artifacts(run_id, path, tmp))
    except (MlflowException, OSError) as error:
        raise ScaleprobeError(
            f"run {run_id!r} has no readable artifact {path!r} ({error}); was it logged by an "
            "older version? rerun the sweep"
        ) from None


def read_npy_artifact(target: TrackingTarget, run_id: str, path: str) -> np.ndarray:
    """Return a ``.npy`` artifact of a run (e.g. ``coef.npy``) as an array.

    Raises
    ------
    ScaleprobeError
        If the run has no such artifact.
    """
    with tempfile.TemporaryDirectory() as tmp:
        return np.load(_download(target, run_id, path, tmp), allow_pickle=False)


def read_json_artifact(target: TrackingTarget, run_id: str, path: str) -> Any:
    """Return a ``.json`` artifact of a run (e.g. ``path.json``), parsed.

    Raises
    ------
    ScaleprobeError
        If the run has no such artifact.
    """
    with tempfile.TemporaryDirectory() as tmp:
        return json.loads(_download(target, run_id, path, tmp).read_text())


def read_binary_artifact(target: TrackingTarget, run_id: str, path: str) -> bytes | None:
    """Return a top-level binary artifact of a run (e.g. ``stable_maps.png``); None if not logged.

    Optional artifacts (a montage exists only when a map was stable) are looked
    up first, so a run without one is not an error.
    """
    if path not in {f.path for f in _client(target).list_artifacts(run_id)}:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        return _download(target, run_id, path, tmp).read_bytes()
