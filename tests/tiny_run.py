"""The tiny run every integration test uses, and the entry point run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import DictConfig, open_dict

import src.job
from src.errors import ScaleprobeError

REPO = Path(__file__).resolve().parents[1]

# 3 synthetic classes x 16 images, 3 splits, random weights: seconds, not minutes.
TINY = [
    "backbone.weights=random",
    "data.n_per_class=16",
    "n_train=8",
    "n_test=6",
    "n_splits=3",
    "extract.progress=false",
    "extract.batch_size=8",
]


def run_tool(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m src.run`` from ``cwd`` (its data, cache and mlruns land there)."""
    return subprocess.run(
        [sys.executable, "-m", "src.run", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def cached_entries(cache_dir: Path) -> list[str]:
    """Entries and partial entries left in a feature cache (lock files do not count)."""
    if not cache_dir.exists():
        return []
    return sorted(
        str(p.relative_to(cache_dir))
        for p in cache_dir.rglob("*")
        if p.name == "features.npy" or p.name.startswith(".partial-")
    )


def assert_one_line_and_nothing_cached(
    cfg: DictConfig, shared_dirs: dict[str, Path], tmp_path: Path, message: str
) -> None:
    """Run ``cfg`` with its own cache; it must stop with one line matching ``message``."""
    with open_dict(cfg):
        cfg.paths.data_dir = str(shared_dirs["data"])
        cfg.paths.cache_dir = str(tmp_path / "cache")
        cfg.paths.mlruns_dir = str(tmp_path / "mlruns")
    with pytest.raises(ScaleprobeError, match=message) as info:
        src.job.run(cfg)
    assert "\n" not in str(info.value)
    assert cached_entries(tmp_path / "cache") == []
