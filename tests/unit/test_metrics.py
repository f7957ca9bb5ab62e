import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import r2_score

from src.errors import ScaleprobeError
from src.probes.metrics import pearson_rows, r2, r2_centered_rows, r2_rows, summarize


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


Y = np.array([0.2, 0.35, 0.4, 0.6, 0.75, 0.9])
TSS = float(np.sum((Y - Y.mean()) ** 2))


@pytest.mark.parametrize(
    ("pred", "pearson", "centered", "plain"),
    [
        (Y, 1.0, 1.0, 1.0),
        # the offset only: direction and slope right, intercept wrong
        (Y + 0.3, 1.0, 1.0, 1.0 - Y.size * 0.3**2 / TSS),
        # a sign flip is not rescued by centering: RSS = 4 TSS
        (2 * Y.mean() - Y, -1.0, -3.0, -3.0),
        # the right direction with twice the slope: centering keeps the slope's cost
        (2 * Y, 1.0, 0.0, None),
    ],
)
def test_pearson_and_centered_r2_on_known_predictions(pred, pearson, centered, plain):
    assert pearson_rows(Y, pred) == pytest.approx(pearson, abs=1e-12)
    assert r2_centered_rows(Y, pred) == pytest.approx(centered, abs=1e-12)
    if plain is not None:
        assert r2(Y, pred) == pytest.approx(plain, abs=1e-12)


@pytest.mark.filterwarnings("error")
def test_constant_predictions_give_nan_pearson_without_warnings():
    # 0.1 repeated: its float mean is not exactly 0.1, so a norm == 0 test would miss it
    preds = np.stack([np.full(Y.size, 0.1), np.zeros(Y.size), Y])
    assert np.mean(preds[0]) != 0.1
    pearson = pearson_rows(Y, preds)
    assert np.isnan(pearson[:2]).all()
    assert pearson[2] == pytest.approx(1.0)
    np.testing.assert_allclose(r2_centered_rows(Y, preds[:2]), 0.0, atol=1e-12)
    # a constant target: both undefined
    assert np.isnan(pearson_rows(np.full(4, 0.5), [0.1, 0.2, 0.3, 0.4]))
    assert np.isnan(r2_centered_rows(np.full(4, 0.5), [0.1, 0.2, 0.3, 0.4]))
    summary = summarize(pearson[:2])
    assert np.isnan(summary["mean"])


def test_pearson_and_centered_r2_batched_match_definitions():
    rng = np.random.default_rng(2)
    y = rng.normal(size=30)
    preds = 0.7 * y + rng.normal(size=(3, 4, 30)) + rng.normal(size=(3, 4, 1))
    pearson, centered, plain = (f(y, preds) for f in (pearson_rows, r2_centered_rows, r2_rows))
    assert pearson.shape == centered.shape == (3, 4)
    assert pearson[1, 2] == pytest.approx(stats.pearsonr(y, preds[1, 2])[0], abs=1e-12)
    shifted = preds[1, 2] - preds[1, 2].mean() + y.mean()
    assert centered[1, 2] == pytest.approx(r2_score(y, shifted), abs=1e-12)
    # R² = centered R² - n bias² / TSS; the best affine fit (pearson²) bounds the centered one
    bias = (preds - y).mean(axis=-1)
    tss = np.sum((y - y.mean()) ** 2)
    np.testing.assert_allclose(plain, centered - y.size * bias**2 / tss, atol=1e-12)
    assert np.all(centered <= pearson**2 + 1e-12)
    for f in (pearson_rows, r2_centered_rows):
        with pytest.raises(ScaleprobeError, match="does not match"):
            f(y, preds[..., :5])
