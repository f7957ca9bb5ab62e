"""Entry point: ``python -m src.run`` composes conf/ and runs one probe job (:mod:`src.job`).

Under ``-m`` this process is the sweep's parent: it checks the sweep and
launches its jobs, and imports the job's stack (torch, timm, Lightning) only
when it runs one itself (the basic launcher), so the joblib launcher's
workers, started while it checks, have the cores to themselves
(src/tracking/joblib_workers.py).
"""

from __future__ import annotations

import os
import sys

import hydra
from omegaconf import DictConfig

from src.config import check_group_overrides
from src.errors import RunInterrupted, ScaleprobeError, exit_on_user_error, stop_on_signals
from src.tracking.callbacks import PARENT_RUN_ENV
from src.tracking.log import end_run, fail_parent
from src.tracking.store import tracking_target

__all__ = ["main"]


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Hydra entry: run the job; a user mistake is one line and exit code 1.

    SIGTERM / SIGINT stop the job (exit 143 / 130, a partial cache entry kept
    for the next run); a sweep's parent run is then marked KILLED. A single
    run creates its MLflow runs only at the end, so it has none to mark.
    """
    from src.job import run

    parent_run_id = os.environ.get(PARENT_RUN_ENV)
    with exit_on_user_error(), stop_on_signals():
        try:
            return run(cfg, parent_run_id=parent_run_id)["r2_test"]
        except ScaleprobeError as error:
            if parent_run_id is not None:
                fail_parent(tracking_target(cfg.tracking), parent_run_id, str(error))
            raise
        except RunInterrupted as stop:
            if parent_run_id is not None:
                end_run(tracking_target(cfg.tracking), parent_run_id, "KILLED", reason=str(stop))
            raise


if __name__ == "__main__":
    with exit_on_user_error():
        check_group_overrides(sys.argv[1:])  # an unknown probe=... in one line, not Hydra's listing
    main()
