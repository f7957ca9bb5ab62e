"""RidgeProbe against independent scikit-learn Ridge fits on the same splits (#15.1)."""

import numpy as np
import pytest
from sklearn.linear_model import Ridge, RidgeCV
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from src.errors import ScaleprobeError
from src.probes.lasso import LassoPathProbe
from src.probes.protocol import evaluate_job, evaluate_pair
from src.probes.ridge import RidgeProbe
from src.probes.splits import make_splits


def _data(n=120, d=60, seed=0):
    """Features with shifted means, unequal scales, a constant column, a linear target."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.uniform(-5, 5, size=d)
    X[:, 3] = 2.5
    y = 0.5 + 0.05 * X[:, :5].sum(axis=1) + 0.1 * rng.normal(size=n)
    return X, y


def _sklearn_r2(X_train, y_train, X_test, y_test, alpha):
    scaler = StandardScaler().fit(X_train)
    model = Ridge(alpha=alpha, solver="svd").fit(scaler.transform(X_train), y_train)
    return r2_score(y_test, model.predict(scaler.transform(X_test))), model.coef_


@pytest.mark.parametrize("d", [30, 200])  # more images than features, and fewer
def test_equals_sklearn_ridge_for_every_alpha_and_target(d):
    X, y = _data(n=160, d=d)
    rng = np.random.default_rng(1)
    Y = np.column_stack([y, rng.permutation(y), rng.permutation(y)])
    alphas = [0.01, 1.0, 30.0, 1000.0]
    probe = RidgeProbe(grid=alphas).fit(X[:100], Y[:100])
    pred = probe.predict(X[100:])
    assert pred.shape == (3, 4, 60)
    for t in range(3):
        for g, alpha in enumerate(alphas):
            r2, coef = _sklearn_r2(X[:100], Y[:100, t], X[100:], y[100:], alpha)
            assert abs(r2_score(y[100:], pred[t, g]) - r2) < 1e-8
            np.testing.assert_allclose(probe.coef_[t, g], coef, rtol=0, atol=1e-8)


def test_protocol_r2_equals_sklearn_on_each_split():
    XA, yA = _data(n=150, d=80, seed=2)
    XB, yB = _data(n=150, d=80, seed=3)
    kw = dict(n_train=90, n_test=50, n_splits=3, seed=4)
    results = evaluate_pair(
        XA, yA, XB, yB, probe=RidgeProbe(grid=[1.0, 50.0]), same_class=False, **kw
    )
    splits = make_splits(150, 150, same_class=False, **kw)
    for result in results:
        for i, split in enumerate(splits):
            r2, _ = _sklearn_r2(
                XA[split.train], yA[split.train], XB[split.test], yB[split.test], result.alpha
            )
            assert abs(result.r2_test[i] - r2) < 1e-8
        assert result.linear
        assert result.param == "ridge_alpha"


def test_alpha_zero_is_the_lasso_paths_least_squares():
    X, y = _data(n=60, d=100)
    ridge = RidgeProbe(grid=[0.0]).fit(X, y)
    lasso = LassoPathProbe(grid=[0.0]).fit(X, y)
    np.testing.assert_allclose(ridge.coef_, lasso.coef_, atol=1e-9)
    np.testing.assert_allclose(ridge.predict(X), lasso.predict(X), atol=1e-9)


def test_negative_alpha_names_the_grid_entry():
    X, y = _data()
    with pytest.raises(ScaleprobeError, match=r"^ridge_alpha\[1\]=-1\.0 is out of range"):
        RidgeProbe(grid=[1.0, -1.0]).fit(X, y)


@pytest.mark.parametrize("d", [30, 200])
def test_loo_choice_and_r2_equal_sklearn_ridgecv(d):
    """GCV on the training split: RidgeCV(gcv_mode="svd")'s alpha, errors and test R²."""
    X, y = _data(n=160, d=d, seed=5)
    alphas = [0.01, 1.0, 30.0, 300.0, 3000.0]
    probe = RidgeProbe(grid=alphas).fit(X[:100], y[:100])
    scaler = StandardScaler().fit(X[:100])
    cv = RidgeCV(alphas=alphas, gcv_mode="svd", store_cv_results=True)
    cv.fit(scaler.transform(X[:100]), y[:100])
    assert probe.alpha_[0] == cv.alpha_
    np.testing.assert_allclose(probe.loo_mse_[0], cv.cv_results_.mean(axis=0), rtol=1e-9)
    best = alphas.index(cv.alpha_)
    r2 = r2_score(y[100:], probe.predict(X[100:])[0, best])
    assert abs(r2 - cv.score(scaler.transform(X[100:]), y[100:])) < 1e-6


def test_loo_of_an_interpolating_fit_is_inf():
    X, y = _data(n=40, d=100)
    probe = RidgeProbe(grid=[0.0, 1.0]).fit(X, y)
    assert probe.loo_mse_[0, 0] == np.inf
    assert np.isfinite(probe.loo_mse_[0, 1])
    assert probe.alpha_[0] == 1.0


def test_job_value_gcv_picks_each_splits_alpha_as_ridgecv():
    XA, yA = _data(n=150, d=40, seed=6)
    kw = dict(n_train=90, n_test=50, n_splits=3, seed=7)
    alphas = [0.1, 10.0, 100.0, 1000.0]
    result, path = evaluate_job(
        XA, yA, XA, yA, probe=RidgeProbe(grid=alphas), value="gcv", same_class=True,
        n_permutations=4, **kw,
    )  # fmt: skip
    splits = make_splits(150, 150, same_class=True, **kw)
    for i, split in enumerate(splits):
        scaler = StandardScaler().fit(XA[split.train])
        cv = RidgeCV(alphas=alphas, gcv_mode="svd").fit(
            scaler.transform(XA[split.train]), yA[split.train]
        )
        assert result.alpha_selected[i] == cv.alpha_
        r2 = cv.score(scaler.transform(XA[split.test]), yA[split.test])
        assert abs(result.r2_test[i] - r2) < 1e-6
        # each permutation of the null chooses its own alpha by the same criterion
        j = np.argmin([r.loo_mse_null[i] for r in path], axis=0)
        np.testing.assert_array_equal(
            result.r2_test_null[i], [path[g].r2_test_null[i, p] for p, g in enumerate(j)]
        )
    assert np.isnan(result.alpha)
    assert "alpha_selected" in result.metrics()
    assert "alpha_selected" not in path[0].metrics()


def test_gcv_is_refused_for_a_probe_without_loo():
    XA, yA = _data(n=80, d=10)
    with pytest.raises(ScaleprobeError, match="needs leave-one-out errors"):
        evaluate_job(
            XA, yA, XA, yA, probe=LassoPathProbe(grid=[0.0]), value="gcv", same_class=True,
            n_train=40, n_test=20, n_splits=2, seed=0,
        )  # fmt: skip
