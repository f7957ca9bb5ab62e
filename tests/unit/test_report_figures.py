"""Report files from synthetic records (no MLflow): valid PNGs, Markdown and JSON."""

import json

from PIL import Image

from src.report.build import FIGURES, write_report
from src.report.runs import organize
from tests.unit.test_report_tables import A, C, K, sweep

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_write_report_writes_valid_pngs_and_tables(tmp_path):
    data = organize(sweep(), 0.001)
    files = write_report(data, tmp_path / "out", {"parent run": "p123"})
    names = {f.name for f in files}
    assert {"report.md", "report.json", *FIGURES.values()} == names
    for name in FIGURES.values():
        path = tmp_path / "out" / name
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.size[0] > 300
            assert image.size[1] > 200
    md = (tmp_path / "out" / "report.md").read_text()
    for name in FIGURES.values():
        assert f"]({name})" in md
    assert "p123" in md
    for title in ("Table 1", "Table 2", "Permutation nulls", "Transfer R²", "Alignment"):
        assert f"### {title}" in md
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["runs"][f"{A}|{K}|0.001"] == data.get((A, K), 0.001).run_id
    table1 = next(t for t in report["tables"] if t["title"].startswith("Table 1"))
    assert table1["rows"][2]["test"] == "racing car"
    metrics = data.get((A, C), 0.001).metrics
    assert table1["rows"][2]["R² Lasso (alpha=0.001)"] == [
        metrics["r2_test"],
        metrics["r2_test_std"],
    ]

    # a report without cross-class pairs or Lasso runs, into the same directory,
    # replaces the figures of the first and says what it cannot show
    small = organize(sweep(alphas=(0.0,), pairs=((A, A),)), 0.001)
    names = {f.name for f in write_report(small, tmp_path / "out", {})}
    assert FIGURES["fig3"] in names
    assert FIGURES["fig5"] not in names
    assert not (tmp_path / "out" / FIGURES["fig5"]).exists()
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Fig. 5: Lasso path of scale, across classes: no such pair in this sweep." in md
