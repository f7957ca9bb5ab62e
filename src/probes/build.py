"""Build the probe a composed config names (``conf/probe/*.yaml``, ``_target_``).

The one module of ``src/probes`` that reads a config node; the probes
themselves are plain scikit-learn estimators, usable without Hydra.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import hydra
from hydra.errors import InstantiationException

from src.errors import ScaleprobeError
from src.probes.base import GridProbe
from src.probes.selection import SELECT_LOO

__all__ = ["build_probe"]


def build_probe(node: Mapping[str, Any]) -> tuple[GridProbe, float | str]:
    """Build the ``probe`` group's probe; return it and this job's hyperparameter value.

    Parameters
    ----------
    node : mapping
        The composed ``cfg.probe``: ``name`` (the ``probe`` MLflow param),
        ``value`` (this job's hyperparameter), ``_target_`` (the class) and the
        class's constructor arguments (its ``grid`` among them).

    Returns
    -------
    probe : GridProbe
        The unfitted probe, with its grid.
    value : float or "gcv"
        The hyperparameter value this job reports; ``"gcv"``: each split's
        value of least leave-one-out error (probes with ``gives_loo``).

    Raises
    ------
    ScaleprobeError
        If the class cannot be built, is not a :class:`GridProbe`, or ``value``
        is not a finite number; the message names the key.
    """
    spec = {k: v for k, v in node.items() if k not in ("name", "value")}
    try:
        probe = hydra.utils.instantiate(spec, _convert_="all")
    except InstantiationException as error:
        cause = str(error).strip().splitlines()[0]
        raise ScaleprobeError(
            f"probe={node.get('name')!r} cannot be built from _target_="
            f"{node.get('_target_')!r}: {cause}"
        ) from None
    if not isinstance(probe, GridProbe):
        raise ScaleprobeError(
            f"probe._target_={node.get('_target_')!r} is not a src.probes.base.GridProbe "
            "subclass; a probe must declare its grid, fit it for many targets at once and predict"
        )
    value = node.get("value")
    if value == SELECT_LOO:
        if not probe.gives_loo:
            raise ScaleprobeError(
                f"probe.value={SELECT_LOO!r} needs leave-one-out errors, which "
                f"probe={node.get('name')!r} does not give; use probe=ridge or a number"
            )
        return probe, value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScaleprobeError(
            f"probe.value={value!r} is not a finite number (or {SELECT_LOO!r} for ridge)"
        )
    return probe, float(value)
