"""The joblib launcher's worker processes: started early, stopped as soon as the sweep ends.

Hydra's joblib launcher starts its workers only when it launches the jobs,
and each then imports the whole job (torch, timm, Lightning: ~4 s) before its
first job starts. :func:`start_workers` starts the same pool when the sweep's
callback begins, so those imports overlap the parent's own checks (composing
every job, the MLflow store); joblib reuses a pool made with the launcher's
exact arguments. Workers started that early do not inherit what the callback
puts in the environment later: :func:`set_job_env` passes it through Hydra's
``hydra.job.env_set``, which every launcher applies to every job.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf, read_write

__all__ = ["is_joblib", "set_job_env", "start_workers", "stop_workers", "wait_started"]

_JOB_MODULE = "src.job"  # what a worker imports to run a job (src/run.py imports it lazily)


def is_joblib(launcher: DictConfig) -> bool:
    """Whether ``hydra.launcher`` is Hydra's joblib launcher."""
    return "hydra_joblib_launcher" in str(launcher.get("_target_", ""))


def start_workers(launcher: DictConfig) -> Iterator[Any]:
    """Start the launcher's pool and have each worker import the job; returns at once.

    The arguments are the launcher's own (hydra_joblib_launcher/_core.py:
    loky, its integer fields parsed), so that joblib reuses this pool for
    the jobs instead of starting another. Pass the result to
    :func:`wait_started`.
    """
    from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
    from joblib import Parallel, delayed, effective_n_jobs

    kwargs = OmegaConf.to_container(launcher, resolve=True)
    kwargs.pop("_target_", None)
    kwargs["backend"] = "loky"
    process_joblib_cfg(kwargs)
    n_workers = effective_n_jobs(kwargs.get("n_jobs"))  # -1: every core, as the pool sizes
    tasks = (delayed(importlib.import_module)(_JOB_MODULE) for _ in range(n_workers))
    return Parallel(**kwargs, return_as="generator_unordered")(tasks)


def wait_started(started: Iterator[Any]) -> None:
    """Wait until every worker of :func:`start_workers` has imported the job."""
    for _ in started:
        pass


def stop_workers() -> None:
    """End the pool's workers now that every job has returned.

    Left to loky's exit hook, each worker would tear torch down (~2 s) before
    the sweep returns. They hold nothing: a job returns only after it logged.
    """
    from joblib.externals.loky import reusable_executor

    executor = getattr(reusable_executor, "_executor", None)  # loky's one reusable pool
    if executor is not None:
        executor.shutdown(wait=True, kill_workers=True)


def set_job_env(config: DictConfig, name: str, value: str) -> None:
    """Set ``name`` here and, through ``hydra.job.env_set``, in every job of the sweep.

    Each job's config is composed again from ``hydra.overrides.hydra`` plus
    its own overrides, so the value goes there, quoted (a plain string).
    Escaped twice over: Hydra's grammar reads a backslash as an escape only
    before a quote or at the end, OmegaConf only before ``${`` (which it
    would otherwise resolve); those runs of backslashes are doubled, then
    each quote and each ``${`` escaped.
    """
    os.environ[name] = value
    escaped = re.sub(r"(\\+)(?='|\$\{|$)", r"\1\1", value)
    escaped = escaped.replace("'", "\\'").replace("${", "\\${")
    quoted = f"'{escaped}'"
    with read_write(config.hydra.overrides):
        config.hydra.overrides.hydra.append(f"++hydra.job.env_set.{name}={quoted}")
