"""Validate a composed config: one clear line per mistake, before any work starts."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from src.errors import ScaleprobeError

__all__ = [
    "RULES",
    "Rule",
    "check_group_overrides",
    "group_options",
    "validate_config",
    "validate_job_config",
]

_CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
_POLICIES = ("single", "largest", "union")
_DATA_SOURCES = ("synthetic", "imagenet", "voc", "coco")
_SIZE_MISMATCH = ("use_image", "skip", "error")
_LAYOUTS = {
    "imagenet": "the ILSVRC folder holding train/<wnid>/*.JPEG and Annotation/<wnid>/*.xml",
    "voc": "the VOC year folder holding JPEGImages/ and Annotations/",
    "coco": "the COCO images folder (train2017/) that data.annotations' file_name entries are in",
}


def _backbones() -> tuple[str, ...]:
    from src.features.backbones import backbone_options

    return tuple(backbone_options())


def _poolings() -> tuple[str, ...]:
    from src.features.reduce import POOLINGS

    return POOLINGS


def _has_pooling(cfg: DictConfig) -> bool:
    return "pooling" in cfg.layer


def _preset(cfg: DictConfig) -> bool:
    """Say whether the backbone is a preset (names itself), not a catalog (names its model)."""
    return cfg.backbone.get("catalog") is None


def _synthetic(cfg: DictConfig) -> bool:
    return cfg.data.name == "synthetic"


def _not_coco(cfg: DictConfig) -> bool:
    """COCO classes may be category ids (``pair.train_class=16``), checked by validate_config."""
    return cfg.data.name != "coco"


def _scale(cfg: DictConfig) -> bool:
    """Say whether the target is the scale's with an ``area`` key (else its default, box)."""
    return cfg.target.get("_target_") == "src.targets.scale.ScaleTarget" and "area" in cfg.target


def _areas() -> tuple[str, ...]:
    from src.targets.scale import AREAS

    return AREAS


def _probe(*classes: str) -> Callable[[DictConfig], bool]:
    """Apply a rule to the probes these classes build (``_target_``: plugins may reuse names)."""
    targets = {f"src.probes.{c}" for c in classes}
    return lambda cfg: cfg.probe.get("_target_") in targets


_KERNEL_RIDGE = _probe("kernel_ridge.KernelRidgeProbe")
_MLP = _probe("mlp.MLPProbe")
_OWN_PROBE = _probe("ridge.RidgeProbe", "kernel_ridge.KernelRidgeProbe", "mlp.MLPProbe")


def _position(cfg: DictConfig) -> bool:
    return cfg.target.get("_target_") == "src.targets.position.PositionTarget"


def _csv_target(cfg: DictConfig) -> bool:
    return cfg.target.get("_target_") == "src.targets.table.CsvTarget"


def _on_missing() -> tuple[str, ...]:
    from src.targets.table import ON_MISSING

    return ON_MISSING


def _axes() -> tuple[str, ...]:
    from src.targets.position import AXES

    return AXES


def _controls(cfg: DictConfig) -> bool:
    return cfg.get("controls") is not None


def _kernels() -> tuple[str, ...]:
    from src.probes.kernel_ridge import KERNELS

    return KERNELS


