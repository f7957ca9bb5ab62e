from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest
from reference_probe import ScaleProbe
from scipy import stats
from sklearn.metrics import r2_score

from src.errors import ScaleprobeError
from src.probes.memo import ProbeMemo
from src.probes.protocol import METRIC_NAMES, PairResult, evaluate_pair
from src.probes.splits import make_splits

D = 200


def _direction():
    rng = np.random.default_rng(42)
    w = np.zeros(D)
    w[rng.choice(D, 10, replace=False)] = rng.choice([-1.0, 1.0], 10)
    return w


def _class(seed, n=300):
    """One class: features and ratios driven by a direction shared by all classes."""
    shared = np.random.default_rng(0)  # feature means and scales common to all classes
    loc, scale = shared.normal(size=D), shared.uniform(0.5, 2.0, size=D)
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D)) * scale + loc
    y = 0.5 + 0.05 * ((X - X.mean(0)) / X.std(0)) @ _direction() + 0.01 * rng.normal(size=n)
    return X, y


def _run(XA, yA, XB, yB, **kw):
    args = dict(
        alphas=[0.0, 1e-3, 1e-2], same_class=False, n_splits=3, n_train=120, n_test=120, seed=0
    )
    args.update(kw)
    return evaluate_pair(XA, yA, XB, yB, **args)


def test_result_layout():
    XA, yA = _class(1)
    XB, yB = _class(2)
    results = _run(XA, yA, XB, yB, alphas=[1e-2, 0.0])
    assert [r.alpha for r in results] == [1e-2, 0.0]
    for r in results:
        assert isinstance(r, PairResult)
        metrics = r.metrics()
        assert tuple(metrics) == METRIC_NAMES
        assert list(metrics) == [
            "r2_train",
            "r2_test",
            "pearson_test",
            "r2_test_centered",
            "nnz",
            "cos",
            "angle_deg",
            "r2_test_shuffled",
            "angle_deg_shuffled",
        ]
        assert all(v.shape == (3,) for v in metrics.values())
        assert r.coef.shape == (3, D)
        assert r.coef_test.shape == (3, D)
        np.testing.assert_array_equal(r.nnz, np.count_nonzero(r.coef, axis=1))
    assert np.all(results[1].nnz == D)
    assert np.all(results[0].nnz < 40)


def test_shared_direction_small_angle_and_null_near_chance():
    XA, yA = _class(1)
    XB, yB = _class(2)
    results = _run(XA, yA, XB, yB)
    lasso = results[2]
    assert np.all(lasso.r2_test > 0.85)
    assert np.all(lasso.angle_deg < 20)
    assert np.all(lasso.cos > 0.9)
    np.testing.assert_allclose(np.cos(np.radians(lasso.angle_deg)), lasso.cos, atol=1e-9)
    for r in results:
        assert np.all(r.r2_test_shuffled <= 0.1)
        assert np.all((r.angle_deg_shuffled > 70) & (r.angle_deg_shuffled < 110))
        # the real probe is far better aligned than the shuffled one
        assert np.all(r.angle_deg < r.angle_deg_shuffled - 20)


def test_matches_separate_scaleprobe_fits():
    XA, yA = _class(1)
    XB, yB = _class(2)
    results = _run(XA, yA, XB, yB, n_splits=2)
    splits = make_splits(300, 300, n_train=120, n_test=120, n_splits=2, seed=0, same_class=False)
    for r in results:
        for i, split in enumerate(splits):
            probe = ScaleProbe(r.alpha, tol=1e-12, max_iter=100_000)
            probe.fit(XA[split.train], yA[split.train])
            np.testing.assert_allclose(r.coef[i], probe.coef_, atol=1e-6)
            assert r.r2_test[i] == pytest.approx(
                probe.score(XB[split.test], yB[split.test]), abs=1e-6
            )
            pred = probe.predict(XB[split.test])
            assert r.pearson_test[i] == pytest.approx(
                stats.pearsonr(yB[split.test], pred)[0], abs=1e-6
            )
            assert r.r2_test_centered[i] == pytest.approx(
                r2_score(yB[split.test], pred - pred.mean() + yB[split.test].mean()), abs=1e-6
            )
            assert r.r2_train[i] == pytest.approx(
                probe.score(XA[split.train], yA[split.train]), abs=1e-6
            )
            test_probe = ScaleProbe(r.alpha, tol=1e-12, max_iter=100_000)
            test_probe.fit(XB[split.test], yB[split.test])
            np.testing.assert_allclose(r.coef_test[i], test_probe.coef_, atol=1e-6)


