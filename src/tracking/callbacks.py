"""Hydra callback that owns a sweep's MLflow parent run.

The parent (and the sqlite store and experiment behind it) is created once in
the launching process before any job starts, so parallel jobs never race to
create the database; jobs find its id in ``SCALEPROBE_PARENT_RUN_ID``.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.atomic import atomic_write_text
from src.cluster import check_launcher
from src.errors import exit_on_user_error
from src.tracking import joblib_workers
from src.tracking.log import check_store_present, create_parent_run, end_run
from src.tracking.query import child_statuses, list_child_runs, sweep_summary
from src.tracking.store import (
    N_JOBS_TAG,
    TrackingTarget,
    _client,
    check_reachable,
    tracking_target,
)
from src.tracking.sweep_jobs import list_sweep_jobs, validate_sweep_jobs

__all__ = ["N_JOBS_TAG", "PARENT_RUN_ENV", "MlflowSweepCallback", "close_stale_parents"]

logger = logging.getLogger(__name__)

PARENT_RUN_ENV = "SCALEPROBE_PARENT_RUN_ID"
HOST_TAG = "scaleprobe.host"
PID_TAG = "scaleprobe.launcher_pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def close_stale_parents(target: TrackingTarget) -> list[str]:
    """Mark KILLED the RUNNING sweep parents whose launching process on this host is gone.

    A sweep killed with SIGKILL cannot close its parent, which would then look
    RUNNING forever; the next sweep on the same host closes it (and any child
    left RUNNING mid-logging under it) as KILLED. Parents launched on other
    hosts, or by a process still alive, are left alone. Returns the ids closed.
    """
    client = _client(target)
    experiment = client.get_experiment_by_name(target.experiment)
    if experiment is None:
        return []
    host = socket.gethostname()
    running = client.search_runs(
        [experiment.experiment_id],
        filter_string="attributes.status = 'RUNNING' and tags.`scaleprobe.role` = 'sweep'",
    )
    closed = []
    for run in running:
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if tags.get(HOST_TAG) != host or not pid.isdigit() or _alive(int(pid)):
            continue
        children = list_child_runs(
            target, run.info.run_id, experiment_id=experiment.experiment_id, status="RUNNING"
        )
        for child in children:
            end_run(target, child.info.run_id, "KILLED", reason="launcher process gone")
        end_run(target, run.info.run_id, "KILLED", reason="launcher process gone")
        closed.append(run.info.run_id)
        logger.warning("closed stale sweep parent %s as KILLED (launcher gone)", run.info.run_id)
    return closed


class MlflowSweepCallback(Callback):
    """Create the parent run on multirun start; close it on multirun end.

    With ``tracking.summary_file`` set, the end also writes the sweep's summary
    (parent id, each child's mean metrics) there: the DVC probes stage's output.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Create the sweep's parent run before the launcher starts any job.

        Hydra turns an exception raised here into a warning and launches the
        jobs anyway (each would then log under a parent of its own), so a bug
        here is logged with its traceback and stops the sweep.
        """
        joblib = joblib_workers.is_joblib(config.hydra.launcher)
        # The workers import the job while this process checks the sweep.
        started = joblib_workers.start_workers(config.hydra.launcher) if joblib else None
        launching = False
        try:
            self._start(config)
            if started is not None:
                joblib_workers.wait_started(started)
            launching = True
        except Exception:
            logger.exception("the sweep callback failed; no job was launched")
            raise SystemExit(1) from None
        finally:
            if started is not None and not launching:  # a bad job or store: no job will run
                joblib_workers.stop_workers()

    def _start(self, config: DictConfig) -> None:
        from src.config import validate_job_config

        # Here, not at the top: it imports torch and timm, which the parent
        # then loads while the joblib workers start (src/run.py says why).
        from src.features.scan import SCAN_LAYERS_ENV, expand_all_layers, sweep_layer_union

        with exit_on_user_error():
            validate_job_config(config)
            # A SLURM request the cluster cannot serve (src/cluster.py), before any run exists.
            check_launcher(config.hydra.launcher)
            expand_all_layers(config)  # layer=all: one job per block of the backbone
            # Every job's own config, before any job runs or the store is touched:
            # a bad value in the last job must not cost the first jobs' compute.
            jobs = list_sweep_jobs(config)
            if jobs is not None:
                composed = validate_sweep_jobs(config, jobs, validate_job_config)
                # One extraction pass for every layer the sweep probes (src/features/scan.py).
                union = sweep_layer_union(composed)
                joblib_workers.set_job_env(config, SCAN_LAYERS_ENV, json.dumps(union))
            target = tracking_target(config.tracking)
            # First contact with the store: an unreachable server must stop the sweep
            # here, in one line, not after MLflow's client retried for minutes.
            check_reachable(target)
            overrides = " ".join(config.hydra.overrides.task)
            close_stale_parents(target)
            tags = {
                "scaleprobe.overrides": overrides,
                HOST_TAG: socket.gethostname(),
                PID_TAG: str(os.getpid()),
            }
            if jobs is not None:
                tags[N_JOBS_TAG] = str(len(jobs))
            run_id = create_parent_run(target, run_name=f"sweep {overrides}".strip(), tags=tags)
        joblib_workers.set_job_env(config, PARENT_RUN_ENV, run_id)
        logger.info("MLflow parent run %s at %s", run_id, target.uri)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Close the parent: FINISHED when every child finished, else FAILED."""
        from src.features.scan import SCAN_LAYERS_ENV

        if joblib_workers.is_joblib(config.hydra.launcher):
            joblib_workers.stop_workers()
        os.environ.pop(SCAN_LAYERS_ENV, None)
        run_id = os.environ.pop(PARENT_RUN_ENV, None)
        if run_id is None:
            return
        target = tracking_target(config.tracking)
        with exit_on_user_error():
            check_store_present(target, run_id)
        statuses = child_statuses(target, run_id)
        ok = bool(statuses) and all(s == "FINISHED" for s in statuses)
        end_run(target, run_id, "FINISHED" if ok else "FAILED")
        summary_file = config.tracking.get("summary_file")
        if summary_file:
            _write_summary(Path(summary_file), sweep_summary(target, run_id))


def _write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write the sweep summary whole (src/atomic.py: temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    logger.info("sweep summary (%d runs) written to %s", summary["n_runs"], path)