@dataclass(frozen=True)
class Rule:
    """What one config key may hold: its kind, range or options, and when it applies.

    Attributes
    ----------
    key : str
        Dotted config key (``n_splits``, ``backbone.input_size``).
    kind : {"number", "integer", "choice", "name", "numbers", "integers"}
        A finite real, an integer, one of ``choices``, a non-empty string, or a
        non-empty list of finite reals or of integers.
    minimum : float or None, default=None
        Smallest allowed value (``number``, ``integer``, ``numbers``, ``integers``).
    maximum : float or None, default=None
        Largest allowed value (the same kinds).
    exclusive : bool, default=False
        Whether ``minimum`` and ``maximum`` themselves are excluded (``gamma > 0``).
    choices : tuple of str or callable returning one, default=()
        Allowed values of a ``choice`` (a callable is asked at check time).
    also : tuple, default=()
        Further literal values allowed besides the kind (``"auto"``).
    when : callable or None, default=None
        Check the key only where ``when(cfg)`` is true.
    """

    key: str
    kind: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive: bool = False
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    also: tuple[Any, ...] = ()
    when: Callable[[DictConfig], bool] | None = None

    def allowed(self) -> tuple[str, ...]:
        """Return the options of a ``choice`` key."""
        return self.choices() if callable(self.choices) else self.choices

    def check(self, value: Any) -> None:
        """Raise :class:`ScaleprobeError` naming the key when ``value`` breaks the rule."""
        if value in self.also and not isinstance(value, bool):
            return
        bounds = {"minimum": self.minimum, "maximum": self.maximum, "exclusive": self.exclusive}
        if self.kind in ("number", "integer"):
            _check_number(self.key, value, **bounds, integer=self.kind == "integer")
        elif self.kind in ("numbers", "integers"):
            items = OmegaConf.to_object(value) if OmegaConf.is_config(value) else value
            if not isinstance(items, list | tuple) or not items:
                raise ScaleprobeError(
                    f"{self.key}={items!r} is not allowed; expected a non-empty list of "
                    f"{self.kind} {_range(**bounds)}"
                )
            for i, item in enumerate(items):
                _check_number(f"{self.key}[{i}]", item, **bounds, integer=self.kind == "integers")
        elif self.kind == "choice":
            if value not in self.allowed():
                raise ScaleprobeError(
                    f"{self.key}={value!r} is not allowed; choose from {list(self.allowed())}"
                )
        elif not isinstance(value, str) or not value:
            raise ScaleprobeError(f"{self.key}={value!r} must be a non-empty string")


#: The one table of what each config key may hold, shared by :func:`validate_config`
#: (every run and every job of a sweep, checked up front by the sweep callback) and
#: src/check_params.py (params.yaml). A new key is one line here.
RULES: dict[str, Rule] = {
    rule.key: rule
    for rule in (
        Rule("alpha", "number", minimum=0.0),
        Rule("reference_alpha", "number", minimum=0.0),
        Rule("seed", "integer", minimum=0),
        Rule("n_splits", "integer", minimum=2),
        Rule("n_train", "integer", minimum=2),
        Rule("n_test", "integer", minimum=2),
        Rule("n_permutations", "integer", minimum=1),
        Rule("inner_folds", "integer", minimum=2, also=(None,)),
        Rule("path_alphas", "numbers", minimum=0.0),
        Rule("stability.n_bootstrap", "integer", minimum=0),
        Rule(
            "stability.threshold", "number", minimum=0.0, maximum=1.0, exclusive=True, also=(1, 1.0)
        ),
        Rule("backbone.name", "choice", choices=_backbones, when=_preset),
        Rule("backbone.input_size", "integer", minimum=32, also=("auto",)),
        Rule("layer.name", "name"),
        Rule("layer.pooling", "choice", choices=_poolings, when=_has_pooling),
        Rule("pair.train_class", "name", when=_not_coco),
        Rule("pair.test_class", "name", when=_not_coco),
        Rule("data.name", "choice", choices=_DATA_SOURCES),
        Rule("data.policy", "choice", choices=_POLICIES),
        Rule("data.on_size_mismatch", "choice", choices=_SIZE_MISMATCH),
        Rule("data.n_per_class", "integer", minimum=2, when=_synthetic),
        Rule("data.rotation", "choice", choices=(True, False), when=_synthetic),
        Rule("target.axis", "choice", choices=_axes, when=_position),
        Rule("target.area", "choice", choices=_areas, when=_scale),
        Rule("target.path", "name", when=_csv_target),
        Rule("target.column", "name", when=_csv_target),
        Rule("target.id_column", "name", when=_csv_target),
        Rule("target.on_missing", "choice", choices=_on_missing, when=_csv_target),
        Rule("extract.batch_size", "integer", minimum=1),
        Rule("extract.num_workers", "integer", minimum=0, also=("auto",)),
        # the lasso's grid and value are path_alphas and alpha (above)
        Rule("probe.grid", "numbers", minimum=0.0, when=_OWN_PROBE),
        Rule("probe.value", "number", minimum=0.0, also=("gcv",), when=_OWN_PROBE),
        Rule("probe.kernel", "choice", choices=_kernels, when=_KERNEL_RIDGE),
        Rule(
            "probe.gamma", "number", minimum=0.0, exclusive=True, also=(None,), when=_KERNEL_RIDGE
        ),
        Rule("probe.max_memory_gib", "number", minimum=0.0, exclusive=True, when=_KERNEL_RIDGE),
        Rule("probe.hidden_layer_sizes", "integers", minimum=1, when=_MLP),
        Rule("probe.max_iter", "integer", minimum=1, when=_MLP),
        Rule(
            "probe.validation_fraction",
            "number",
            minimum=0.0,
            maximum=1.0,
            exclusive=True,
            when=_MLP,
        ),
        Rule("probe.n_iter_no_change", "integer", minimum=1, when=_MLP),
        Rule("probe.learning_rate_init", "number", minimum=0.0, exclusive=True, when=_MLP),
        Rule("probe.random_state", "integer", minimum=0, when=_MLP),
        # controls.kinds (a list of names) is checked by src/features/controls.py, below
        Rule("controls.random_bn", "choice", choices=(True, False), when=_controls),
        Rule("controls.histogram_bins", "integer", minimum=1, maximum=16, when=_controls),
        Rule("controls.thumbnail_size", "integer", minimum=1, maximum=64, when=_controls),
    )
}