def test_deterministic_and_seeded():
    XA, yA = _class(1)
    XB, yB = _class(2)
    a = _run(XA, yA, XB, yB, n_splits=2)
    b = _run(XA, yA, XB, yB, n_splits=2)
    c = _run(XA, yA, XB, yB, n_splits=2, seed=1)
    for ra, rb, rc in zip(a, b, c, strict=True):
        for name in METRIC_NAMES:
            np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name))
        np.testing.assert_array_equal(ra.coef, rb.coef)
        assert not np.array_equal(ra.r2_test, rc.r2_test)


def test_alpha_grid_shares_splits():
    XA, yA = _class(1)
    XB, yB = _class(2)
    grid = _run(XA, yA, XB, yB, n_splits=2)
    alone = _run(XA, yA, XB, yB, n_splits=2, alphas=[1e-2])
    for name in METRIC_NAMES:
        np.testing.assert_allclose(getattr(alone[0], name), getattr(grid[2], name), atol=1e-9)


def test_same_class_standardizes_on_train_split_only():
    XA, yA = _class(1)
    kw = dict(same_class=True, n_splits=1, n_train=120, n_test=100, alphas=[0.0, 1e-2])
    base = _run(XA, yA, XA, yA, **kw)
    split = make_splits(300, 300, n_train=120, n_test=100, n_splits=1, seed=0, same_class=True)[0]
    unused = np.setdiff1d(np.arange(300), np.r_[split.train, split.test])
    X_unused = XA.copy()
    X_unused[unused] = 1e6
    X_test_huge = XA.copy()
    X_test_huge[split.test] += 1e6
    same = _run(X_unused, yA, X_unused, yA, **kw)
    shifted = _run(X_test_huge, yA, X_test_huge, yA, **kw)
    for r0, r1, r2 in zip(base, same, shifted, strict=True):
        for name in METRIC_NAMES:
            np.testing.assert_allclose(getattr(r1, name), getattr(r0, name), atol=1e-10)
        # huge test rows change the test score but not the probe or its training fit
        np.testing.assert_allclose(r2.coef, r0.coef, atol=1e-10)
        np.testing.assert_allclose(r2.r2_train, r0.r2_train, atol=1e-10)
        assert r2.r2_test[0] < -100


def test_errors():
    XA, yA = _class(1, n=50)
    with pytest.raises(ScaleprobeError, match="features"):
        _run(XA, yA, XA[:, :10], yA)
    with pytest.raises(ScaleprobeError, match="exceeds the 50 images of class 'albatross'"):
        _run(XA, yA, XA, yA, same_class=True, n_train=40, n_test=40, train_class="albatross")
    with pytest.raises(ScaleprobeError, match=r"alphas\[0\]=-0.1"):
        _run(XA, yA, XA, yA, alphas=[-0.1], n_train=10, n_test=10)
    with pytest.raises(ScaleprobeError, match="seed=-3"):
        _run(XA, yA, XA, yA, seed=-3, n_train=10, n_test=10)


def test_permutation_null_and_pvalues_on_planted_data():
    XA, yA = _class(1)
    XB, yB = _class(2)
    results = _run(XA, yA, XB, yB, n_permutations=19)
    for r in results:
        assert r.r2_test_null.shape == (3, 19)
        assert r.angle_deg_null.shape == (3, 19)
        np.testing.assert_array_equal(r.r2_test_null[:, 0], r.r2_test_shuffled)
        np.testing.assert_array_equal(r.angle_deg_null[:, 0], r.angle_deg_shuffled)
        # shuffled ratios: R² near or below 0, angles near 90°
        assert np.nanmean(r.r2_test_null) < 0.05
        assert abs(np.nanmean(r.angle_deg_null) - 90) < 10
        # the planted direction beats every permutation: the smallest p-value
        p = r.pvalues()
        assert p["r2_test_pvalue"] == pytest.approx(1 / 20)
        assert p["angle_deg_pvalue"] == pytest.approx(1 / 20)


