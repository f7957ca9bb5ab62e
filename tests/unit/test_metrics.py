import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import r2_score

from src.errors import ScaleprobeError
from src.probes.metrics import r2, r2_rows, summarize


def test_r2_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    pred = y + rng.normal(scale=0.5, size=50)
    assert r2(y, pred) == pytest.approx(r2_score(y, pred), abs=1e-12)
    assert r2(y, y) == 1.0
    assert r2(y, np.full(50, y.mean())) == pytest.approx(0.0, abs=1e-12)
    assert r2(y, -y) < 0


def test_r2_constant_target_is_nan():
    assert np.isnan(r2([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))


def test_r2_rows_batched():
    rng = np.random.default_rng(1)
    y = rng.normal(size=20)
    preds = rng.normal(size=(3, 4, 20))
    out = r2_rows(y, preds)
    assert out.shape == (3, 4)
    assert out[2, 1] == pytest.approx(r2_score(y, preds[2, 1]), abs=1e-12)
    with pytest.raises(ScaleprobeError, match="does not match"):
        r2_rows(y, preds[..., :5])


def test_summarize_values():
    vals = [0.8, 0.9, 1.0, 0.7]
    out = summarize(vals)
    assert set(out) == {"mean", "std", "ci95"}
    assert out["mean"] == pytest.approx(0.85)
    assert out["std"] == pytest.approx(np.std(vals, ddof=1))
    assert out["ci95"] == pytest.approx(stats.t.ppf(0.975, 3) * out["std"] / 2.0)
    # the t interval is wider than the normal one at small n
    assert out["ci95"] > 1.96 * out["std"] / 2.0


def test_summarize_single_value():
    out = summarize(np.array([0.5]))
    assert out["mean"] == 0.5
    assert out["ci95"] == 0.0


@pytest.mark.parametrize("bad", [[], [[1.0, 2.0]]])
def test_summarize_rejects_empty_or_2d(bad):
    with pytest.raises(ScaleprobeError, match="values with shape"):
        summarize(bad)
