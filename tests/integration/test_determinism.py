"""Determinism through ``run(cfg)``: same config, same metrics; another seed, other splits."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import open_dict

from src.job import run
from src.probes.splits import make_splits


def _splits(cfg):
    return make_splits(
        cfg.data.n_per_class,
        cfg.data.n_per_class,
        n_train=cfg.n_train,
        n_test=cfg.n_test,
        n_splits=cfg.n_splits,
        seed=cfg.seed,
        same_class=True,
        train_class=cfg.pair.train_class,
        test_class=cfg.pair.test_class,
    )


def _as_array(splits):
    return np.array([np.concatenate([split.train, split.test]) for split in splits])


@pytest.fixture
def cfg(cfg_tiny):
    """The tiny config without Hydra's node (its sweep paths need a running Hydra job)."""
    with open_dict(cfg_tiny):
        del cfg_tiny["hydra"]
    return cfg_tiny


def test_same_config_twice_gives_identical_metrics(cfg):
    first = run(cfg)
    second = run(cfg)
    assert first.keys() == second.keys()
    for name, value in first.items():
        assert np.array_equal(value, second[name], equal_nan=True), name


def test_another_seed_gives_other_splits_and_metrics(cfg):
    first = run(cfg)
    splits = _as_array(_splits(cfg))
    with open_dict(cfg):
        cfg.seed = 1
    other = run(cfg)
    assert not np.array_equal(splits, _as_array(_splits(cfg)))
    assert first["r2_test"] != other["r2_test"]
    assert first["r2_train"] != other["r2_train"]
