"""The DVC pipeline's parameter file: what ``params.yaml`` may hold, checked up front.

``dvc.yaml``'s stages pass these values to Hydra as overrides (``alpha=${alpha}``),
and DVC silently ignores a key no stage reads, so a typo such as ``alpah: 0.1``
would leave the grid unchanged and ``dvc repro`` would report "up to date". The
first stage, ``params``, runs ``python -m src.check_params params.yaml --stamp
results/params.ok`` whenever ``params.yaml`` changes: it rejects unknown keys and
bad values with one line before any other stage starts (so no output is deleted
or rebuilt), and with ``tracking: server`` it checks that the server answers. The
stamp's content never changes, so rerunning the check reruns nothing else.
"""

from __future__ import annotations

import argparse
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from src.config import RULES, group_options
from src.errors import ScaleprobeError, exit_on_user_error

__all__ = ["PARAMS", "check_params", "load_params", "main"]

logger = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
# The module's old name stays in the stamp: new bytes would rerun every stage after it.
STAMP_TEXT = "params.yaml passed src.pipeline's checks\n"

# A check takes the key and its value and raises ScaleprobeError when the value is bad.
Check = Callable[[str, Any], None]


def _items(value: Any) -> list[str]:
    """Split a Hydra sweep value (``a,b,c`` or a single value) into its items."""
    return [item.strip() for item in str(value).split(",")]


def _option(group: str, *, sweep: bool = False, exclude: Sequence[str] = ()) -> Check:
    def check(key: str, value: Any) -> None:
        allowed = [o for o in group_options(group) if o not in exclude]
        items = _items(value) if sweep else [value]
        for item in items:
            if not isinstance(item, str) or item not in allowed:
                bad = f"{key}={value!r}: {item!r}" if sweep else f"{key}={value!r}"
                raise ScaleprobeError(
                    f"params.yaml: {bad} is not an option of conf/{group}; choose from {allowed}"
                    + (" (comma-separated for a sweep)" if sweep else "")
                )

    return check