def _value(cfg: DictConfig, key: str) -> Any:
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except OmegaConfBaseException:
        raise ScaleprobeError(f"{key} is not set; pass {key}=<value> on the command line") from None


def _range(minimum: float | None, maximum: float | None, exclusive: bool) -> str:
    """Say the allowed range: ``>= 1``, ``> 0.0`` or ``in (0.0, 1.0)``."""
    if maximum is None:
        return f"{'>' if exclusive else '>='} {minimum}"
    if minimum is None:
        return f"{'<' if exclusive else '<='} {maximum}"
    return f"in {'(' if exclusive else '['}{minimum}, {maximum}{')' if exclusive else ']'}"


def _check_number(
    key: str,
    value: Any,
    *,
    minimum: float | None,
    maximum: float | None = None,
    exclusive: bool = False,
    integer: bool = False,
) -> None:
    kind = Integral if integer else Real
    allowed = _range(minimum, maximum, exclusive)
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        expected = "an integer" if integer else "a finite number"
        raise ScaleprobeError(f"{key}={value!r} is not {expected}; expected {expected} {allowed}")
    low = minimum is not None and (value <= minimum if exclusive else value < minimum)
    high = maximum is not None and (value >= maximum if exclusive else value > maximum)
    if low or high:
        raise ScaleprobeError(f"{key}={value!r} is out of range; expected a value {allowed}")


def validate_job_config(cfg: DictConfig) -> None:
    """Check a probe job's config: :func:`validate_config`, and what only a job refuses.

    A job runs once, so it cannot be one of the processes srun starts on
    every node for ``extract.num_nodes>1``; ``python -m src.prepare`` is.
    """
    validate_config(cfg)
    nodes = cfg.extract.get("num_nodes", 1)
    if nodes != 1:
        raise ScaleprobeError(
            f"extract.num_nodes={nodes!r} extracts under python -m src.prepare, which every "
            f"srun task runs (srun --nodes={nodes} --ntasks-per-node=<devices> python -m "
            f"src.prepare extract.num_nodes={nodes} ...); a probe job runs once: fill the "
            "cache that way, then run the job with extract.num_nodes=1"
        )


