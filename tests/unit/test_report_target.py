"""#14.5: the report names the sweep's target; the paper's numbers only for target=scale."""

from __future__ import annotations

import pytest

from src.report import build
from src.report.build import write_report
from src.report.runs import organize
from src.report.tables import alignment_table, null_table, table1, table2
from tests.unit.test_report_tables import sweep

POSITION = {"target": "position", "target_label": "box centre x / image width"}
PAPER_NUMBERS = ("0.874", "0.839", "paper")


def _data(params: dict[str, str]):
    records = sweep()
    for record in records:
        record.params.update(params)
    return organize(records, 0.001)


def test_another_target_names_itself_and_shows_no_paper_columns():
    data = _data(POSITION)
    assert (data.target, data.paper_target, data.target_values) == (
        "position",
        False,
        "position values",
    )
    one, two, nulls = table1(data), table2(data), null_table(data)
    assert one.title.startswith("Table 1: position prediction")
    assert "position probes" in two.title
    assert nulls.title == "Permutation nulls (shuffled position values)"
    for table in (one, two, nulls):
        assert not [c for c in table.columns if "paper" in c], table.columns
        text = table.to_markdown()
        assert "ratio" not in text
        assert "the paper" not in text
    assert "shuffled position values" in one.to_markdown()
    run = data.get(data.pairs[0], 0.001)
    alignment = alignment_table(data, {"Lasso": (run, run.coef)})
    assert "paper" not in alignment.columns
    assert "paper" not in alignment.rows[0]


@pytest.mark.parametrize("params", [{}, {"target": "scale"}])
def test_the_scale_target_keeps_the_papers_columns(params):
    data = _data(params)  # {}: runs logged before the target seam regressed the scale
    assert data.paper_target
    one, two = table1(data), table2(data)
    assert one.title.startswith("Table 1: scale prediction")
    assert {"paper non-reg", "paper Lasso"} <= set(one.columns)
    assert "paper cos Lasso" in two.columns
    assert null_table(data).title == "Permutation nulls (shuffled ratios)"


def test_the_report_of_another_target_has_no_paper_numbers(tmp_path, monkeypatch):
    drawn = []
    real = build.alignment_figure
    monkeypatch.setattr(
        build, "alignment_figure", lambda *a, **k: drawn.append(k["paper"]) or real(*a, **k)
    )
    write_report(_data(POSITION), tmp_path / "position", {"parent run": "p1"})
    md = (tmp_path / "position" / "report.md").read_text()
    sections = md.split("## Runs")[0]
    for number in PAPER_NUMBERS:
        assert number not in sections, number
    assert "Fig. 4: Lasso path of position, same class" in md
    assert "ratio" not in sections
    assert "- target: `position` (box centre x / image width)" in md
    write_report(_data({}), tmp_path / "scale", {"parent run": "p2"})
    md = (tmp_path / "scale" / "report.md").read_text()
    assert "the paper's non-reg R² is 0.874" in md
    assert "Fig. 4: Lasso path of scale, same class" in md
    assert drawn == [False, True]  # Fig. 3's paper line: scale only
