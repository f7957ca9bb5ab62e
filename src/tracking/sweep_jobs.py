"""The jobs of a Hydra sweep, known before the launcher starts any of them.

The sweep callback counts them (the parent run records how many jobs the sweep
has, so a report can say how many a killed sweep lacks) and validates each
job's composed config, so that a bad value in the fourth job stops the sweep
before the first one extracts anything.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

__all__ = ["BASIC_SWEEPER", "compose_job", "list_sweep_jobs"]

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def _config_loader() -> Any:
    from hydra.core.global_hydra import GlobalHydra

    return GlobalHydra.instance().config_loader()


def list_sweep_jobs(config: DictConfig) -> list[list[str]] | None:
    """Return each job's overrides, in launch order, as Hydra's basic sweeper makes them.

    Parameters
    ----------
    config : DictConfig
        The sweep's config, as ``Callback.on_multirun_start`` receives it.

    Returns
    -------
    list of list of str or None
        One override list per job; ``None`` under another sweeper (an
        optimizer chooses its jobs as it goes, so they cannot be listed).
    """
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    sweeper = config.hydra.sweeper
    if sweeper.get("_target_") != BASIC_SWEEPER:
        return None
    params = sweeper.get("params")
    arguments = [f"{key}={value}" for key, value in (params or {}).items()]
    arguments += list(OmegaConf.to_container(config.hydra.overrides.task, resolve=False))
    parser = OverridesParser.create(config_loader=_config_loader())
    batches = BasicSweeper.split_arguments(parser.parse_overrides(arguments), None)
    return [list(job) for batch in batches for job in batch]


def compose_job(config: DictConfig, overrides: list[str]) -> DictConfig:
    """Compose one job's config exactly as the launcher will (same loader, same cache)."""
    return _config_loader().load_sweep_config(config, overrides)
