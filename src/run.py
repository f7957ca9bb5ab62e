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
from omegaconf import DictConfig, OmegaConf

from src.config import validate_config
from src.data.sources import load_class_records
from src.errors import ScaleprobeError, exit_on_user_error
from src.features.checksums import sha256_file
from src.features.classes import class_features_from_config
from src.features.extract import key_params
from src.probes._validation import check_alphas, check_count
from src.probes.memo import ProbeMemo
from src.probes.metrics import summarize
from src.probes.protocol import METRIC_NAMES, PairResult, evaluate_pair
from src.probes.splits import make_splits
from src.tracking.callbacks import PARENT_RUN_ENV
from src.tracking.mlflow_runs import (
    check_reachable,
    create_parent_run,
    end_run,
    log_child_run,
    tracking_target,
)

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


def _plain(value: Any) -> Any:
    """Return a config node as plain Python (lists stay lists), anything else unchanged."""
    return OmegaConf.to_object(value) if OmegaConf.is_config(value) else value


def _path_json(path: list[PairResult]) -> str:
    """Serialize the alpha path: per-split values of every metric at every alpha (Fig. 4-5)."""
    return json.dumps(
        {
            "alphas": [r.alpha for r in path],
            "metrics": {
                name: [values.tolist() for values in (r.metrics()[name] for r in path)]
                for name in METRIC_NAMES
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
            "angle_deg": result.angle_deg_null.tolist(),
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
    train_class, test_class = cfg.pair.train_class, cfg.pair.test_class
    records = load_class_records(
        OmegaConf.to_container(cfg.data, resolve=True), [train_class, test_class]
    )
    # Split sizes are checked against the class sizes before any extraction.
    make_splits(
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
    features, keys, weights, fields = class_features_from_config(cfg, records)

    def ratios(class_id: str) -> np.ndarray:
        return np.array([r.ratio for r in records[class_id]])

    alpha = float(cfg.alpha)
    path_alphas = check_alphas(_plain(cfg.path_alphas), "path_alphas")
    probe_args = {
        "same_class": train_class == test_class,
        "n_splits": cfg.n_splits,
        "n_train": cfg.n_train,
        "n_test": cfg.n_test,
        "seed": cfg.seed,
        "n_permutations": check_count(cfg.n_permutations, "n_permutations"),
        "memo": _MEMO,
        "train_class": train_class,
        "test_class": test_class,
    }
    data = (features[train_class], ratios(train_class), features[test_class], ratios(test_class))
    # Every job of a pair evaluates the same path (memoized: computed by the
    # first job, reused by the others); an alpha on the path costs nothing more.
    path = evaluate_pair(*data, alphas=path_alphas, **probe_args)
    on_path = [r for r in path if r.alpha == alpha]
    result = on_path[0] if on_path else evaluate_pair(*data, alphas=[alpha], **probe_args)[0]
    summary = _summary(result)
    params = {
        "backbone": cfg.backbone.name,
        "layer": cfg.layer.name,
        "pair": cfg.pair.name,
        "train_class": train_class,
        "test_class": test_class,
        "alpha": float(cfg.alpha),
        "seed": cfg.seed,
        "n_splits": cfg.n_splits,
        "n_train": cfg.n_train,
        "n_test": cfg.n_test,
        "weights": weights.label,
        "feature_dim": features[train_class].shape[1],
        "cache_key": ",".join(dict.fromkeys(keys[c] for c in (train_class, test_class))),
        "data": cfg.data.name,
        "n_permutations": cfg.n_permutations,
        # How the features were made, as in their cache key (effective values).
        **key_params(fields),
    }
    own_parent = parent_run_id is None
    if own_parent:
        parent_run_id = create_parent_run(target, "run", tags=_provenance())
    log_child_run(
        target,
        parent_run_id,
        f"{cfg.pair.name} alpha={cfg.alpha}",
        params=params,
        per_split=result.metrics(),
        scalars={k: v for k, v in summary.items() if k.endswith(("_std", "_ci95", "_pvalue"))},
        arrays={"coef": result.coef, "coef_test": result.coef_test},
        tags={**_provenance(), "scaleprobe.weights_sha256": weights.sha256},
        texts={
            "config.yaml": OmegaConf.to_yaml(cfg, resolve=True),
            "path.json": _path_json(path),
            "null.json": _null_json(result),
        },
    )
    if own_parent:
        end_run(target, parent_run_id)
    logger.info(
        "%s alpha=%s: r2_test=%.3f±%.3f (p=%.3f) nnz=%.0f angle_deg=%.1f (p=%.3f); shuffled "
        "r2_test=%.3f, angle_deg=%.1f",
        cfg.pair.name,
        cfg.alpha,
        summary["r2_test"],
        summary["r2_test_std"],
        summary["r2_test_pvalue"],
        summary["nnz"],
        summary["angle_deg"],
        summary["angle_deg_pvalue"],
        summary["r2_test_shuffled"],
        summary["angle_deg_shuffled"],
    )
    return summary


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Hydra entry: run the job, turning a user mistake into one line and exit code 1."""
    parent_run_id = os.environ.get(PARENT_RUN_ENV)
    with exit_on_user_error():
        try:
            return run(cfg, parent_run_id=parent_run_id)["r2_test"]
        except ScaleprobeError as error:
            if parent_run_id is not None:
                end_run(tracking_target(cfg.tracking), parent_run_id, "FAILED", error=str(error))
            raise


if __name__ == "__main__":
    main()
