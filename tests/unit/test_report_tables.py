"""Report tables and records on synthetic records (no MLflow)."""

import numpy as np
import pytest

from src.errors import ScaleprobeError
from src.probes.geometry import cosine
from src.report.analysis import (
    alignment_curve,
    maps_for_fraction,
    path_summary,
    random_direction_stats,
    transfer_matrices,
)
from src.report.runs import JobRecord, job_record, organize
from src.report.tables import null_table, table1, table2, transfer_tables

A, K, C = "n02058221", "n01608432", "n04037443"
D = 64
N_SPLITS = 4


def _metrics(seed: float) -> dict[str, float]:
    out = {}
    names = ("r2_train", "r2_test", "nnz", "cos", "angle_deg", "pearson_test", "r2_test_centered")
    for i, name in enumerate(names):
        out[name] = seed + i
        out[f"{name}_std"] = 0.1 * seed + i
        out[f"{name}_ci95"] = 0.2 * seed + i
    out.update(
        r2_test_shuffled=-seed,
        angle_deg_shuffled=90 + seed,
        r2_test_pvalue=0.01 * seed,
        angle_deg_pvalue=0.02 * seed,
    )
    return out


def make_record(train, test, alpha, weights="random", seed=1.0, dim=D, **params):
    rng = np.random.default_rng(int(seed * 100))
    coef = rng.normal(size=(N_SPLITS, dim))
    if alpha > 0:
        coef[:, 8:] = 0.0  # a sparse probe
    record = job_record(
        f"run-{train}-{test}-{alpha}-{weights}",
        {
            "train_class": train,
            "test_class": test,
            "alpha": str(alpha),
            "weights": weights,
            "backbone": "inception_v3",
            "layer": "mixed8",
            "data": "synthetic",
            "feature_dim": str(dim),
            "n_splits": str(N_SPLITS),
            **params,
        },
        _metrics(seed),
    )
    path = {
        "alphas": [0.0, 1e-3, 1e-2],
        "metrics": {
            "nnz": [[dim] * N_SPLITS, [10, 12, 11, 9], [2, 3, 2, 3]],
            "r2_train": [[1.0] * N_SPLITS, [0.9, 0.8, 0.85, 0.9], [0.5, 0.6, 0.55, 0.5]],
            "r2_test": [[0.7, 0.6, 0.8, 0.7], [0.8, 0.7, 0.75, 0.8], [0.4, 0.5, 0.45, 0.4]],
        },
    }
    null = {
        "alpha": alpha,
        "n_permutations": 5,
        "r2_test": rng.normal(-0.5, 0.2, size=(N_SPLITS, 5)).tolist(),
        "angle_deg": rng.normal(90, 2, size=(N_SPLITS, 5)).tolist(),
    }
    return JobRecord(
        run_id=record.run_id,
        params=record.params,
        metrics=record.metrics,
        coef=coef,
        coef_test=rng.normal(size=(N_SPLITS, dim)),
        path=path,
        null=null,
    )


def sweep(weights=("random",), alphas=(0.0, 0.001), pairs=((A, A), (A, K), (A, C))):
    records, seed = [], 1.0
    for w in weights:
        for pair in pairs:
            for alpha in alphas:
                records.append(make_record(*pair, alpha, weights=w, seed=seed))
                seed += 1
    return records


def test_table1_cells_are_the_logged_metrics():
    records = sweep()
    data = organize(records, 0.001)
    assert data.pairs == [(A, A), (A, K), (A, C)]
    assert (data.nonreg_alpha, data.lasso_alpha) == (0.0, 0.001)
    table = table1(data)
    by_id = {r.run_id: r for r in records}
    for row, pair in zip(table.rows, data.pairs, strict=True):
        ols = by_id[f"run-{pair[0]}-{pair[1]}-0.0-random"].metrics
        las = by_id[f"run-{pair[0]}-{pair[1]}-0.001-random"].metrics
        assert row["R² non-reg (alpha=0)"] == (ols["r2_test"], ols["r2_test_std"])
        assert row["R² Lasso (alpha=0.001)"] == (las["r2_test"], las["r2_test_std"])
        assert row["p Lasso"] == las["r2_test_pvalue"]
        assert row["nnz Lasso"] == las["nnz"]
        assert row["pearson non-reg"] == (ols["pearson_test"], ols["pearson_test_std"])
        assert row["R² centered Lasso"] == (las["r2_test_centered"], las["r2_test_centered_std"])
        assert row["pearson Lasso"] == (las["pearson_test"], las["pearson_test_std"])
        assert row["R² centered non-reg"] == (
            ols["r2_test_centered"],
            ols["r2_test_centered_std"],
        )
    assert table.rows[0]["paper Lasso"] == (0.839, 0.023)
    assert table.rows[2]["paper non-reg"] == (0.086, 0.240)
    assert "every run of this sweep uses random weights" in table.to_markdown()
    assert "| albatross | kite |" in table.to_markdown()
    columns = table.columns
    assert columns.index("R² centered Lasso") == columns.index("pearson Lasso") + 1
    assert "the direction transfers but the class's offset" in table.to_markdown()


