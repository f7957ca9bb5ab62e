"""The report's stable-maps table, from the stability.json a Lasso job logs (no MLflow)."""

import json
from dataclasses import replace

import numpy as np
from test_report_tables import A, K, make_record

from src.probes.stability import stable_maps
from src.report.runs import organize
from src.report.stable_maps import stable_maps_table


def _stability(seed):
    """Planted selections: maps 2 and 5 in every fit, map 7 in half, the rest never."""
    rng = np.random.default_rng(seed)
    coef = np.zeros((10, 9))
    coef[:, 2] = 0.3 + 0.01 * rng.normal(size=10)
    coef[:, 5] = -0.6
    coef[::2, 7] = 0.1
    return stable_maps(coef[:4], coef[4:], threshold=0.8)


def test_table_lists_the_stable_maps_of_each_lasso_run_with_mean_coef():
    maps = {A: _stability(0), K: _stability(1)}
    records = [
        replace(make_record(A, test, alpha), stability=json.loads(maps[test].to_json()))
        if alpha > 0
        else make_record(A, test, alpha)
        for test in (A, K)
        for alpha in (0.0, 0.001)
    ]
    table = stable_maps_table(organize(records, 0.001))
    assert [row["map"] for row in table.rows] == ["5", "2", "5", "2"]  # |coef| 0.6 first
    for row in table.rows:
        m = int(row["map"])
        assert row["frequency"] == 1.0
        assert row["alpha"] == 0.001
        np.testing.assert_allclose(
            row["mean coef"], maps[A if row["test"] == "albatross" else K].mean_coef[m]
        )
    assert "7" not in [row["map"] for row in table.rows]
    assert "| 5 |" in table.to_markdown().replace("  ", " ")


def test_no_stability_logged_says_so():
    table = stable_maps_table(organize([make_record(A, A, 0.001)], 0.001))
    assert table.rows == []
    assert "No Lasso run" in table.notes[0]
