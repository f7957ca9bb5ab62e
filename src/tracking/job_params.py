"""A job's MLflow params, derived from its composed config (no hand-kept list).

Each config group that chooses a component (``backbone``, ``layer``, ``pair``,
``target``, ``probe``) is flattened: its ``name`` becomes the param named after
the group (``backbone=inception_v3``), every other leaf ``<group>.<key>``
(``backbone.input_size=299``), except the keys the README documents bare
(``train_class``, ``test_class``), and the machine paths a group copies from
``data`` (``target.root``, which is ``data.root``). ``data`` contributes its
``name`` only (its other keys are machine paths), the top level ``alpha``,
``seed`` and every ``n_*``. So every target logs ``target`` and its settings
(``target.axis``; ``target.path`` as given, ``target.column``,
``target.id_column``, ``target.on_missing``). So a key added to a group's YAML
is logged without editing this file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, OmegaConf

__all__ = ["BARE_KEYS", "GROUPS", "MACHINE_KEYS", "job_params"]

#: The config groups whose every leaf is a param.
GROUPS = ("backbone", "layer", "pair", "target", "probe")
#: Leaves logged under their own name rather than ``<group>.<key>``.
BARE_KEYS = {"pair": ("train_class", "test_class")}
#: Leaves not logged: ``data.root`` under another name (a machine path; ``data`` logs
#: its name only, and a relative ``target.path`` is read under it).
MACHINE_KEYS = {"target": ("root",)}


def _text(value: Any) -> Any:
    """Return a param value: scalars as they are, lists and mappings as JSON."""
    return json.dumps(value) if isinstance(value, list | dict) else value


def _leaves(prefix: str, node: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in node.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(f"{prefix}.{key}", value))
        else:
            out[f"{prefix}.{key}"] = _text(value)
    return out


def _typed(key: str, value: Any) -> Any:
    """Return ``value`` in the type the constraint table gives ``key`` (``alpha=0`` -> 0.0)."""
    from src.config import RULES

    rule = RULES.get(key)
    if rule is not None and rule.kind == "number" and not isinstance(value, bool):
        return float(value)
    return value


def job_params(cfg: DictConfig, **computed: Any) -> dict[str, Any]:
    """Return the params of the job ``cfg`` describes, plus ``computed`` ones.

    Parameters
    ----------
    cfg : DictConfig
        The job's composed config.
    **computed
        Values the config does not hold (``weights`` label, ``feature_dim``,
        ``cache_key``); they win over a flattened name.

    Returns
    -------
    dict of str to object
        Param name to value (logged as ``str(value)``).

    Examples
    --------
    >>> cfg = OmegaConf.create({"alpha": 0, "seed": 1, "n_splits": 3, "data": {"name": "voc",
    ...     "root": "/d"}, "pair": {"name": "p", "train_class": "a", "test_class": "b"}})
    >>> job_params(cfg, feature_dim=8)
    {'pair': 'p', 'train_class': 'a', 'test_class': 'b', 'data': 'voc', 'alpha': 0.0, \
'seed': 1, 'n_splits': 3, 'feature_dim': 8}
    """
    params: dict[str, Any] = {}
    for group in GROUPS:
        node = cfg.get(group)
        if not OmegaConf.is_dict(node):
            continue
        values = OmegaConf.to_container(node, resolve=True)
        bare = BARE_KEYS.get(group, ())
        for key, value in values.items():
            if key in MACHINE_KEYS.get(group, ()):
                continue
            if key == "name":
                params[group] = value
            elif key in bare:
                params[key] = _text(value)
            elif isinstance(value, dict) and value:
                params.update(_leaves(f"{group}.{key}", value))
            else:
                params[f"{group}.{key}"] = _text(value)
    if OmegaConf.is_dict(cfg.get("data")):
        params["data"] = cfg.data.name
    for key in cfg:
        if key in ("alpha", "seed") or str(key).startswith("n_"):
            params[str(key)] = _typed(str(key), _text(_plain(cfg[key])))
    params.update(computed)
    return params


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
