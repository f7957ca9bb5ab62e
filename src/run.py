"""Entry point: ``python -m src.run`` composes conf/ and runs one probe job.

It only wires the stages: validate -> records -> features -> probes -> MLflow.
``run(cfg)`` works without ``@hydra.main`` (tests call it with a composed config).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.errors import InstantiationException
from omegaconf import DictConfig, OmegaConf
from sklearn.base import clone

from src.config import validate_config
from src.data.sources import load_records_with_counts, log_probed
from src.errors import RunInterrupted, ScaleprobeError, exit_on_user_error, stop_on_signals
from src.features.checksums import sha256_file
from src.features.classes import class_features_from_config
from src.features.extract import key_params
from src.probes.base import GridProbe
from src.probes.memo import ProbeMemo
from src.probes.metrics import summarize
from src.probes.protocol import PairResult, evaluate_pair
from src.probes.splits import check_split_sizes
from src.targets.build import build_target
from src.tracking.callbacks import PARENT_RUN_ENV
from src.tracking.job_params import job_params
from src.tracking.log import (
    check_store_present,
    create_parent_run,
    end_run,
    fail_parent,
    log_child_run,
)
from src.tracking.store import check_reachable, tracking_target

__all__ = ["main", "run"]

logger = logging.getLogger(__name__)

# Lives as long as the process: Hydra's basic launcher runs a sweep's jobs in
# one process, so each probe fit of a sweep is made once (src/probes/memo.py).
_MEMO = ProbeMemo()


def _provenance() -> dict[str, str]:
    """Git commit and lockfile hash, so a run says exactly what code made it."""
    tags = {}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 (git from PATH is intended)
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        tags["scaleprobe.git_commit"] = commit
    except (OSError, subprocess.SubprocessError):
        pass
    if Path("uv.lock").is_file():
        tags["scaleprobe.uv_lock_sha256"] = sha256_file("uv.lock")
    return tags


def _summary(result: PairResult) -> dict[str, float]:
    """Mean, std and 95% CI half-width of every per-split metric, and the permutation p-values."""
    out: dict[str, float] = {}
    for name, values in result.metrics().items():
        stats = summarize(values)
        out[name] = stats["mean"]
        out[f"{name}_std"] = stats["std"]
        out[f"{name}_ci95"] = stats["ci95"]
    out.update(result.pvalues())
    return out


def _build_probe(node: DictConfig) -> tuple[GridProbe, float]:
    """Build the ``probe`` group's probe; return it and this job's hyperparameter value.

    Every key of the node but ``name`` and ``value`` goes to the class named
    by ``_target_`` (its grid among them).
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
    value = node.value
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise ScaleprobeError(f"probe.value={value!r} is not a finite number")
    return probe, float(value)


def _plain(value: Any) -> Any:
    """Return a config node as plain Python (lists stay lists), anything else unchanged."""
    return OmegaConf.to_object(value) if OmegaConf.is_config(value) else value


def _path_json(path: list[PairResult]) -> str:
    """Serialize the probe's grid (for the Lasso: the alpha path, Fig. 4-5).

    Per-split values of every metric at every grid value, under ``alphas``
    whatever the hyperparameter (``param`` names it).
    """
    return json.dumps(
        {
            "alphas": [r.alpha for r in path],
            "param": path[0].param,
            "metrics": {
                name: [r.metrics()[name].tolist() for r in path] for name in path[0].metrics()
            },
        }
    )


def _null_json(result: PairResult) -> str:
    """Serialize the job's permutation null (splits x permutations) with its p-values."""
    return json.dumps(
        {
            "alpha": result.alpha,
            "n_permutations": result.r2_test_null.shape[1],
            "statistic": "mean over splits",
            "r2_test": result.r2_test_null.tolist(),
            **({"angle_deg": result.angle_deg_null.tolist()} if result.linear else {}),
            **result.pvalues(),
        }
    )


