"""Sweeps on SLURM (and submitit's local executor): the request checked, every job accounted for.

``conf/hydra/launcher/slurm.yaml`` and ``local.yaml`` point Hydra at
hydra_plugins/scaleprobe_launcher/, whose launchers are the one here:
hydra-submitit-launcher's, except that a sweep waits for
all its jobs and then accounts for each. The stock launcher raises at the
first failed job while the others still run, so Hydra never calls
``on_multirun_end`` and the parent run would stay RUNNING; here every
failed or killed job gets a FAILED / KILLED child run (the job itself could
not log one: it was cancelled, or SIGKILLed), the parent is closed FAILED,
and one line per failed job names its number and overrides.

:func:`check_launcher` runs in the sweep callback before the parent run is
made: a request SLURM would refuse (no ``sbatch``, a partition the cluster
lacks, more memory than any node has) stops the sweep in one line.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from omegaconf import DictConfig, OmegaConf
from submitit.core.utils import FailedJobError

from src.errors import ScaleprobeError

__all__ = ["AccountedLauncher", "JobFailure", "check_launcher"]

logger = logging.getLogger(__name__)

# SLURM (sacct) and submitit-local states of a job stopped from outside rather than failing.
STATE_POLL_S = 10.0  # how often a waiting sweep asks SLURM for its jobs' states
_KILLED_STATES = ("CANCELLED", "TIMEOUT", "PREEMPTED", "INTERRUPTED", "DEADLINE")


def _slurm_query(args: list[str]) -> str:
    """Run a SLURM client (sinfo) and return its stdout; a failure is one line."""
    try:
        done = subprocess.run(  # noqa: S603 (fixed sinfo arguments, no shell)
            args, capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired:
        raise ScaleprobeError(
            f"`{' '.join(args)}` gave no answer in 60 s: is slurmctld up (SLURM_CONF)?"
        ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ScaleprobeError(f"`{' '.join(args)}` failed ({last}): is slurmctld up?")
    return done.stdout


def check_launcher(launcher: Mapping[str, Any]) -> None:
    """Refuse a SLURM request the cluster cannot serve, before any job or run exists.

    Only launchers that submit to SLURM are checked: ``sbatch`` must be on
    PATH, ``partition`` (if set) one that ``sinfo`` lists, and ``mem_gb`` (if
    set) no more than the largest node of that partition has (SLURM would
    leave such a job pending, or refuse it, after the parent run was made).
    """
    if not str(launcher.get("_target_", "")).endswith("SlurmLauncher"):
        return
    if shutil.which("sbatch") is None:
        raise ScaleprobeError(
            "hydra/launcher=slurm submits with sbatch, and no sbatch is on PATH: install "
            "slurm-client (or run on a login node), or use hydra/launcher=local"
        )
    partition = launcher.get("partition")
    known = _slurm_query(["sinfo", "-h", "-o", "%R"]).split()
    if partition is not None and str(partition) not in known:
        raise ScaleprobeError(
            f"hydra.launcher.partition={partition!r} is not a partition of this cluster; "
            f"sinfo lists {sorted(set(known))}"
        )
    mem_gb = launcher.get("mem_gb")
    if mem_gb is not None:
        where = ["-p", str(partition)] if partition is not None else []
        sizes = _slurm_query(["sinfo", "-h", *where, "-o", "%m"]).split()
        known_mb = [int(s.rstrip("+")) for s in sizes if s.rstrip("+").isdigit()]
        if not known_mb:
            scope = f" in partition {partition!r}" if partition is not None else ""
            raise ScaleprobeError(f"sinfo lists no node{scope}: is the cluster's slurmd up?")
        largest_mb = max(known_mb)
        if float(mem_gb) * 1024 > largest_mb:
            scope = f"partition {partition!r}" if partition is not None else "the cluster"
            raise ScaleprobeError(
                f"hydra.launcher.mem_gb={mem_gb} is more memory than any node of {scope} has "
                f"(largest: {largest_mb} MB, {largest_mb // 1024} GB, per sinfo); ask for less"
            )


@dataclass(frozen=True)
class JobFailure:
    """One job of a sweep that did not finish: its number, overrides, MLflow status, why."""

    num: int
    overrides: str
    status: str  # FAILED or KILLED
    reason: str

    def line(self) -> str:
        """Return the one line the sweep prints for this job."""
        return f"job #{self.num} ({self.overrides}): {self.status}: {self.reason}"


def _wait_all(jobs: Sequence[Any]) -> None:
    """Wait for every job, asking the scheduler at least every STATE_POLL_S seconds.

    A job that ends without a result (cancelled, killed) is seen only through
    sacct, which submitit alone asks less and less often (half the time since
    submission, up to 10 min apart): a job cancelled late in a long sweep
    would keep the sweep waiting that long. One forced query refreshes them all.
    """
    while True:
        left = [job for job in jobs if not job.done()]
        if not left:
            return
        time.sleep(STATE_POLL_S)
        left[0].done(force_check=True)


def _failure(job: Any, num: int, overrides: str) -> JobFailure | None:
    """Wait for ``job``; return what went wrong, or None if it returned a COMPLETED JobReturn."""
    error = job.exception()  # waits for the job to end, whatever its end
    if error is None:
        result = job.results()[0]
        if result.status == JobStatus.COMPLETED:
            return None
        return JobFailure(num, overrides, "FAILED", f"raised {result._return_value!r}"[:300])
    state = str(job.state)
    status = "KILLED" if state.upper().startswith(_KILLED_STATES) else "FAILED"
    if isinstance(error, FailedJobError):  # it raised: the exception's own last line
        lines = [line for line in str(error).splitlines() if line.strip()]
        reason = f"raised {lines[-1].strip() if lines else type(error).__name__}"
    else:  # cancelled, killed, timed out: no result at all
        reason = f"ended without a result (scheduler state {state})"
    log = (job.stderr() or "").strip().splitlines()
    said = next((line for line in reversed(log) if line.startswith("error:")), None)
    return JobFailure(num, overrides, status, reason + (f"; the job said: {said}" if said else ""))


def _close_failed_sweep(config: DictConfig, failures: Sequence[JobFailure], total: int) -> None:
    """Give each failed job a child run in its state and close the sweep's parent FAILED."""
    from src.tracking.callbacks import PARENT_RUN_ENV  # here: callbacks imports this module
    from src.tracking.log import JOB_NUM_TAG, end_run, get_experiment_id
    from src.tracking.query import list_child_runs
    from src.tracking.store import PARENT_TAG, _client, tracking_target

    parent = os.environ.pop(PARENT_RUN_ENV, None)
    if parent is None:  # not a scaleprobe sweep (no callback): nothing to close
        return
    target = tracking_target(config.tracking)
    client = _client(target)
    # The child a failed job left (killed mid-logging: RUNNING; or closed by the job
    # itself) takes the job's state, so no job has two children.
    children = list_child_runs(target, parent)
    left = {c.data.tags[JOB_NUM_TAG]: c for c in children if JOB_NUM_TAG in c.data.tags}
    for failure in failures:
        tags = {
            PARENT_TAG: parent,
            "scaleprobe.role": "job",
            JOB_NUM_TAG: str(failure.num),
            "scaleprobe.overrides": failure.overrides,
            "scaleprobe.failure": failure.reason[:5000],
        }
        child = left.pop(str(failure.num), None)
        if child is None:
            name = f"job #{failure.num} {failure.overrides} ({failure.status})"
            made = client.create_run(get_experiment_id(target), run_name=name, tags=tags)
            run_id = made.info.run_id
        else:
            run_id = child.info.run_id
            for key, value in tags.items():
                client.set_tag(run_id, key, value)
        client.set_terminated(run_id, status=failure.status)
    # Any other child left RUNNING (a job killed mid-logging) will never finish.
    untagged = [c for c in children if JOB_NUM_TAG not in c.data.tags]
    for child in [*left.values(), *untagged]:
        if child.info.status == "RUNNING":
            end_run(target, child.info.run_id, "KILLED", reason="its job ended before logging")
    nums = ",".join(str(f.num) for f in failures)
    end_run(target, parent, "FAILED", failed_jobs=nums, error=f"{len(failures)} of {total} jobs")