def _integer(name: str) -> Check:
    """Check an integer key against the range src/config.py's table gives it."""

    def check(key: str, value: Any) -> None:
        minimum = int(RULES[name].minimum or 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ScaleprobeError(
                f"params.yaml: {key}={value!r} is not allowed; expected an integer >= {minimum}"
            )

    return check


def _alphas(key: str, value: Any) -> None:
    minimum = RULES["alpha"].minimum or 0.0
    for item in _items(value):
        try:
            number = float(item)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < minimum:
            raise ScaleprobeError(
                f"params.yaml: {key}={value!r}: {item!r} is not allowed; expected numbers >= 0, "
                "comma-separated for a grid (e.g. 0,0.001,0.01)"
            )


def _target_args(target: str, value: Any) -> None:
    """Check ``target_args``: ``target.<key>=<value>`` items of the chosen target's YAML.

    A key its YAML lacks would make Hydra fail in the probes stage, after the
    features; a required key left out (``???``, csv's path and column) too.
    """
    from omegaconf import OmegaConf

    node = OmegaConf.load(CONF_DIR / "target" / f"{target}.yaml")
    keys = [k for k in node if k not in ("_target_", "name", "root")]
    given: dict[str, str] = {}
    for item in value.split():
        key, equals, text = item.partition("=")
        leaf = key.removeprefix("target.")
        if not key.startswith("target.") or not equals or not text or leaf not in keys:
            raise ScaleprobeError(
                f"params.yaml: target_args item {item!r} is not allowed for target={target}; "
                f"expected target.<key>=<value> with a key of conf/target/{target}.yaml: {keys}"
            )
        rule = RULES.get(key)
        if rule is not None and rule.kind == "choice":
            try:
                rule.check(text)
            except ScaleprobeError as error:
                raise ScaleprobeError(f"params.yaml: target_args: {error}") from None
        given[leaf] = text
    missing = [k for k in keys if OmegaConf.is_missing(node, k) and k not in given]
    if missing:
        raise ScaleprobeError(
            f"params.yaml: target={target} needs target.{missing[0]}=<value> in target_args"
        )


def _overrides(key: str, value: Any) -> None:
    if not isinstance(value, str):
        raise ScaleprobeError(
            f"params.yaml: {key}={value!r} is not allowed; expected a string of space-separated "
            'overrides, e.g. "target.axis=y" ("" for none)'
        )


def _name(key: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip() or any(c in value for c in " ,="):
        raise ScaleprobeError(
            f"params.yaml: {key}={value!r} is not allowed; expected one name, e.g. random"
        )


#: Every key ``params.yaml`` may hold, with its check. The keys are the names the
#: code, conf/ and MLflow share; group-valued keys take an option of that group;
#: ranges come from src/config.py's ``RULES`` (the one table of config constraints).
PARAMS: dict[str, Check] = {
    "data": _option("data"),
    "backbone": _option("backbone"),
    "weights": _name,
    "layer": _option("layer"),
    "pair": _option("pair", sweep=True, exclude=("custom",)),
    "alpha": _alphas,
    "seed": _integer("seed"),
    "n_splits": _integer("n_splits"),
    "n_train": _integer("n_train"),
    "n_test": _integer("n_test"),
    "tracking": _option("tracking"),
    "target": _option("target"),
    "target_args": _overrides,  # and its items against the target's YAML (check_params)
}


def check_params(params: Mapping[str, Any]) -> None:
    """Raise :class:`ScaleprobeError` on the first unknown, missing or bad key.

    Examples
    --------
    >>> check_params({"alpah": 0.1})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    src.errors.ScaleprobeError: params.yaml: unknown key 'alpah'; allowed keys: [...]
    """
    unknown = [key for key in params if key not in PARAMS]
    if unknown:
        raise ScaleprobeError(
            f"params.yaml: unknown key {unknown[0]!r}; allowed keys: {list(PARAMS)}"
        )
    missing = [key for key in PARAMS if key not in params]
    if missing:
        raise ScaleprobeError(f"params.yaml: key {missing[0]!r} is missing; add it")
    for key, check in PARAMS.items():
        check(key, params[key])
    _target_args(params["target"], params["target_args"])


def load_params(path: str | Path) -> dict[str, Any]:
    """Read and check a parameter file; return its mapping."""
    import yaml

    try:
        params = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise ScaleprobeError(f"{path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ScaleprobeError(f"{path}: not valid YAML{where}") from None
    if not isinstance(params, dict):
        raise ScaleprobeError(f"{path}: expected a mapping of keys to values")
    check_params(params)
    return params


def _check_tracking(params: Mapping[str, Any]) -> None:
    """With a tracking server, fail now rather than after features are extracted."""
    from omegaconf import OmegaConf

    from src.tracking.store import check_reachable, tracking_target

    if params["tracking"] == "local":
        return
    node = OmegaConf.load(CONF_DIR / "tracking" / f"{params['tracking']}.yaml")
    node = OmegaConf.merge({"paths": OmegaConf.load(CONF_DIR / "paths" / "default.yaml")}, node)
    target = tracking_target(OmegaConf.to_container(node, resolve=True))
    check_reachable(target)


def main(argv: Sequence[str] | None = None) -> int:
    """Check a parameter file (and the tracking server it names); write the stamp."""
    parser = argparse.ArgumentParser(prog="python -m src.check_params", description=__doc__)
    parser.add_argument("params", nargs="?", default="params.yaml")
    parser.add_argument("--stamp", help="file to write when the checks pass (a DVC output)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with exit_on_user_error():
        params = load_params(args.params)
        _check_tracking(params)
    if args.stamp:
        stamp = Path(args.stamp)
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(STAMP_TEXT, encoding="utf-8")
    logger.info("%s: %d parameters ok", args.params, len(params))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
