import logging

import numpy as np
import pytest

from src.errors import ScaleprobeError
from src.probes.memo import ProbeMemo, content_key
from src.probes.progress import log_progress


def test_content_key_depends_on_content_dtype_and_shape():
    a = np.arange(6.0)
    assert content_key(a, 1) == content_key(a.copy(), 1)
    assert content_key(a) != content_key(a.reshape(2, 3))
    assert content_key(a) != content_key(a.astype(np.float32))
    assert content_key(a, 1) != content_key(a, 1.0)
    b = a.copy()
    b[3] += 1e-12
    assert content_key(a) != content_key(b)
    assert content_key(np.asfortranarray(a.reshape(2, 3))) == content_key(a.reshape(2, 3))


def test_memo_computes_once_and_evicts_least_recently_used():
    memo = ProbeMemo(max_bytes=16 * 8 * 2)  # room for two arrays of 16 floats
    calls = []

    def make(i):
        def compute():
            calls.append(i)
            return np.full(16, float(i))

        return compute

    for i in (0, 1, 0, 2, 0, 1):
        memo.get_or_compute(str(i), make(i))
    # 1 was evicted by 2 (0 was used more recently), then recomputed
    assert calls == [0, 1, 2, 1]
    assert (memo.hits, memo.misses) == (2, 4)
    memo.clear()
    memo.get_or_compute("0", make(0))
    assert calls[-1] == 0


def test_memo_rejects_bad_budget():
    with pytest.raises(ScaleprobeError, match="max_bytes=-1"):
        ProbeMemo(max_bytes=-1)


def test_log_progress_logs_every_step_after_min_seconds(caplog):
    with caplog.at_level(logging.INFO, logger="src.probes.progress"):
        items = list(log_progress(range(20), 20, "work", steps=4, min_seconds=0.0))
    assert items == list(range(20))
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(",")[0] for line in lines] == [
        "work: 5/20 (25%)",
        "work: 10/20 (50%)",
        "work: 15/20 (75%)",
        "work: 20/20 (100%)",
    ]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="src.probes.progress"):
        list(log_progress(range(20), 20, "quick"))
    assert not caplog.records  # quick loops stay silent
