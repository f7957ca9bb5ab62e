import tracemalloc

import numpy as np
import pytest

from src.errors import ScaleprobeError
from src.probes import memory
from src.probes.memory import check_null_memory, null_memory_bytes
from src.probes.protocol import evaluate_pair

SIZES = dict(n_grid=22, n_splits=3, n_train=8, n_test=6, n_features=1280)


def test_estimate_grows_with_the_null():
    small = null_memory_bytes(**SIZES, n_permutations=30)
    big = null_memory_bytes(**SIZES, n_permutations=100_000_000)
    assert small < 2**24  # a default tiny run: a few MB
    # two fits of 1e8 targets x 22 alphas x 1281 floats alone
    assert big >= 8 * 2 * 100_000_001 * 22 * 1281
    assert big > 2**40


def test_check_refuses_over_the_limit_with_one_line():
    with pytest.raises(ScaleprobeError) as info:
        check_null_memory(**SIZES, n_permutations=1000, limit=2**20)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("n_permutations=1000 needs about ")
    assert "GiB is available" in message
    fits = int(message.rsplit("<= ", 1)[1])
    assert null_memory_bytes(**SIZES, n_permutations=fits) <= 2**20
    assert null_memory_bytes(**SIZES, n_permutations=fits + 1) > 2**20
    assert check_null_memory(**SIZES, n_permutations=fits, limit=2**20) <= 2**20


def test_available_memory_is_known_here():
    assert memory.available_memory() > 2**20


def test_evaluate_pair_refuses_a_huge_null_before_allocating():
    # #19.7d: n_permutations=100000000 made a 49 GiB allocation on the tiny run.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 64)), rng.uniform(0.2, 0.8, 16)
    args = dict(alphas=[0.0, 1e-3], same_class=True, n_splits=3, n_train=8, n_test=6, seed=0)
    tracemalloc.start()
    try:
        with pytest.raises(ScaleprobeError, match=r"^n_permutations=100000000 needs about"):
            evaluate_pair(X, y, X, y, n_permutations=100_000_000, **args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**24  # nothing the size of the null was allocated


def test_evaluate_pair_uses_the_available_memory(monkeypatch):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(16, 64)), rng.uniform(0.2, 0.8, 16)
    args = dict(alphas=[0.0, 1e-3], same_class=True, n_splits=3, n_train=8, n_test=6, seed=0)
    assert len(evaluate_pair(X, y, X, y, n_permutations=5, **args)) == 2
    monkeypatch.setattr(memory, "available_memory", lambda: 2**12)
    with pytest.raises(ScaleprobeError, match=r"^n_permutations=5 needs about .* available"):
        evaluate_pair(X, y, X, y, n_permutations=5, **args)
