"""Log one probe job to MLflow: its summary, per-split histories, arrays and provenance.

What a job logs is decided here, once, from the protocol's result: the mean,
std and 95% CI of every per-split metric, the permutation p-values, the probe's
grid (``path.json``, the report's Fig. 4-5), the null (``null.json``), the
coefficients where the probe is linear, the resolved config, and the code's
provenance (git commit, lockfile hash, weights sha256).
"""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from src.features.checksums import sha256_file
from src.probes.metrics import summarize
from src.probes.protocol import PairResult
from src.probes.stability import StableMaps
from src.tracking.log import JOB_NUM_TAG, create_parent_run, end_run, log_child_run
from src.tracking.store import TrackingTarget

__all__ = ["log_job", "provenance", "result_summary"]

logger = logging.getLogger(__name__)


def provenance() -> dict[str, str]:
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


def result_summary(
    result: PairResult, extra: Mapping[str, np.ndarray] | None = None
) -> dict[str, float]:
    """Mean, std and 95% CI half-width of every per-split metric, and the permutation p-values.

    ``extra`` holds further per-split metrics on the same splits (the controls').
    """
    out: dict[str, float] = {}
    for name, values in {**result.metrics(), **(extra or {})}.items():
        stats = summarize(values)
        out[name] = stats["mean"]
        out[f"{name}_std"] = stats["std"]
        out[f"{name}_ci95"] = stats["ci95"]
    out.update(result.pvalues())
    return out


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


def log_job(
    target: TrackingTarget,
    parent_run_id: str | None,
    cfg: DictConfig,
    result: PairResult,
    path: list[PairResult],
    *,
    params: Mapping[str, Any],
    weights_sha256: str,
    stable: StableMaps | None = None,
    extra: Mapping[str, np.ndarray] | None = None,
    files: Mapping[str, str | Path] | None = None,
    job_num: int | None = None,
) -> dict[str, float]:
    """Log the job as a child run of ``parent_run_id``; return its summary.

    ``stable`` (the Lasso's stable maps) adds the metric ``n_stable_maps`` and
    the artifact ``stability.json``. ``extra``: further per-split metrics on
    the job's splits (the controls', :mod:`src.probes.controls`), logged like
    the protocol's own. ``files``: further artifacts as they are (the stable
    maps' montage, ``stable_maps.png``). ``job_num``: the job's number in its
    sweep, tagged on the child.

    Without ``parent_run_id`` (a single run, not a sweep) the parent is
    created here, after all the work succeeded, so a failed run logs nothing.
    """
    summary = result_summary(result, extra)
    tags = provenance()
    own_parent = parent_run_id is None
    if own_parent:
        parent_run_id = create_parent_run(target, "run", tags=tags)
    log_child_run(
        target,
        parent_run_id,
        f"{cfg.pair.name} {result.param}={cfg.probe.value}",
        params=params,
        per_split={**result.metrics(), **(extra or {})},
        scalars={
            **{k: v for k, v in summary.items() if k.endswith(("_std", "_ci95", "_pvalue"))},
            **({"n_stable_maps": float(stable.stable.size)} if stable is not None else {}),
        },
        arrays={"coef": result.coef, "coef_test": result.coef_test} if result.linear else {},
        tags={
            **tags,
            "scaleprobe.weights_sha256": weights_sha256,
            **({JOB_NUM_TAG: str(job_num)} if job_num is not None else {}),
            # an iterative probe (the MLP) that hit its iteration limit says so on the run
            **(
                {"scaleprobe.unconverged_fits": str(result.n_unconverged)}
                if result.n_unconverged
                else {}
            ),
        },
        texts={
            "config.yaml": OmegaConf.to_yaml(cfg, resolve=True),
            "path.json": _path_json(path),
            "null.json": _null_json(result),
            **({"stability.json": stable.to_json()} if stable is not None else {}),
        },
        files=files,
    )
    if own_parent:
        end_run(target, parent_run_id)
    geometry = result.linear
    logger.info(
        "%s %s=%s: r2_test=%.3f±%.3f (p=%.3f) pearson_test=%.3f r2_test_centered=%.3f%s; "
        "shuffled r2_test=%.3f%s",
        cfg.pair.name,
        result.param,
        cfg.probe.value,
        summary["r2_test"],
        summary["r2_test_std"],
        summary["r2_test_pvalue"],
        summary["pearson_test"],
        summary["r2_test_centered"],
        " nnz={nnz:.0f} angle_deg={angle_deg:.1f} (p={angle_deg_pvalue:.3f})".format(**summary)
        if geometry
        else "",
        summary["r2_test_shuffled"],
        ", angle_deg={angle_deg_shuffled:.1f}".format(**summary) if geometry else "",
    )
    return summary