def test_table1_of_runs_without_the_offset_metrics_shows_no_value():
    records = sweep()
    for record in records:
        for name in ("pearson_test", "r2_test_centered"):
            for suffix in ("", "_std", "_ci95"):
                del record.metrics[f"{name}{suffix}"]
    row = table1(organize(records, 0.001)).rows[1]
    assert row["pearson Lasso"] is None
    assert row["R² centered non-reg"] is None
    assert row["R² Lasso (alpha=0.001)"] is not None


def test_table2_cells_random_directions_and_paper():
    data = organize(sweep(), 0.001)
    table = table2(data)
    las = data.get((A, K), 0.001).metrics
    row = table.rows[1]
    assert row["angle Lasso (alpha=0.001)"] == las["angle_deg"]
    assert row["cos Lasso"] == las["cos"]
    assert row["p angle Lasso"] == las["angle_deg_pvalue"]
    assert row["paper angle Lasso"] == 64.1
    assert row["paper cos non-reg"] == 0.315
    rand = table.rows[-1]
    assert rand["train"] == f"random directions (d={D})"
    mean, std = rand["angle non-reg (alpha=0)"]
    assert abs(mean - 90) < 3
    assert std == pytest.approx(np.degrees(1 / np.sqrt(D)), rel=0.25)
    md = table.to_markdown()
    assert "| albatross | racing car |" in md
    assert table.to_json()["rows"][1]["cos Lasso"] == las["cos"]


def test_random_weights_are_shown_beside_pretrained():
    data = organize(sweep(weights=("IMAGENET1K_V1", "random")), 0.001)
    assert data.weights == "IMAGENET1K_V1"
    assert len(data.random) == 6
    row = table1(data).rows[0]
    rnd = data.get((A, A), 0.001, random=True).metrics
    assert row["R² random weights Lasso"] == (rnd["r2_test"], rnd["r2_test_std"])
    assert table2(data).rows[0]["angle random weights Lasso"] == rnd["angle_deg"]


def test_nearest_alpha_when_reference_is_missing():
    data = organize(sweep(alphas=(0.0, 0.00126, 0.01)), 0.001)
    assert data.lasso_alpha == 0.00126
    assert "nearest alpha, 0.00126" in table1(data).to_markdown()
    assert organize(sweep(alphas=(0.0,)), 0.001).lasso_alpha is None
    assert table1(organize(sweep(alphas=(0.0,)), 0.001)).rows[0]["p Lasso"] is None


def test_organize_rejects_mismatched_runs():
    records = [*sweep(), make_record(A, A, 0.01, dim=32)]
    with pytest.raises(ScaleprobeError, match=r"mismatched feature dimensions \['32', '64'\]"):
        organize(records, 0.001)
    # selecting one layer's runs resolves it
    assert organize(records, 0.001, {"feature_dim": D}).feature_dim == D
    with pytest.raises(ScaleprobeError, match="mixes pretrained weights"):
        organize(sweep(weights=("IMAGENET1K_V1", "IMAGENET1K_V2")), 0.001)
    with pytest.raises(ScaleprobeError, match="matches none"):
        organize(sweep(), 0.001, {"layer": "mixed7"})
    with pytest.raises(ScaleprobeError, match="lacks the params"):
        job_record("r", {"alpha": "0"}, {})


def test_transfer_matrices_use_runs_then_coefficients():
    data = organize(sweep(), 0.001)
    m = transfer_matrices(data, 0.001)
    assert m.classes == [A, K, C]
    assert m.r2[0, 1] == data.get((A, K), 0.001).metrics["r2_test"]
    assert np.isnan(m.r2[1, 2])
    # symmetric fill from the logged cos of the reverse pair
    assert m.cos[1, 0] == m.cos[0, 1] == data.get((A, K), 0.001).metrics["cos"]
    # kite vs racing car: no job compared them; cosine of the logged test-class probes
    kite = data.get((A, K), 0.001).coef_test
    car = data.get((A, C), 0.001).coef_test
    expected = np.mean([cosine(kite[s], car[s]) for s in range(N_SPLITS)])
    assert m.cos[1, 2] == pytest.approx(expected)
    assert m.cos_source[1, 2] == "coef"
    r2_table, cos_table = transfer_tables(m, 0.001)
    assert cos_table.rows[1]["racing car"] == f"{expected:.3f}*"
    assert r2_table.rows[1]["racing car"] is None
    assert "| kite | — |" in r2_table.to_markdown()


def test_null_table_from_logged_null():
    data = organize(sweep(), 0.001)
    table = null_table(data)
    assert len(table.rows) == 6
    run = data.get((A, K), 0.001)
    row = next(r for r in table.rows if r["test"] == "kite" and r["alpha"] == 0.001)
    assert row["p R²"] == run.metrics["r2_test_pvalue"]
    mean = np.mean(np.mean(run.null["r2_test"], axis=0))
    assert row["null R² (mean [2.5%, 97.5%])"].startswith(f"{mean:.3f} [")


