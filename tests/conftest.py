"""Shared fixtures: composed configs on tmp paths, one tiny synthetic set per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict
from tiny_run import TINY

# The tiny default every test job uses: 3 classes x 16 images, 3 splits.


def _compose(overrides: list[str] | None = None) -> DictConfig:
    """Compose conf/config.yaml the way `python -m src.run` does (hydra node included)."""
    GlobalHydra.instance().clear()
    with initialize(version_base="1.3", config_path="../conf"):
        return compose("config", overrides=overrides or [], return_hydra_config=True)


@pytest.fixture
def compose_config():
    """The composer, as a fixture (tests compose with their own overrides)."""
    yield _compose
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def shared_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Data and feature-cache dirs shared by the session (the synthetic set is made once)."""
    root = tmp_path_factory.mktemp("shared")
    return {"data": root / "data", "cache": root / "cache"}


@pytest.fixture
def cfg_tiny(tmp_path: Path, shared_dirs: dict[str, Path]) -> DictConfig:
    """A tiny config whose MLflow store is this test's own."""
    cfg = _compose(TINY)
    with open_dict(cfg):
        cfg.paths.data_dir = str(shared_dirs["data"])
        cfg.paths.cache_dir = str(shared_dirs["cache"])
        cfg.paths.mlruns_dir = str(tmp_path / "mlruns")
    yield cfg
    GlobalHydra.instance().clear()
