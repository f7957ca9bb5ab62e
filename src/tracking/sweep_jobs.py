"""The jobs of a Hydra sweep, known before the launcher starts any of them.

The sweep callback counts them (the parent run records how many jobs the sweep
has, so a report can say how many a killed sweep lacks) and validates each
job's composed config, so that a bad value in the fourth job stops the sweep
before the first one extracts anything.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.errors import ScaleprobeError

__all__ = ["BASIC_SWEEPER", "compose_job", "list_sweep_jobs", "validate_sweep_jobs"]

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


def _varying(jobs: list[list[str]]) -> set[str]:
    """Return the overrides that differ between jobs (what tells one job from another)."""
    if len(jobs) < 2:
        return set()
    return {o for job in jobs for o in job if not all(o in other for other in jobs)}


def validate_sweep_jobs(
    config: DictConfig, jobs: list[list[str]], validate: Callable[[DictConfig], None]
) -> list[DictConfig]:
    """Compose every job of the sweep and ``validate`` it; the first bad one stops the sweep.

    Returns the composed configs, in job order (composing costs ~0.2 s a job:
    the callback reads them again instead of composing twice).

    Raises
    ------
    ScaleprobeError
        ``sweep job #<n> (<its swept values>): <the validation message>``, or
        Hydra's composition error of that job joined into one line.
    """
    from hydra.errors import HydraException

    varying = _varying(jobs)
    composed = []
    for number, overrides in enumerate(jobs):
        shown = " ".join(o for o in overrides if o in varying) or " ".join(overrides)
        try:
            job = compose_job(config, overrides)
            validate(job)
        except ScaleprobeError as error:
            raise ScaleprobeError(f"sweep job #{number} ({shown}): {error}") from None
        except HydraException as error:
            text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
            raise ScaleprobeError(f"sweep job #{number} ({shown}): {text}") from None
        composed.append(job)
    return composed
