import numpy as np
import pytest
from reference_probe import ScaleProbe
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

import src.probes.fit as fit_module
from src.errors import ScaleprobeError
from src.probes.fit import fit_alpha_grid, standardization
from src.probes.geometry import cosine


def _planted(n=200, d=50, k=5, noise=0.01, seed=0):
    """Features with shifted means and unequal scales, a sparse planted direction."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.uniform(-5, 5, size=d)
    w = np.zeros(d)
    w[rng.choice(d, k, replace=False)] = rng.choice([-1.0, 1.0], k) * rng.uniform(0.5, 1.0, k)
    y = 0.5 + 0.05 * (X - X.mean(0)) @ w + noise * rng.normal(size=n)
    return X, y, w


@pytest.mark.parametrize("alpha", [0.0, 1e-3])
def test_recovers_planted_direction(alpha):
    X, y, w = _planted(n=400)
    probe = ScaleProbe(alpha).fit(X[:200], y[:200])
    assert cosine(probe.coef_ / probe.scale_, w) > 0.99
    assert probe.score(X[:200], y[:200]) > 0.98
    assert probe.score(X[200:], y[200:]) > 0.98
    assert probe.coef_.shape == (50,)
    if alpha > 0:
        # the Lasso keeps the planted maps and drops most of the others
        assert set(np.flatnonzero(w)) <= set(np.flatnonzero(probe.coef_))
        assert probe.n_nonzero_ < 25
    else:
        assert probe.n_nonzero_ == 50


def test_standardization_statistics_come_from_fit_data_only():
    X, y, _ = _planted()
    probe = ScaleProbe(1e-3).fit(X[:100], y[:100])
    np.testing.assert_allclose(probe.mean_, X[:100].mean(0))
    np.testing.assert_allclose(probe.scale_, X[:100].std(0))
    X_new = X[100:] * 1e6
    expected = ((X_new - probe.mean_) / probe.scale_) @ probe.coef_ + probe.intercept_
    np.testing.assert_allclose(probe.predict(X_new), expected)
    fit = fit_alpha_grid(X[:100], y[:100], [0.0, 1e-3])
    np.testing.assert_allclose(fit.mean, probe.mean_)
    np.testing.assert_allclose(fit.scale, probe.scale_)


def test_constant_column_gets_scale_one_and_zero_coef():
    X, y, _ = _planted()
    X[:, 3] = 0.1
    mean, scale = standardization(X)
    assert scale[3] == 1.0
    assert np.all((X[:, 3] - mean[3]) == 0)
    for alpha in (0.0, 1e-3):
        probe = ScaleProbe(alpha).fit(X, y)
        assert np.all(np.isfinite(probe.coef_))
        assert abs(probe.coef_[3]) < 1e-12


def test_ols_underdetermined_is_min_norm():
    X, y, _ = _planted(n=30, d=80)
    probe = ScaleProbe(0.0).fit(X, y)
    mean, scale = X.mean(0), X.std(0)
    Xc = (X - mean) / scale
    Xc = Xc - Xc.mean(0)
    expected = np.linalg.pinv(Xc) @ (y - y.mean())
    np.testing.assert_allclose(probe.coef_, expected, atol=1e-8)
    assert probe.score(X, y) == pytest.approx(1.0, abs=1e-9)
    grid = fit_alpha_grid(X, y, [0.0])
    np.testing.assert_allclose(grid.coef[0, 0], expected, atol=1e-8)


@pytest.mark.parametrize("alpha", [-0.1, float("nan"), float("inf"), "0.1", None, True])
def test_alpha_validation(alpha):
    X, y, _ = _planted(n=20, d=5)
    with pytest.raises(ScaleprobeError, match="alpha="):
        ScaleProbe(alpha).fit(X, y)


@pytest.mark.parametrize(
    ("kw", "match"), [({"max_iter": 0}, "max_iter=0"), ({"tol": -1.0}, "tol=")]
)
def test_solver_param_validation(kw, match):
    X, y, _ = _planted(n=20, d=5)
    with pytest.raises(ScaleprobeError, match=match):
        ScaleProbe(0.1, **kw).fit(X, y)


def test_estimator_protocol():
    probe = ScaleProbe(0.01, tol=1e-6)
    assert clone(probe).get_params() == {"alpha": 0.01, "max_iter": 10_000, "tol": 1e-6}
    with pytest.raises(NotFittedError):
        probe.predict(np.zeros((2, 5)))
    X, y, _ = _planted(n=20, d=5)
    assert probe.fit(X, y) is probe
    assert probe.n_features_in_ == 5
    with pytest.raises(ValueError, match="features"):
        probe.predict(np.zeros((2, 4)))


def lasso_path_coefs(X, y, alphas, *, tol, max_iter, return_intercepts=False):
    """The coordinate-descent path of one target (``lasso_path_coefs`` before #12.3)."""
    fit = fit_alpha_grid(X, y, alphas, solver="cd", max_iter=max_iter, tol=tol)
    return (fit.coef[0], fit.intercept[0]) if return_intercepts else fit.coef[0]


def test_cd_path_equals_separate_fits():
    X, y, _ = _planted(n=60, d=120, noise=0.05)
    alphas = [1e-3, 0.0, 1e-2, 3e-4, 3e-3]  # unordered, with a least-squares entry
    coefs, intercepts = lasso_path_coefs(
        X, y, alphas, tol=1e-12, max_iter=100_000, return_intercepts=True
    )
    assert coefs.shape == (5, 120)
    np.testing.assert_array_equal(
        coefs, lasso_path_coefs(X, y, alphas, tol=1e-12, max_iter=100_000)
    )
    for i, alpha in enumerate(alphas):
        probe = ScaleProbe(alpha, tol=1e-12, max_iter=100_000).fit(X, y)
        np.testing.assert_allclose(coefs[i], probe.coef_, atol=1e-6)
        assert intercepts[i] == pytest.approx(probe.intercept_, abs=1e-6)
    # larger alpha, sparser probe
    nnz = np.count_nonzero(coefs, axis=1)
    assert nnz[2] < nnz[0] < nnz[3] < 120


@pytest.mark.parametrize("solver", ["lars", "cd"])
def test_fit_alpha_grid_equals_separate_fits(solver):
    X, y, _ = _planted(n=60, d=120, noise=0.05)
    rng = np.random.default_rng(1)
    Y = np.column_stack([y, rng.permutation(y), rng.permutation(y)])
    alphas = [0.0, 1e-2, 1e-4, 1e-3]
    fit = fit_alpha_grid(X, Y, alphas, solver=solver, tol=1e-12, max_iter=200_000)
    assert fit.coef.shape == (3, 4, 120)
    assert fit.intercept.shape == (3, 4)
    assert fit.n_refit == 0
    preds = fit.predict(X[:7])
    assert preds.shape == (3, 4, 7)
    np.testing.assert_allclose(fit.predict(X[:7], targets=slice(1, 2)), preds[1:2], atol=1e-12)
    for k in range(3):
        for i, alpha in enumerate(alphas):
            probe = ScaleProbe(alpha, tol=1e-12, max_iter=200_000).fit(X, Y[:, k])
            np.testing.assert_allclose(fit.coef[k, i], probe.coef_, atol=1e-6)
            np.testing.assert_allclose(preds[k, i], probe.predict(X[:7]), atol=1e-6)


def test_fit_alpha_grid_falls_back_to_cd_when_kkt_fails(monkeypatch):
    X, y, _ = _planted(n=60, d=120, noise=0.05)
    exact = fit_alpha_grid(X, y, [1e-3, 1e-2])
    monkeypatch.setattr(fit_module, "_KKT_RTOL", -1.0)  # every LARS solution "fails"
    refit = fit_alpha_grid(X, y, [1e-3, 1e-2], tol=1e-12, max_iter=200_000)
    assert refit.n_refit == 2
    np.testing.assert_allclose(refit.coef, exact.coef, atol=1e-6)


def test_polish_repairs_an_active_set_with_missing_or_extra_variables():
    X, y, _ = _planted(n=60, d=120, noise=0.05)
    Xs = (X - X.mean(axis=0)) / X.std(axis=0)
    yc = y - y.mean()
    alpha = 1e-3
    exact = fit_alpha_grid(X, y, [alpha]).coef[0, 0]
    assert fit_module._kkt_violation(Xs, yc, exact[None], np.array([alpha]))[0] < 1e-8
    active = np.flatnonzero(exact)
    missing = exact.copy()  # LARS near the end of the path missed variables
    missing[active[np.argsort(np.abs(exact[active]))[:3]]] = 0.0
    extra = exact.copy()  # or kept one that should have left
    extra[np.flatnonzero(exact == 0)[0]] = 1e-3
    for start in (missing, extra):
        assert fit_module._kkt_violation(Xs, yc, start[None], np.array([alpha]))[0] > 1e-3
        polished = fit_module._polish_active_set(Xs, yc, start, alpha)
        np.testing.assert_allclose(polished, exact, atol=1e-9)


def test_fit_alpha_grid_polishes_failed_lars_without_cd(monkeypatch):
    X, y, _ = _planted(n=60, d=120, noise=0.05)
    alphas = [1e-3, 1e-2]
    exact = fit_alpha_grid(X, y, alphas)
    lars_at = fit_module._lars_at

    def missing_one(Xs, yc, a, max_steps):
        out = lars_at(Xs, yc, a, max_steps)
        for row in out:  # drop the smallest active coefficient of every solution
            active = np.flatnonzero(row)
            row[active[np.argmin(np.abs(row[active]))]] = 0.0
        return out

    monkeypatch.setattr(fit_module, "_lars_at", missing_one)
    polished = fit_alpha_grid(X, y, alphas)
    assert polished.n_refit == 0
    np.testing.assert_allclose(polished.coef, exact.coef, atol=1e-9)


def _with_duplicated_columns(n=40, d=60, seed=3):
    """Planted features plus columns equal to others after standardization.

    Columns d and d+1 fire on one image only (with different values), column
    d+2 is an affine, sign-flipped copy of column 0, column d+3 is constant.
    """
    X, _, _ = _planted(n=n, d=d, seed=seed)
    one_image = np.zeros((n, 2))
    one_image[3] = [0.3, 0.7]
    extra = np.column_stack([one_image, 5.0 - 2.0 * X[:, 0], np.full(n, 2.0)])
    X = np.column_stack([X, extra])
    y = 0.5 + 0.05 * (X[:, 0] - X[:, 0].mean()) / X[:, 0].std() + 0.2 * one_image[:, 0]
    y += 0.01 * np.random.default_rng(seed).normal(size=n)
    return X, y


def test_fit_alpha_grid_handles_duplicated_columns_exactly():
    X, y = _with_duplicated_columns()
    d = X.shape[1]
    rng = np.random.default_rng(0)
    Y = np.column_stack([y, rng.permutation(y), rng.permutation(y)])
    alphas = np.array([1e-4, 1e-3, 1e-2])
    fit = fit_alpha_grid(X, Y, alphas)
    assert fit.n_refit == 0  # no coordinate-descent fallback needed
    Xs = (X - fit.mean) / fit.scale
    for k in range(Y.shape[1]):
        yc = Y[:, k] - Y[:, k].mean()
        assert fit_module._kkt_violation(Xs, yc, fit.coef[k], alphas).max() <= 1e-6
        # a duplicate's weight sits on the first column of its group
        assert not fit.coef[k][:, [d - 3, d - 2]].any()
        for i, alpha in enumerate(alphas):
            probe = ScaleProbe(alpha, tol=1e-12, max_iter=500_000).fit(X, Y[:, k])
            np.testing.assert_allclose(fit.predict(X)[k, i], probe.predict(X), atol=1e-6)
    assert fit.coef[0][:2, d - 4].all()  # the one-image feature the ratio depends on


def test_fit_alpha_grid_argument_errors():
    X, y, _ = _planted(n=20, d=5)
    with pytest.raises(ScaleprobeError, match="solver='newton'"):
        fit_alpha_grid(X, y, [0.1], solver="newton")
    with pytest.raises(ScaleprobeError, match="alphas="):
        fit_alpha_grid(X, y, [])
    with pytest.raises(ScaleprobeError, match=r"alphas\[1\]=-1"):
        fit_alpha_grid(X, y, [0.1, -1])
    with pytest.raises(ScaleprobeError, match="does not match X"):
        fit_alpha_grid(X, y[:10], [0.1])
    assert fit_alpha_grid(X, y, [0.1]).coef.shape == (1, 1, 5)
