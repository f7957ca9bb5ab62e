"""Throwaway git + DVC copies of the project, for the pipeline and team tests.

A test repository is built from the files the pipeline needs (copied from this
checkout into a fresh ``git init``), never by cloning the checkout itself, whose
working tree may hold other people's uncommitted changes. Clones of it stand for
team members' machines; each gets the same ``conf/local/default.yaml`` (tiny data,
quiet extraction), which is git-ignored by design, like a real machine-local file.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from tiny_run import TINY as BASE_TINY

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

# What a fresh clone of the project holds that the pipeline reads.
PROJECT_FILES = (
    "conf",
    "src",
    "hydra_plugins",
    "dvc.yaml",
    "params.yaml",
    "pyproject.toml",
    ".dvc/config",
    ".dvc/.gitignore",
    ".dvcignore",
    ".gitignore",
)
# The pipeline's parameters at test size: one pair, two alphas, 3 splits.
TINY_PARAMS = {
    "data": "synthetic",
    "pair": "albatross_kite",
    "backbone": "inception_v3",
    "weights": "random",
    "layer": "mixed8",
    "alpha": "0,0.01",
    "seed": 0,
    "n_splits": 3,
    "n_train": 8,
    "n_test": 6,
    "tracking": "local",
    "target": "scale",
    "target_args": "",
}
# Machine-local settings every clone gets (conf/local is git-ignored).
TINY_LOCAL = """\
# @package _global_
data:
  n_per_class: 16
extract:
  progress: false
  batch_size: 8
n_permutations: 2
path_alphas: [0, 0.001, 0.01]
"""
# The same, as overrides of `python -m src.run` (tests/integration/test_end_to_end.py).
TINY = [*BASE_TINY, "n_permutations=2", "path_alphas=[0,0.001,0.01]"]
# True once `python -m src.report` exists; until then the pipeline tests stop at probes.
HAS_REPORT = (REPO / "src" / "report" / "__main__.py").is_file()
TARGETS: list[str] = [] if HAS_REPORT else ["probes"]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tool_env(cwd: Path, **extra: str) -> dict[str, str]:
    """Environment for the tool, DVC and git run from ``cwd`` (a test clone)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "SCALEPROBE_", "DVC_"))
    }
    env.update(
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(cwd),
        DVC_NO_ANALYTICS="1",
        DVC_SITE_CACHE_DIR=str(cwd.parent / ".dvc-site-cache"),
        GIT_AUTHOR_NAME="scaleprobe tests",
        GIT_AUTHOR_EMAIL="tests@scaleprobe.invalid",
        GIT_COMMITTER_NAME="scaleprobe tests",
        GIT_COMMITTER_EMAIL="tests@scaleprobe.invalid",
    )
    env.update(extra)
    return env


def sh(cwd: Path, *args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run ``args`` in ``cwd`` with :func:`tool_env`; never raises on a non-zero exit."""
    return subprocess.run(
        list(args),
        cwd=cwd,
        env=tool_env(cwd, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    """Assert ``result`` succeeded; return its stdout and stderr together."""
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"{result.args} exited {result.returncode}:\n{log[-4000:]}"
    return log


def dvc(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run DVC of this venv in ``cwd``."""
    return sh(cwd, sys.executable, "-m", "dvc", *args, **env)


def git(cwd: Path, *args: str) -> str:
    """Run git in ``cwd``; return stdout (asserting success)."""
    return ok(sh(cwd, "git", *args, timeout=60))


def python(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run this venv's Python in ``cwd`` (``-m src.run ...``, ``-c ...``)."""
    return sh(cwd, sys.executable, *args, **env)


def write_params(repo: Path, **changes: object) -> None:
    """Write ``params.yaml`` of ``repo``: the tiny defaults with ``changes``."""
    params = {**TINY_PARAMS, **changes}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def make_origin(dest: Path) -> Path:
    """Build a git repository holding the project's pipeline files at test size."""
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "local")
    for name in PROJECT_FILES:
        source = REPO / name
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
    write_params(dest)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "scaleprobe pipeline (test copy)")
    return dest


def clone(origin: Path, dest: Path) -> Path:
    """Clone ``origin`` to ``dest`` and add the machine-local tiny settings."""
    git(origin.parent, "clone", "-q", str(origin), str(dest))
    local = dest / "conf" / "local"
    local.mkdir(parents=True, exist_ok=True)
    (local / "default.yaml").write_text(TINY_LOCAL)
    return dest


def entries(repo: Path) -> list[str]:
    """Names of the complete feature-cache entries of ``repo``."""
    cache = repo / "cache" / "features"
    return (
        sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))
        if cache.exists()
        else []
    )
