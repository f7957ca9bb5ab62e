"""Benchmark: a 10-alpha sweep against a single-alpha run, both on a warm feature cache.

Runs ``python -m src.run`` as a user does, in a scratch directory (data, cache
and MLflow store land there): one untimed run to generate the data and fill
the cache, then a timed single-alpha run and a timed ``-m alpha=<10 values>``
sweep. ratio = sweep wall time / single wall time. With ``--launcher basic``
the jobs share one process (the in-process memo); with ``--launcher joblib``
they run in 2 worker processes and share fits through the on-disk memo
(``paths.memo_dir``), which is emptied before each timed run so both start
with no fit made. Both timed runs must extract nothing; the summary says how
many times they did. The same sweep is timed once more without the controls
(``controls.kinds=[]``: no random-weights or pixel probes; the command line
rejects ``controls=[]``): controls_ratio = sweep with controls / sweep without
(issue 16 asks <= 1.5); the warm-up filled the controls' feature cache too, so
both are warm.

It also times the features side of one job in-process (hashing the images,
finding and checksumming the cache entries), the cost every job of a sweep
pays again, so the ratio can be read against it.

The last line printed is one JSON object with the figures.
Usage: ``uv run python bench/sweep.py [--alphas 10] [--launcher basic|joblib] [-- overrides]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]


def run_tool(cwd: Path, *args: str) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "src.run", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    log = result.stdout + result.stderr
    if result.returncode != 0:
        raise SystemExit(f"src.run {' '.join(args)} failed:\n{log[-3000:]}")
    return seconds, log


def features_side_seconds(work: Path, overrides: list[str], repeats: int = 5) -> float:
    """Median seconds of ``class_features_from_config`` for a warm cache, in one process."""
    from hydra import compose, initialize_config_dir
    from omegaconf import open_dict

    from src.data.sources import load_class_records
    from src.features.classes import class_features_from_config

    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose("config", overrides=overrides)
    with open_dict(cfg):
        for key in ("data_dir", "cache_dir", "mlruns_dir"):
            cfg.paths[key] = str(work / cfg.paths[key])
    from omegaconf import OmegaConf

    classes = [cfg.pair.train_class, cfg.pair.test_class]
    records = load_class_records(OmegaConf.to_container(cfg.data, resolve=True), classes)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        class_features_from_config(cfg, dict(records))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alphas", type=int, default=10)
    parser.add_argument("--launcher", choices=["basic", "joblib"], default="basic")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = parser.parse_args()
    launcher = (
        [] if args.launcher == "basic" else ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    )
    if args.alphas < 1:
        parser.error(f"--alphas {args.alphas}: sweep at least 1 alpha")
    overrides = ["extract.progress=false", *args.overrides]
    # Alphas a user sweeps: spread over the configured grid (conf/config.yaml path_alphas),
    # whose whole path each job fits once and shares.
    grid = list(OmegaConf.load(REPO / "conf" / "config.yaml").path_alphas)
    picks = np.unique(np.linspace(0, len(grid) - 1, args.alphas).round().astype(int))
    alphas = ",".join(f"{float(grid[int(i)]):g}" for i in picks)
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        work = Path(tmp)
        warm_s, _ = run_tool(work, "alpha=0.001", *overrides)
        print(f"warm-up (data + extraction): {warm_s:.1f} s")
        memo = work / "cache" / "probes"  # paths.memo_dir: no fit carried into a timed run
        shutil.rmtree(memo, ignore_errors=True)
        single_s, single_log = run_tool(work, "alpha=0.001", *overrides)
        print(f"single alpha: {single_s:.1f} s")
        shutil.rmtree(memo, ignore_errors=True)
        sweep_s, sweep_log = run_tool(work, "-m", *launcher, f"alpha={alphas}", *overrides)
        print(f"sweep of {args.alphas} alphas: {sweep_s:.1f} s")
        shutil.rmtree(memo, ignore_errors=True)
        bare_s, bare_log = run_tool(
            work, "-m", *launcher, f"alpha={alphas}", *overrides, "controls.kinds=[]"
        )
        print(f"the same sweep without controls: {bare_s:.1f} s")
        features_s = features_side_seconds(work, ["alpha=0.001", *overrides])
        print(f"features side of one job (warm cache, in-process): {features_s:.3f} s")
    load = os.getloadavg()
    print(
        json.dumps(
            {
                "n_alphas": args.alphas,
                "launcher": args.launcher,
                "warmup_s": round(warm_s, 2),
                "single_s": round(single_s, 2),
                "sweep_s": round(sweep_s, 2),
                "ratio": round(sweep_s / single_s, 3),
                "sweep_no_controls_s": round(bare_s, 2),
                "controls_ratio": round(sweep_s / bare_s, 3),
                "features_side_s_per_job": round(features_s, 3),
                "extractions_in_timed_runs": (single_log + sweep_log + bare_log).count(
                    "extracting "
                ),
                "overrides": overrides,
                "loadavg_1m_at_end": round(load[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
