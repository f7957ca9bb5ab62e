"""Entry point: ``python -m src.report`` writes the report of a sweep and logs it to MLflow.

It composes the same conf/ as ``python -m src.run`` (so ``tracking=server``
and every other override work the same) and reads its own ``report`` node:
``report.parent_run_id`` (default: the latest FINISHED sweep; a sweep that did not
finish is reported with a line saying its status and how many jobs it lacks),
``report.experiment``, ``report.output_dir`` and ``report.select``.
"""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from src.errors import ScaleprobeError, exit_on_user_error
from src.report.build import build_report
from src.tracking.store import tracking_target

__all__ = ["main", "report"]


def report(cfg: DictConfig) -> list[Path]:
    """Build the report that ``cfg.report`` asks for; return the files written."""
    node = cfg.report
    select = OmegaConf.to_container(node.select, resolve=True) if node.select else {}
    if not isinstance(select, dict):
        raise ScaleprobeError(
            f"report.select={select!r} is not a mapping; use +report.select.<param>=<value>"
        )
    return build_report(
        tracking_target(cfg.tracking),
        parent_run_id=node.parent_run_id,
        experiment=node.experiment,
        reference_alpha=float(cfg.reference_alpha),
        output_dir=node.output_dir,
        select=select,
    )


@hydra.main(version_base="1.3", config_path="../../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    """Hydra entry: a user mistake becomes one line on stderr and exit code 1."""
    with exit_on_user_error():
        report(cfg)


if __name__ == "__main__":
    main()