def test_alignment_counts_on_planted_probes():
    coef = np.zeros((3, 100))
    coef[:, :10] = 1.0  # 10 equal maps: 90% of the norm needs 9 of them (0.9² = 0.81)
    np.testing.assert_array_equal(maps_for_fraction(coef, 0.9), [9, 9, 9])
    np.testing.assert_array_equal(maps_for_fraction(coef, 0.99), [10, 10, 10])
    assert np.isnan(maps_for_fraction(np.zeros((1, 5)), 0.9)[0])
    curve = alignment_curve(coef, top=20)
    assert curve.mean.shape == (20,)
    assert curve.mean[9] == pytest.approx(1.0)
    np.testing.assert_allclose(curve.ci95, 0.0, atol=1e-12)


def test_path_summary_and_random_directions():
    summary = path_summary(make_record(A, A, 0.001).path)
    np.testing.assert_allclose(summary.nnz, [D, 10.5, 2.5])
    np.testing.assert_allclose(summary.r2_test, [0.7, 0.7625, 0.4375])
    assert np.all(summary.r2_test_ci95 > 0)
    stats = random_direction_stats(1280, 200)
    assert abs(stats["angle_deg"] - 90) < 0.5
    assert abs(stats["cos"]) < 0.01


def test_runs_are_keyed_by_probe_and_its_hyperparameter():
    # #12.3: a probe's runs are keyed by the value of the hyperparameter it declares
    # (logged as probe_param), not by the alpha param, and one report shows one probe.
    ridge = [
        make_record(*pair, 0.0, probe="ridge", probe_param="l2", l2=str(value), seed=value + 1)
        for pair in ((A, A), (A, K))
        for value in (0.0, 10.0)
    ]
    data = organize(ridge, 0.001)
    assert (data.probe, data.param) == ("ridge", "l2")
    assert data.alphas == [0.0, 10.0]
    assert sorted(data.main) == sorted([(A, A, 0.0), (A, A, 10.0), (A, K, 0.0), (A, K, 10.0)])
    assert data.get((A, K), 10.0).params["l2"] == "10.0"
    # runs logged before the seam are the Lasso, keyed by alpha
    lasso = organize(sweep(), 0.001)
    assert (lasso.probe, lasso.param) == ("lasso", "alpha")
    with pytest.raises(ScaleprobeError, match=r"several probes \['lasso', 'ridge'\].*select.probe"):
        organize([*sweep(), *ridge], 0.001)
    assert organize([*sweep(), *ridge], 0.001, {"probe": "ridge"}).probe == "ridge"
    with pytest.raises(ScaleprobeError, match=r"lacks the params \['l2'\]"):
        job_record("r", {k: v for k, v in ridge[0].params.items() if k != "l2"}, {})


def _add_controls(record, shift):
    for name, value in (
        ("r2_test_random_weights", 0.5 + shift),
        ("r2_test_pixels", 0.4 + shift),
        ("r2_test_gap_random_weights", 0.15 + shift),
        ("r2_test_gap_pixels", -0.02 + shift),
    ):
        record.metrics.update({name: value, f"{name}_std": 0.01, f"{name}_ci95": 0.05})


def test_table1_shows_the_in_job_controls_with_paired_cis():
    records = sweep()
    for i, record in enumerate(records):
        _add_controls(record, 0.1 * i)
    data = organize(records, 0.001)
    table = table1(data)
    las = data.get((A, K), 0.001).metrics
    row = table.rows[1]
    assert row["R² random-weights control Lasso"] == (
        las["r2_test_random_weights"],
        las["r2_test_random_weights_std"],
    )
    assert row["R² pixels control Lasso"] == (las["r2_test_pixels"], 0.01)
    gap = las["r2_test_gap_random_weights"]
    assert row["gap to random weights Lasso"] == (gap, gap - 0.05, gap + 0.05)
    ols = data.get((A, A), 0.0).metrics
    assert table.rows[0]["gap to pixels non-reg"] == pytest.approx(
        (
            ols["r2_test_gap_pixels"],
            ols["r2_test_gap_pixels"] - 0.05,
            ols["r2_test_gap_pixels"] + 0.05,
        )
    )
    md = table.to_markdown()
    assert "| 0.150 [0.100, 0.200] |" in md  # the first run's gap to random weights
    assert "paired 95% CI over splits" in md
    assert table.to_json()["rows"][1]["gap to random weights Lasso"] == [
        gap,
        gap - 0.05,
        gap + 0.05,
    ]


def test_table1_of_runs_without_controls_has_no_control_columns():
    table = table1(organize(sweep(), 0.001))
    assert not [c for c in table.columns if "control" in c or c.startswith("gap")]
    assert "paired 95% CI" not in table.to_markdown()
