"""Targets: what the probes regress on, computed per image record.

Records carry image identity and annotations only; a target turns them into
``y``. Features never depend on the target, so changing it reuses the feature
cache. Adding a target is one module here (or anywhere importable) with a
:class:`~src.targets.base.Target` subclass, plus one YAML file in
``conf/target/`` naming it with ``_target_``.
"""

from src.targets.aspect import AspectTarget
from src.targets.base import Target
from src.targets.build import build_target
from src.targets.position import PositionTarget
from src.targets.scale import ScaleTarget

__all__ = ["AspectTarget", "PositionTarget", "ScaleTarget", "Target", "build_target"]
