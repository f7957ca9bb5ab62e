"""Build the target a composed config names (``conf/target/*.yaml``, ``_target_``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import hydra
from hydra.errors import HydraException
from omegaconf import DictConfig

from src.errors import ScaleprobeError
from src.targets.base import Target

__all__ = ["build_target"]


def build_target(node: DictConfig | Mapping[str, Any]) -> Target:
    """Instantiate the ``target`` config node and check it is a :class:`Target`.

    Parameters
    ----------
    node : DictConfig or mapping
        The composed ``cfg.target``: ``_target_`` (a class path) and its
        arguments, ``name`` among them.

    Returns
    -------
    Target
        The target object.

    Raises
    ------
    ScaleprobeError
        If the class cannot be imported or built, or is not a Target; the
        message names ``target._target_``.
    """
    path = node.get("_target_") if isinstance(node, Mapping | DictConfig) else None
    if not path:
        raise ScaleprobeError(
            "target._target_ is not set; a conf/target/*.yaml names its class, "
            "e.g. _target_: src.targets.scale.ScaleTarget"
        )
    try:
        target = hydra.utils.instantiate(node)
    except HydraException as error:
        cause = error.__cause__ or error.__context__
        if isinstance(cause, ScaleprobeError):  # the target's own check of its arguments
            raise cause from None
        reason = " ".join(str(error).split()) or type(error).__name__
        raise ScaleprobeError(f"target._target_={path!r} cannot be built: {reason}") from None
    if not isinstance(target, Target):
        raise ScaleprobeError(
            f"target._target_={path!r} built a {type(target).__name__}, not a "
            "src.targets.base.Target subclass"
        )
    return target