def test_pvalues_of_unrelated_targets_are_not_small():
    XA, _ = _class(1)
    XB, _ = _class(2)
    rng = np.random.default_rng(5)
    yA, yB = rng.uniform(0.1, 0.9, size=300), rng.uniform(0.1, 0.9, size=300)
    (r,) = _run(XA, yA, XB, yB, alphas=[1e-2], n_permutations=19)
    assert r.pvalues()["r2_test_pvalue"] > 0.1
    assert np.nanmean(r.r2_test) < 0.05


def test_first_permutations_do_not_depend_on_n_permutations():
    XA, yA = _class(1)
    XB, yB = _class(2)
    one = _run(XA, yA, XB, yB, n_permutations=1, alphas=[1e-2])[0]
    five = _run(XA, yA, XB, yB, n_permutations=5, alphas=[1e-2])[0]
    np.testing.assert_array_equal(one.r2_test_shuffled, five.r2_test_shuffled)
    np.testing.assert_array_equal(one.r2_test, five.r2_test)


def _assert_identical(a, b):
    for ra, rb in zip(a, b, strict=True):
        for name in (*METRIC_NAMES, "coef", "coef_test", "r2_test_null", "angle_deg_null"):
            np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name))


def test_memo_gives_identical_results_and_reuses_fits():
    XA, yA = _class(1)
    XB, yB = _class(2)
    XC, yC = _class(3)
    kw = dict(n_splits=2, n_permutations=3)
    fresh_b = _run(XA, yA, XB, yB, **kw)
    fresh_c = _run(XA, yA, XC, yC, **kw)
    memo = ProbeMemo()
    memo_b = _run(XA, yA, XB, yB, memo=memo, **kw)
    assert (memo.hits, memo.misses) == (0, 3)  # one evaluation, two training fits
    memo_b_again = _run(XA, yA, XB, yB, memo=memo, **kw)
    assert (memo.hits, memo.misses) == (1, 3)
    # another test class, same training images and splits: training fits are reused
    memo_c = _run(XA, yA, XC, yC, memo=memo, **kw)
    assert (memo.hits, memo.misses) == (3, 4)
    _assert_identical(fresh_b, memo_b)
    _assert_identical(fresh_b, memo_b_again)
    _assert_identical(fresh_c, memo_c)
    # results are copies: changing one does not change the memo
    memo_b[0].r2_test[:] = 99
    _assert_identical(fresh_b, _run(XA, yA, XB, yB, memo=memo, **kw))


def test_n_permutations_validated():
    XA, yA = _class(1, n=50)
    with pytest.raises(ScaleprobeError, match="n_permutations=0"):
        _run(XA, yA, XA, yA, n_permutations=0, n_train=10, n_test=10)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_all_zero_probes_give_pvalue_one():
    # #19.4: alpha=1e10 zeroes every coefficient, so every permutation's probe predicts
    # the same mean ratio and its R² equals the observed one up to rounding.
    XA, yA = _class(1, n=100)
    XB, yB = _class(2, n=100)
    (r,) = _run(XA, yA, XB, yB, alphas=[1e10], n_train=40, n_test=40, n_permutations=30)
    assert np.all(r.nnz == 0)
    null_means = r.r2_test_null.mean(axis=0)
    np.testing.assert_allclose(null_means, r.r2_test.mean(), rtol=0, atol=1e-12)
    assert r.pvalues()["r2_test_pvalue"] == 1.0
    # no direction: undefined correlation and angle, and centering leaves R² at 0
    assert np.isnan(r.pearson_test).all()
    assert np.isnan(r.pvalues()["angle_deg_pvalue"])
    np.testing.assert_allclose(r.r2_test_centered, 0.0, atol=1e-12)


