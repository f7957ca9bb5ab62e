"""Hyperparameters chosen on the training images only: inner K-fold CV R² (#15.3)."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import PredefinedSplit, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from src.errors import ScaleprobeError
from src.probes.protocol import evaluate_pair
from src.probes.ridge import RidgeProbe
from src.probes.selection import inner_cv_r2
from src.probes.splits import make_splits


def _data(n=120, d=20, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + 2.0
    y = 0.1 * X[:, :4].sum(axis=1) + 0.3 * rng.normal(size=n)
    return X, y


def _folds(n, n_folds, seed, split):
    """The folds inner_cv_r2 documents, as scikit-learn's fold labels."""
    order = np.random.default_rng([seed, split, 1]).permutation(n)
    labels = np.empty(n, dtype=int)
    for k, held in enumerate(np.array_split(order, n_folds)):
        labels[held] = k
    return PredefinedSplit(labels)


def test_inner_cv_r2_equals_sklearn_cross_val_predict():
    X, y = _data()
    alphas = [0.1, 10.0, 1000.0]
    got = inner_cv_r2(RidgeProbe(grid=alphas), X, y, n_folds=4, seed=3, split=2)
    for g, alpha in enumerate(alphas):
        model = make_pipeline(StandardScaler(), Ridge(alpha=alpha, solver="svd"))
        pred = cross_val_predict(model, X, y, cv=_folds(y.size, 4, 3, 2))
        assert abs(got[g] - r2_score(y, pred)) < 1e-8
    assert got[0] > got[2]  # the signal is there: little shrinkage predicts better


def test_protocol_r2_cv_uses_training_images_only():
    XA, yA = _data(n=200, seed=1)
    kw = dict(same_class=True, n_splits=1, n_train=80, n_test=60, seed=5, inner_folds=3)
    probe = RidgeProbe(grid=[1.0, 100.0])
    base = evaluate_pair(XA, yA, XA, yA, probe=probe, **kw)
    split = make_splits(200, 200, n_train=80, n_test=60, n_splits=1, seed=5, same_class=True)
    X_moved = XA.copy()
    for s in split:
        X_moved[s.test] += 1e3  # test images change, training images do not
    moved = evaluate_pair(X_moved, yA, X_moved, yA, probe=probe, **kw)
    for r0, r1 in zip(base, moved, strict=True):
        assert r0.r2_cv.shape == (1,)
        assert "r2_cv" in r0.metrics()
        np.testing.assert_array_equal(r0.r2_cv, r1.r2_cv)
        assert not np.allclose(r0.r2_test, r1.r2_test)


@pytest.mark.parametrize("folds", [1, 81])
def test_inner_folds_out_of_range_is_one_line(folds):
    X, y = _data(n=200)
    with pytest.raises(ScaleprobeError, match=rf"^inner_folds={folds} is out of range"):
        evaluate_pair(
            X, y, X, y, probe=RidgeProbe(), same_class=True, n_splits=2, n_train=80,
            n_test=60, seed=0, inner_folds=folds,
        )  # fmt: skip
