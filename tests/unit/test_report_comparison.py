"""The report's linear vs non-linear table on synthetic records (#15.3, no MLflow)."""

import numpy as np
import pytest

from src.errors import ScaleprobeError
from src.probes.metrics import summarize
from src.report.build import write_report
from src.report.comparison import choose_on_training, comparison_table
from src.report.runs import JobRecord, organize, organize_sweep
from tests.unit.test_report_tables import make_record

A, K = "n02058221", "n01608432"
SPLITS = 4


def _record(probe, param, value, pair, r2_cv, r2_test, linear, **params):
    """One job with a path whose grid has r2_cv and r2_test per split (3 values)."""
    metrics = {"r2_cv": r2_cv, "r2_test": r2_test, "r2_train": r2_test}
    if linear:
        metrics |= {"nnz": [[8] * SPLITS] * 3, "cos": [[0.5] * SPLITS] * 3}
    return JobRecord(
        run_id=f"{probe}-{pair[1]}-{value}",
        params={
            "train_class": pair[0], "test_class": pair[1], "probe": probe,
            "probe_param": param, param: str(value), "alpha": "0.001", "weights": "random",
            "backbone": "inception_v3", "layer": "mixed8", "data": "synthetic", "feature_dim": "64",
            "n_splits": str(SPLITS), "seed": "0", "n_train": "80", "n_test": "40", **params,
        },
        metrics={"r2_test": 0.5},
        path={"alphas": [0.1, 1.0, 10.0], "param": param, "metrics": metrics},
    )  # fmt: skip


# r2_cv picks the grid value; r2_test of a value the training side does not pick is higher,
# so a table that chose on the test split would show other numbers.
LIN_CV = [[0.1] * SPLITS, [0.5] * SPLITS, [0.3] * SPLITS]  # picks 1.0
LIN_TEST = [[0.9] * SPLITS, [0.40, 0.42, 0.38, 0.44], [0.95] * SPLITS]
NL_CV = [[0.2] * SPLITS, [0.1] * SPLITS, [0.7] * SPLITS]  # picks 10.0
NL_TEST = [[0.99] * SPLITS, [0.99] * SPLITS, [0.60, 0.55, 0.65, 0.62]]


def _sweep(**params):
    return [
        _record("lasso", "alpha", 0.001, (A, A), LIN_CV, LIN_TEST, True, **params),
        _record("ridge", "ridge_alpha", 1.0, (A, A), LIN_CV, LIN_TEST, True),
        _record("mlp", "mlp_alpha", 0.01, (A, A), NL_CV, NL_TEST, False),
    ]


def test_choice_is_made_on_inner_cv_not_the_test_split():
    choice = choose_on_training("mlp", _sweep()[2].path)
    assert choice.value == 10.0
    assert not choice.linear
    np.testing.assert_array_equal(choice.r2_test, NL_TEST[2])
    assert choose_on_training("old", {"alphas": [0], "param": "a", "metrics": {}}) is None


def test_table_rows_and_the_paired_gap():
    data = organize_sweep(_sweep(), 0.001)
    assert data.probe == "lasso"  # Tables 1-2 stay one probe's
    assert sorted(data.probes) == ["lasso", "mlp", "ridge"]
    table = comparison_table(data.probes)
    rows = {r["probe"]: r for r in table.rows}
    assert rows["ridge"]["chosen value"] == "ridge_alpha=1"
    assert rows["mlp"]["chosen value"] == "mlp_alpha=10"
    assert rows["mlp"]["kind"] == "non-linear"
    gap = np.array(NL_TEST[2]) - np.array(LIN_TEST[1])
    stats = summarize(gap)
    lo, hi = stats["mean"] - stats["ci95"], stats["mean"] + stats["ci95"]
    want = f"{stats['mean']:.3f} [{lo:.3f}, {hi:.3f}]"
    assert rows["gap: mlp - lasso"]["R² test [95% CI]"] == want


def test_no_gap_when_splits_differ_and_a_mix_of_shared_params_is_refused():
    records = _sweep()
    records[2].params["seed"] = "1"
    table = comparison_table(organize_sweep(records, 0.001).probes)
    assert not any(r["probe"].startswith("gap") for r in table.rows)
    assert any("splits differ" in n for n in table.notes)
    records[2].params["layer"] = "other"
    with pytest.raises(ScaleprobeError, match=r"probes \['lasso', 'mlp', 'ridge'\] differ in"):
        organize_sweep(records, 0.001)
    # one probe selected: the plain report of that probe
    assert organize_sweep(records, 0.001, {"probe": "ridge"}).probes == {}
    with pytest.raises(ScaleprobeError, match="several probes"):
        organize(records, 0.001)  # organize alone still shows one probe


def test_report_has_the_table_and_each_other_linear_probes_path_figures(tmp_path):
    lasso = [make_record(A, A, alpha, probe="lasso") for alpha in (0.0, 0.001)]
    data = organize_sweep([*lasso, *_sweep()[1:]], 0.001)
    names = {f.name for f in write_report(data, tmp_path, {})}
    assert "fig4_path_ridge.png" in names
    assert "fig4_path_mlp.png" not in names  # no coefficients, no sparsity path
    text = (tmp_path / "report.md").read_text()
    assert "### Linear vs non-linear probes" in text
    assert "| lasso | no r2_cv logged |" in text  # a run logged before inner CV
    assert "mlp_alpha=10" in text
