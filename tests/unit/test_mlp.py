"""MLPProbe: seeded, early stopping on the training split, non-convergence named (#15.3)."""

import logging

import numpy as np
import pytest
from sklearn.compose import TransformedTargetRegressor
from sklearn.neural_network import MLPRegressor
from sklearn.preprocessing import StandardScaler

from src.errors import ScaleprobeError
from src.probes.mlp import MLPProbe
from src.probes.protocol import evaluate_pair


def _data(n=120, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.uniform(-5, 5, size=d)
    Z = (X - X.mean(0)) / X.std(0)
    return X, 0.5 + 0.1 * np.tanh(Z[:, 0] * Z[:, 1]) + 0.01 * rng.normal(size=n)


def test_same_seed_same_numbers_and_another_seed_others():
    X, y = _data()
    Y = np.column_stack([y, np.random.default_rng(1).permutation(y)])
    kw = dict(grid=[1e-4, 1e-1], hidden_layer_sizes=[16], max_iter=300)
    a = MLPProbe(**kw, random_state=3).fit(X[:80], Y[:80]).predict(X[80:])
    b = MLPProbe(**kw, random_state=3).fit(X[:80], Y[:80]).predict(X[80:])
    c = MLPProbe(**kw, random_state=4).fit(X[:80], Y[:80]).predict(X[80:])
    assert a.shape == (2, 2, 40)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-6


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_equals_a_direct_mlp_regressor_with_the_same_seed():
    X, y = _data()
    probe = MLPProbe(grid=[1e-3, 1.0], hidden_layer_sizes=[16], max_iter=300, random_state=5)
    pred = probe.fit(X[:80], y[:80]).predict(X[80:])
    scaler = StandardScaler().fit(X[:80])
    for g, alpha in enumerate([1e-3, 1.0]):
        network = MLPRegressor(
            hidden_layer_sizes=(16,),
            alpha=alpha,
            max_iter=300,
            early_stopping=True,
            validation_fraction=0.2,
            n_iter_no_change=10,
            learning_rate_init=1e-3,
            random_state=5,
        )
        direct = TransformedTargetRegressor(network, transformer=StandardScaler())
        direct.fit(scaler.transform(X[:80]), y[:80])
        np.testing.assert_allclose(pred[0, g], direct.predict(scaler.transform(X[80:])), atol=1e-12)
        assert probe.models_[0][g].n_iter_ == direct.regressor_.n_iter_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_target_is_standardized_so_its_units_do_not_matter():
    X, y = _data()
    kw = dict(grid=[1e-2], hidden_layer_sizes=[16], max_iter=300, random_state=1)
    pred = MLPProbe(**kw).fit(X[:80], y[:80]).predict(X[80:])
    scaled = MLPProbe(**kw).fit(X[:80], 1000 * y[:80] + 7).predict(X[80:])
    np.testing.assert_allclose(scaled, 1000 * pred + 7, rtol=1e-9, atol=1e-6)


def test_non_convergence_is_one_warning_line_per_split(caplog):
    X, y = _data()
    probe = MLPProbe(grid=[1e-4], hidden_layer_sizes=[8], max_iter=2, n_iter_no_change=50)
    kw = dict(same_class=True, n_splits=2, n_train=60, n_test=30, seed=0, n_permutations=2)
    with caplog.at_level(logging.WARNING, logger="src.probes.protocol"):
        result = evaluate_pair(X, y, X, y, probe=probe, train_class="a", test_class="a", **kw)[0]
    lines = [r.getMessage() for r in caplog.records if r.name == "src.probes.protocol"]
    assert lines == [
        f"a->a split {i}: 3 of 3 MLPProbe probe fits did not converge; raise probe.max_iter"
        for i in range(2)
    ]
    assert result.n_unconverged == 6  # the run's tag (src/tracking/job_log.py)
    assert not result.linear
    assert result.r2_test_null.shape == (2, 2)


def test_negative_penalty_names_the_grid_entry():
    X, y = _data()
    with pytest.raises(ScaleprobeError, match=r"^mlp_alpha\[0\]=-1\.0 is out of range"):
        MLPProbe(grid=[-1.0]).fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_protocol_r2_equals_a_direct_mlp_on_each_split_and_repeats_exactly():
    from sklearn.metrics import r2_score

    from src.probes.splits import make_splits

    X, y = _data(n=150)
    kw = dict(same_class=True, n_train=80, n_test=50, n_splits=2, seed=1)
    probe = MLPProbe(grid=[1e-2], hidden_layer_sizes=[8], max_iter=100, random_state=2)
    first = evaluate_pair(X, y, X, y, probe=probe, **kw)[0]
    again = evaluate_pair(X, y, X, y, probe=probe, **kw)[0]
    np.testing.assert_array_equal(first.r2_test, again.r2_test)
    np.testing.assert_array_equal(first.r2_test_null, again.r2_test_null)
    for i, split in enumerate(make_splits(150, 150, **kw)):
        scaler = StandardScaler().fit(X[split.train])
        direct = TransformedTargetRegressor(
            MLPRegressor(
                hidden_layer_sizes=(8,), alpha=1e-2, max_iter=100, early_stopping=True,
                validation_fraction=0.2, n_iter_no_change=10, learning_rate_init=1e-3,
                random_state=2,
            ),
            transformer=StandardScaler(),
        ).fit(scaler.transform(X[split.train]), y[split.train])  # fmt: skip
        pred = direct.predict(scaler.transform(X[split.test]))
        assert abs(first.r2_test[i] - r2_score(y[split.test], pred)) < 1e-6
