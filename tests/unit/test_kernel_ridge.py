"""KernelRidgeProbe against independent scikit-learn KernelRidge fits (#15.2)."""

import numpy as np
import pytest
from sklearn.kernel_ridge import KernelRidge
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from src.errors import ScaleprobeError
from src.probes.kernel_ridge import KernelRidgeProbe
from src.probes.protocol import METRIC_NAMES, evaluate_pair
from src.probes.ridge import RidgeProbe


def _data(n=140, d=40, seed=0):
    """Shifted, unequally scaled features and a non-linear target (a square and a product)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.uniform(-5, 5, size=d)
    Z = (X - X.mean(0)) / X.std(0)
    y = 0.5 + 0.1 * Z[:, 0] ** 2 - 0.1 * Z[:, 1] * Z[:, 2] + 0.05 * rng.normal(size=n)
    return X, y


def _sklearn_predictions(X_train, y_train, X_test, **kw):
    """scikit-learn's KernelRidge on standardized features and centered targets."""
    scaler = StandardScaler().fit(X_train)
    model = KernelRidge(**kw).fit(scaler.transform(X_train), y_train - y_train.mean())
    return model.predict(scaler.transform(X_test)) + y_train.mean()


@pytest.mark.parametrize(("kernel", "gamma"), [("rbf", None), ("rbf", 0.05), ("linear", None)])
def test_equals_sklearn_kernel_ridge_for_every_alpha_and_target(kernel, gamma):
    X, y = _data()
    rng = np.random.default_rng(1)
    Y = np.column_stack([y, rng.permutation(y)])
    alphas = [0.01, 1.0, 100.0]
    probe = KernelRidgeProbe(grid=alphas, kernel=kernel, gamma=gamma).fit(X[:90], Y[:90])
    pred = probe.predict(X[90:])
    assert pred.shape == (2, 3, 50)
    for t in range(2):
        for g, alpha in enumerate(alphas):
            sk = _sklearn_predictions(
                X[:90], Y[:90, t], X[90:], alpha=alpha, kernel=kernel, gamma=gamma
            )
            assert abs(r2_score(y[90:], pred[t, g]) - r2_score(y[90:], sk)) < 1e-8
            np.testing.assert_allclose(pred[t, g], sk, rtol=0, atol=1e-8)


def test_linear_kernel_equals_ridge():
    X, y = _data(n=120, d=200)  # fewer images than features too
    alphas = [0.0, 0.5, 20.0]
    kernel = KernelRidgeProbe(grid=alphas, kernel="linear").fit(X[:80], y[:80])
    ridge = RidgeProbe(grid=alphas).fit(X[:80], y[:80])
    np.testing.assert_allclose(kernel.predict(X[80:]), ridge.predict(X[80:]), atol=1e-8)


def test_rbf_finds_what_a_linear_probe_misses():
    X, y = _data(n=400, d=10)
    kw = dict(same_class=True, n_splits=2, n_train=250, n_test=100, seed=0, n_permutations=3)
    rbf = evaluate_pair(X, y, X, y, probe=KernelRidgeProbe(grid=[0.1], gamma=0.1), **kw)[0]
    ridge = evaluate_pair(X, y, X, y, probe=RidgeProbe(grid=[1.0]), **kw)[0]
    assert np.all(rbf.r2_test > ridge.r2_test + 0.3)
    # no coef_: R² and its null, no geometry (and nothing made up in its place)
    assert not rbf.linear
    assert tuple(rbf.metrics()) == (
        "r2_train",
        "r2_test",
        "pearson_test",
        "r2_test_centered",
        "r2_test_shuffled",
    )
    assert rbf.angle_deg_null is None
    assert set(rbf.pvalues()) == {"r2_test_pvalue"}
    assert tuple(ridge.metrics()) == METRIC_NAMES


def test_too_large_n_is_refused_before_the_kernel_is_made(monkeypatch):
    made = []
    monkeypatch.setattr(KernelRidgeProbe, "_kernel", lambda *a: made.append(a))
    X, y = _data(n=100, d=5)
    with pytest.raises(
        ScaleprobeError,
        match=r"^kernel_ridge on n=100 training images .* max_memory_gib=1e-06; lower n_train",
    ) as error:
        KernelRidgeProbe(max_memory_gib=1e-6).fit(X, y)
    assert "\n" not in str(error.value)
    assert made == []


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"gamma": -1.0}, r"^gamma=-1\.0 is out of range; use a float > 0$"),
        ({"kernel": "poly"}, r"^kernel='poly' is not allowed; choose from \('rbf', 'linear'\)$"),
        ({"grid": [1.0, -2.0]}, r"^kernel_alpha\[1\]=-2\.0 is out of range"),
        ({"max_memory_gib": 0}, r"^max_memory_gib=0 is out of range"),
    ],
)
def test_bad_hyperparameters_are_one_line(kw, message):
    X, y = _data(n=30, d=4)
    with pytest.raises(ScaleprobeError, match=message):
        KernelRidgeProbe(**kw).fit(X, y)


def test_protocol_r2_equals_sklearn_kernel_ridge_on_each_split():
    from src.probes.splits import make_splits

    XA, yA = _data(n=150, seed=2)
    XB, yB = _data(n=150, seed=3)
    kw = dict(n_train=90, n_test=50, n_splits=3, seed=4)
    probe = KernelRidgeProbe(grid=[0.1, 10.0], gamma=0.02)
    results = evaluate_pair(XA, yA, XB, yB, probe=probe, same_class=False, **kw)
    for result in results:
        for i, split in enumerate(make_splits(150, 150, same_class=False, **kw)):
            sk = _sklearn_predictions(
                XA[split.train], yA[split.train], XB[split.test], alpha=result.alpha,
                kernel="rbf", gamma=0.02,
            )  # fmt: skip
            assert abs(result.r2_test[i] - r2_score(yB[split.test], sk)) < 1e-6
