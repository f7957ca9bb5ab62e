"""The on-disk memo of pair evaluations: exact reuse across processes, damage recomputed.

Its unit is one split of a pair (``n_splits=3`` here: three entries a pair).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading

import numpy as np
import pytest
from filelock import FileLock

from src.errors import ScaleprobeError
from src.probes.disk_memo import ResultStore
from src.probes.lasso import LassoPathProbe
from src.probes.protocol import evaluate_pair


def _data(seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(40, 12))
    y = X[:, 0] * 0.5 + rng.normal(scale=0.1, size=40)
    return X, y


def _evaluate(store: ResultStore | None):
    X, y = _data()
    return evaluate_pair(
        X, y, X, y, probe=LassoPathProbe(grid=[0.0, 0.01]), same_class=True,
        n_splits=3, n_train=20, n_test=10, seed=0, n_permutations=3, store=store,
    )  # fmt: skip


def _same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        for name, value in vars(x).items():
            other = getattr(y, name)
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, other)
                assert value.dtype == other.dtype
            else:
                assert value == other


def test_a_second_store_on_the_same_dir_reads_exactly_what_the_first_computed(tmp_path):
    first = ResultStore(tmp_path)
    computed = _evaluate(first)
    assert (first.hits, first.misses) == (0, 3)
    second = ResultStore(tmp_path)  # another process's view of the directory
    read = _evaluate(second)
    assert (second.hits, second.misses) == (3, 0)
    _same(read, computed)
    _same(read, _evaluate(None))
    files = sorted(p.suffix for p in tmp_path.rglob("*") if p.is_file())
    assert files == [".lock"] * 3 + [".npz"] * 3 + [".sha256"] * 3  # no temp file left


def test_a_damaged_entry_is_recomputed_with_a_warning_never_used(tmp_path, caplog):
    _evaluate(ResultStore(tmp_path))
    entry = sorted(tmp_path.rglob("*.npz"))[1]
    raw = bytearray(entry.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    entry.write_bytes(bytes(raw))
    store = ResultStore(tmp_path)
    with caplog.at_level(logging.WARNING):
        results = _evaluate(store)
    assert (store.hits, store.misses) == (2, 1)  # only the damaged split is refitted
    assert "is damaged (checksum does not match): recomputing it" in caplog.text
    _same(results, _evaluate(None))
    assert ResultStore(tmp_path)._read(entry.stem) is not None  # rewritten whole


def test_a_split_another_process_is_computing_is_waited_for_last(tmp_path):
    """Processes starting on one pair share its splits instead of queueing on it."""
    store = ResultStore(tmp_path)
    keys = ["aa0", "aa1", "aa2"]
    locked, finish = threading.Event(), threading.Event()

    def other_process() -> None:  # computes split 0, then dies without writing it
        with FileLock(store._paths("aa0")[2]):
            locked.set()
            finish.wait(30)

    holder = threading.Thread(target=other_process)
    holder.start()
    locked.wait(30)
    order: list[int] = []

    def compute(index: int) -> dict[str, np.ndarray]:
        order.append(index)
        if index == 2:
            finish.set()
        return {"value": np.full(2, float(index))}

    entries = store.get_or_compute_each(keys, compute)
    holder.join(30)
    assert order == [1, 2, 0]  # the free splits first, the held one once its lock came back
    assert [float(entry["value"][0]) for entry in entries] == [0.0, 1.0, 2.0]  # in key order
    assert (store.hits, store.misses) == (0, 3)
    again = store.get_or_compute_each(keys, compute)
    assert order == [1, 2, 0]  # nothing computed a second time
    assert [float(entry["value"][0]) for entry in again] == [0.0, 1.0, 2.0]
    assert (store.hits, store.misses) == (3, 3)  # all three read from disk


def _count_misses(root: str, queue) -> None:
    store = ResultStore(root)
    _evaluate(store)
    queue.put(store.misses)


@pytest.mark.slow  # two spawned interpreters
def test_two_processes_compute_an_entry_once(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=_count_misses, args=(str(tmp_path), queue)) for _ in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert sum(queue.get(timeout=5) for _ in workers) == 3  # each split computed once


def test_a_read_only_memo_dir_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, flags, *args):
        if str(path).startswith(str(tmp_path)) and flags & os.O_CREAT:
            raise OSError(30, "Read-only file system", str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with pytest.raises(
        ScaleprobeError,
        match=r"^paths.memo_dir='.*probes' cannot be written "
        r"\(Read-only file system\); make it writable, or set paths.memo_dir=null",
    ):
        ResultStore(tmp_path / "probes").check_writable()
    assert list(tmp_path.iterdir()) == []
