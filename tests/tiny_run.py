"""The tiny run every integration test uses, and the entry point run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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