@pytest.mark.parametrize("offset_in", ["targets", "features"])
def test_planted_class_offset_keeps_direction_and_centered_r2(offset_in):
    # Class B is A's kind of data with a class offset: its ratios shifted by 0.2, or its
    # features shifted along the shared direction so that A's probe predicts 0.2 less.
    XA, yA = _class(1)
    XB, yB = _class(2)
    plain = _run(XA, yA, XB, yB)
    if offset_in == "targets":
        yB = yB + 0.2
    else:
        scale = np.random.default_rng(0).uniform(0.5, 2.0, size=2 * D)[D:]  # _class's scale
        XB = XB - 0.4 * scale * _direction()  # standardized shift 0.4 * w; prediction -0.5 * 0.4
    offset = _run(XA, yA, XB, yB)
    for p, o in zip(plain, offset, strict=True):
        # a linear probe's predictions move by a constant: correlation and centered R² do not
        np.testing.assert_allclose(o.pearson_test, p.pearson_test, rtol=0, atol=1e-9)
        np.testing.assert_allclose(o.r2_test_centered, p.r2_test_centered, rtol=0, atol=1e-9)
        assert np.all(o.r2_test < p.r2_test - 0.1)
    p, o = plain[1], offset[1]  # the Lasso at the paper's alpha 1e-3
    # without the offset centering changes little; with it R² is lost and centering restores it
    assert np.all(p.r2_test_centered - p.r2_test < 0.05)
    assert np.all(o.r2_test < 0)
    assert np.all(o.r2_test_centered > o.r2_test + 1.0)
    assert np.all(o.r2_test_centered > 0.95)
    assert np.all(o.pearson_test > 0.95)


def test_any_probe_gets_r2_and_nulls_geometry_only_with_coef(monkeypatch):
    # #12.3: the protocol works with any GridProbe; the geometry needs coef_.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1] / "probe_plugin"))
    from ridge_probe import RidgeNoCoefProbe, RidgeProbe

    XA, yA = _class(1, n=100)
    XB, yB = _class(2, n=100)
    kw = dict(same_class=False, n_splits=2, n_train=60, n_test=40, seed=0, n_permutations=4)
    linear = evaluate_pair(XA, yA, XB, yB, probe=RidgeProbe(grid=[0.0, 1.0]), **kw)
    hidden = evaluate_pair(XA, yA, XB, yB, probe=RidgeNoCoefProbe(grid=[0.0, 1.0]), **kw)
    lasso0 = evaluate_pair(XA, yA, XB, yB, alphas=[0.0], **kw)[0]
    for a, b in zip(linear, hidden, strict=True):
        assert a.param == b.param == "l2"
        assert a.linear
        assert not b.linear
        assert tuple(a.metrics()) == METRIC_NAMES
        assert tuple(b.metrics()) == (
            "r2_train",
            "r2_test",
            "pearson_test",
            "r2_test_centered",
            "r2_test_shuffled",
        )
        np.testing.assert_allclose(b.r2_test, a.r2_test, atol=1e-10)
        np.testing.assert_allclose(b.r2_test_null, a.r2_test_null, atol=1e-10)
        assert b.coef is None
        assert b.angle_deg_null is None
        assert set(b.pvalues()) == {"r2_test_pvalue"}
        assert set(a.pvalues()) == {"r2_test_pvalue", "angle_deg_pvalue"}
    # ridge at l2=0 is least squares: the Lasso path's alpha=0
    np.testing.assert_allclose(linear[0].coef, lasso0.coef, atol=1e-8)
    np.testing.assert_allclose(linear[0].r2_test, lasso0.r2_test, atol=1e-8)
    assert np.all(linear[1].r2_train < linear[0].r2_train)


def test_evaluate_pair_takes_one_probe():
    XA, yA = _class(1, n=50)
    with pytest.raises(ScaleprobeError, match="exactly one of probe= and alphas="):
        evaluate_pair(XA, yA, XA, yA, same_class=True, n_splits=1, n_train=10, n_test=10, seed=0)


def test_shuffled_metrics_are_the_first_column_of_the_null():
    # #12.7: r2_test_shuffled is derived from r2_test_null[:, 0], not stored beside it
    XA, yA = _class(1, n=100)
    XB, yB = _class(2, n=100)
    (r,) = _run(XA, yA, XB, yB, alphas=[1e-2], n_train=40, n_test=40, n_permutations=3)
    assert {f.name for f in fields(PairResult)}.isdisjoint(
        {"r2_test_shuffled", "angle_deg_shuffled"}
    )
    np.testing.assert_array_equal(r.r2_test_shuffled, r.r2_test_null[:, 0])
    np.testing.assert_array_equal(r.angle_deg_shuffled, r.angle_deg_null[:, 0])
    np.testing.assert_array_equal(r.metrics()["r2_test_shuffled"], r.r2_test_null[:, 0])