def validate_config(cfg: DictConfig) -> None:
    """Check every value the run reads; raise :class:`ScaleprobeError` on the first bad one."""
    from src.features.backbones import create_backbone_spec
    from src.features.controls import control_kinds

    for rule in RULES.values():
        if rule.when is None or rule.when(cfg):
            rule.check(_value(cfg, rule.key))
    create_backbone_spec(cfg.backbone)  # every other backbone key, one line per mistake
    control_kinds(cfg)  # a list of names: one line for an unknown one
    if cfg.data.name in _LAYOUTS:
        root = Path(_value(cfg, "data.root"))
        if not root.is_dir():
            layout = _LAYOUTS[cfg.data.name]
            raise ScaleprobeError(
                f"data.root={str(root)!r} is not a directory; point it at {layout}"
            )
    if cfg.data.name == "coco":
        _check_coco(cfg)
    if _scale(cfg) and _value(cfg, "target.area") == "mask" and cfg.data.name != "coco":
        raise ScaleprobeError(
            f"target.area=mask needs object masks and data={cfg.data.name} has none "
            "(only data=coco carries segmentations); use target.area=box"
        )
    if _synthetic(cfg):
        from src.data.synthetic import SYNTHETIC_CLASSES

        for key in ("pair.train_class", "pair.test_class"):
            if _value(cfg, key) not in SYNTHETIC_CLASSES:
                raise ScaleprobeError(
                    f"{key}={_value(cfg, key)!r} is not a class of the synthetic set; "
                    f"choose from {list(SYNTHETIC_CLASSES)}"
                )


def _check_coco(cfg: DictConfig) -> None:
    """Check what COCO reads up front: the instances file and classes (names or category ids)."""
    annotations = Path(_value(cfg, "data.annotations"))
    if not annotations.is_file():
        raise ScaleprobeError(
            f"data.annotations={str(annotations)!r} is not a file; point it at a COCO "
            "instances_*.json"
        )
    for key in ("pair.train_class", "pair.test_class"):
        value = _value(cfg, key)
        category_id = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        if not category_id and (not isinstance(value, str) or not value):
            raise ScaleprobeError(
                f"{key}={value!r} is not allowed; expected a COCO category name or id "
                "(pair.train_class=bird, pair.train_class=16)"
            )


def group_options(group: str) -> list[str]:
    """Return the options of a ``conf/`` group: its YAML files' names, sorted."""
    return sorted(p.stem for p in (_CONF_DIR / group).glob("*.yaml"))


def check_group_overrides(overrides: Sequence[str]) -> None:
    """Refuse a command-line ``group=option`` whose option is not in ``conf/<group>``.

    Hydra reports it as a many-line listing; this says it in one line, before
    Hydra composes. Sweeps (``probe=lasso,ridge``) are checked item by item;
    Hydra's sweep functions (``glob(...)``) and a ``hydra.searchpath`` (which
    can add options from elsewhere) are left to Hydra.

    Raises
    ------
    ScaleprobeError
        Naming the group, the bad option and the group's options.

    Examples
    --------
    >>> check_group_overrides(["probe=lasso,ridge", "n_splits=3", "controls=[]"])
    >>> check_group_overrides(["probe=lasso,rigde"])
    Traceback (most recent call last):
    ...
    src.errors.ScaleprobeError: probe='rigde' is not an option of conf/probe; choose from [...]
    """
    if any(o.lstrip("+").startswith("hydra.searchpath") for o in overrides):
        return
    for override in overrides:
        key, sep, value = override.partition("=")
        # hydra/ groups also hold plugins' options (hydra/launcher=joblib): Hydra checks those
        if not sep or "(" in value or key.startswith("hydra/") or not (_CONF_DIR / key).is_dir():
            continue
        allowed = group_options(key)
        if value.strip() == "[]":  # no option of the group (controls=[]: none)
            continue
        for item in (v.strip() for v in value.split(",")):
            if item not in allowed and item != "null":
                raise ScaleprobeError(
                    f"{key}={item!r} is not an option of conf/{key}; choose from {allowed}"
                )