class AccountedLauncher(BaseSubmititLauncher):
    """hydra-submitit-launcher's launcher that waits for every job and accounts for each."""

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        """Submit the jobs as one array (as hydra-submitit-launcher 1.2.0 does); wait for all.

        All finished: their JobReturns, and Hydra's ``on_multirun_end`` closes
        the parent. Any failed: failed children recorded, the parent closed
        FAILED, a line per failed job on stderr, and exit status 1.
        """
        import submitit

        if self.config is None:
            raise RuntimeError("launch() before setup()")
        params = dict(self.params)
        init = {"folder": params.pop("submitit_folder")}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(
            **{k if k in shared else f"{self._EXECUTOR}_{k}": v for k, v in params.items()}
        )
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:
            sweep_dir.chmod(int(str(self.config.hydra.sweep.mode), 8))
        logger.info("submitit %r sweep: %d jobs, logs under %s/.submitit",
                    self._EXECUTOR, len(job_overrides), sweep_dir)  # fmt: skip
        nums = [initial_job_idx + i for i in range(len(job_overrides))]
        shown = [" ".join(filter_overrides(o)) for o in job_overrides]
        for num, line in zip(nums, shown, strict=True):
            logger.info("\t#%d : %s", num, line)
        state = Singleton.get_state()
        jobs = executor.map_array(
            self,
            [list(o) for o in job_overrides],
            ["hydra.sweep.dir"] * len(nums),
            nums,
            [f"job_id_for_{n}" for n in nums],
            [state] * len(nums),
        )
        _wait_all(jobs)
        failures = [
            f
            for job, num, line in zip(jobs, nums, shown, strict=True)
            if (f := _failure(job, num, line)) is not None
        ]
        if not failures:
            return [job.results()[0] for job in jobs]
        _close_failed_sweep(self.config, failures, len(jobs))
        sys.stderr.write(
            f"error: {len(failures)} of {len(jobs)} jobs of the sweep did not finish "
            "(its MLflow parent run is FAILED):\n"
            + "".join(f"  {failure.line()}\n" for failure in failures)
        )
        raise SystemExit(1)
