"""The "What this sweep supports" paragraph: each wording branch on synthetic records."""

import json
import math

import pytest

from src.report.build import write_report
from src.report.runs import organize
from src.report.summary import gap_verdict, sweep_summary
from tests.unit.test_report_tables import A, C, K, sweep


def _set(record, **metrics):
    for name, (mean, half) in metrics.items():
        record.metrics.update({name: mean, f"{name}_std": half, f"{name}_ci95": half})


def _data(within=None, across=None, pvalue=0.01, n_permutations=5):
    """A sweep whose Lasso runs carry the given metrics (within: A→A; across: A→K, A→C)."""
    records = sweep()
    for record in records:
        if record.alpha != 0.001:
            continue
        record.metrics["r2_test_pvalue"] = pvalue
        record.null["n_permutations"] = n_permutations
        given = within if record.test_class == A else across
        _set(record, **(given or {}))
    return organize(records, 0.001)


@pytest.mark.parametrize(
    ("mean", "half", "verdict"),
    [(0.15, 0.05, "exceeds"), (0.04, 0.05, "does not exceed"), (-0.1, 0.05, "is below")],
)
def test_gap_verdict_by_ci(mean, half, verdict):
    assert gap_verdict(mean, half) == verdict


def test_summary_words_each_control_by_its_ci():
    within = {
        "r2_test": (0.98, 0.01),
        "r2_test_random_weights": (0.83, 0.02),
        "r2_test_gap_random_weights": (0.15, 0.05),
        "r2_test_pixels": (0.96, 0.02),
        "r2_test_gap_pixels": (0.02, 0.05),
    }
    text = sweep_summary(_data(within))
    assert text.startswith("Within-class R² (albatross, alpha=0.001: 0.98) exceeds the random")
    assert "exceeds the random-weights control (R² 0.83; gap 0.15 [0.10, 0.20])" in text
    assert "does not exceed the pixel control (R² 0.96; gap 0.02 [-0.03, 0.07])" in text
    within["r2_test_gap_pixels"] = (-0.2, 0.05)
    assert "is below the pixel control (R² 0.96; gap -0.20 [-0.25, -0.15])" in sweep_summary(
        _data(within)
    )


def test_summary_without_controls_says_so():
    text = sweep_summary(_data())
    assert "no in-job controls were logged" in text
    assert "control (" not in text


def test_summary_reads_the_pvalue_against_level_and_floor():
    # 5 permutations: the floor is 1/6 ≥ 0.05, no p can be significant
    text = sweep_summary(_data(pvalue=1 / 6, n_permutations=5))
    assert "5 permutations cannot reach p < 0.05 (floor 1/(n_permutations+1) = 0.167)" in text
    text = sweep_summary(_data(pvalue=1 / 31, n_permutations=30))
    assert "p = 0.0323 against the shuffled null, the smallest 30 permutations can give" in text
    text = sweep_summary(_data(pvalue=0.002, n_permutations=999))
    assert "p = 0.002 < 0.05 against the shuffled null" in text
    text = sweep_summary(_data(pvalue=0.3, n_permutations=999))
    assert "p = 0.3 ≥ 0.05: not distinguishable from the shuffled null" in text


def test_summary_words_transfer_from_pearson_and_centred_r2():
    offset = {"r2_test": (-0.8, 0.1), "pearson_test": (0.65, 0.1), "r2_test_centered": (0.6, 0.1)}
    text = sweep_summary(_data(across=offset))
    assert (
        "Across classes, to kite the direction transfers (pearson 0.65) but the offset does not "
        "(R² -0.80, centred R² 0.60); to racing car" in text
    )
    both = {"r2_test": (0.7, 0.1), "pearson_test": (0.85, 0.1), "r2_test_centered": (0.75, 0.1)}
    assert "transfers (pearson 0.85) and so does the offset (R² 0.70" in sweep_summary(
        _data(across=both)
    )
    none = {"r2_test": (-0.5, 0.1), "pearson_test": (0.2, 0.1), "r2_test_centered": (-0.1, 0.1)}
    assert "to kite the direction does not transfer (pearson 0.20; R² -0.50" in sweep_summary(
        _data(across=none)
    )
    constant = {**none, "pearson_test": (math.nan, 0.0)}
    assert "does not transfer (pearson nan" in sweep_summary(_data(across=constant))


def test_summary_of_a_sweep_with_one_pair():
    data = organize(sweep(pairs=((A, A),)), 0.001)
    assert "This sweep has no cross-class pair." in sweep_summary(data)
    data = organize(sweep(pairs=((K, C),)), 0.001)
    assert "This sweep has no within-class pair." in sweep_summary(data)


def test_report_md_opens_with_the_summary(tmp_path):
    data = _data(across={"pearson_test": (0.65, 0.1)})
    write_report(data, tmp_path, {"parent run": "p1"})
    md = (tmp_path / "report.md").read_text()
    heading = md.index("## What this sweep supports")
    assert heading < md.index("## Fig. 3")
    assert sweep_summary(data) in md[heading:]
    assert json.loads((tmp_path / "report.json").read_text())["summary"] == sweep_summary(data)