def run(cfg: DictConfig, parent_run_id: str | None = None) -> dict[str, float]:
    """Run one probe job and log it as a child MLflow run; return the mean metrics.

    Without ``parent_run_id`` (a single run, not a sweep) the parent is
    created here, after all the work succeeded, so a failed run logs nothing.
    """
    validate_config(cfg)
    target = tracking_target(cfg.tracking)
    check_reachable(target)
    if parent_run_id is not None:
        check_store_present(target, parent_run_id)
    train_class, test_class = cfg.pair.train_class, cfg.pair.test_class
    records, counts = load_records_with_counts(
        OmegaConf.to_container(cfg.data, resolve=True), [train_class, test_class]
    )
    # Split sizes are checked against the class sizes before any extraction.
    check_split_sizes(
        len(records[train_class]),
        len(records[test_class]),
        n_train=cfg.n_train,
        n_test=cfg.n_test,
        n_splits=cfg.n_splits,
        seed=cfg.seed,
        same_class=train_class == test_class,
        train_class=train_class,
        test_class=test_class,
    )
    regression_target = build_target(cfg.target)  # a bad target stops before extraction
    features, keys, weights, fields = class_features_from_config(cfg, records)
    log_probed(records, counts)

    def ratios(class_id: str) -> np.ndarray:
        return regression_target.values(records[class_id])

    probe, value = _build_probe(cfg.probe)
    param = probe.param_name
    probe_args = {
        "same_class": train_class == test_class,
        "n_splits": cfg.n_splits,
        "n_train": cfg.n_train,
        "n_test": cfg.n_test,
        "seed": cfg.seed,
        "n_permutations": cfg.n_permutations,
        "memo": _MEMO,
        "train_class": train_class,
        "test_class": test_class,
    }
    data = (features[train_class], ratios(train_class), features[test_class], ratios(test_class))
    # Every job of a pair evaluates the same grid (memoized: computed by the
    # first job, reused by the others); a value on the grid costs nothing more.
    path = evaluate_pair(*data, probe=probe, **probe_args)
    on_path = [r for r in path if r.alpha == value]
    if on_path:
        result = on_path[0]
    else:
        result = evaluate_pair(*data, probe=clone(probe).set_params(grid=[value]), **probe_args)[0]
    summary = _summary(result)
    params = job_params(
        cfg,
        weights=weights.label,
        feature_dim=features[train_class].shape[1],
        cache_key=",".join(dict.fromkeys(keys[c] for c in (train_class, test_class))),
        probe_param=param,
        **{param: value},
        # How the features were made, as in their cache key (effective values).
        **key_params(fields),
    )
    provenance = _provenance()
    own_parent = parent_run_id is None
    if own_parent:
        parent_run_id = create_parent_run(target, "run", tags=provenance)
    log_child_run(
        target,
        parent_run_id,
        f"{cfg.pair.name} {param}={cfg.probe.value}",
        params=params,
        per_split=result.metrics(),
        scalars={k: v for k, v in summary.items() if k.endswith(("_std", "_ci95", "_pvalue"))},
        arrays={"coef": result.coef, "coef_test": result.coef_test} if result.linear else {},
        tags={**provenance, "scaleprobe.weights_sha256": weights.sha256},
        texts={
            "config.yaml": OmegaConf.to_yaml(cfg, resolve=True),
            "path.json": _path_json(path),
            "null.json": _null_json(result),
        },
    )
    if own_parent:
        end_run(target, parent_run_id)
    logger.info(
        "%s %s=%s: r2_test=%.3f±%.3f (p=%.3f)%s; shuffled r2_test=%.3f%s",
        cfg.pair.name,
        param,
        cfg.probe.value,
        summary["r2_test"],
        summary["r2_test_std"],
        summary["r2_test_pvalue"],
        " nnz={nnz:.0f} angle_deg={angle_deg:.1f} (p={angle_deg_pvalue:.3f})".format(**summary)
        if result.linear
        else "",
        summary["r2_test_shuffled"],
        ", angle_deg={angle_deg_shuffled:.1f}".format(**summary) if result.linear else "",
    )
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Hydra entry: run the job; a user mistake is one line and exit code 1.

    SIGTERM / SIGINT stop the job (exit 143 / 130, a partial cache entry kept
    for the next run); a sweep's parent run is then marked KILLED. A single
    run creates its MLflow runs only at the end, so it has none to mark.
    """
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
    main()
