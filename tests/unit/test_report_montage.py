"""The report embeds the reference-alpha within-class run's montage, when one was logged."""

from dataclasses import replace

import numpy as np
from PIL import Image

from src.report.build import write_report
from src.report.montage import MONTAGE
from src.report.runs import organize
from tests.unit.test_report_tables import A, K, sweep


def test_report_copies_the_within_class_montage_and_says_when_there_is_none(tmp_path):
    data = organize(sweep(), 0.001)
    Image.fromarray(np.full((10, 12, 3), 200, dtype=np.uint8)).save(tmp_path / "m.png")
    png = (tmp_path / "m.png").read_bytes()
    cross = data.get((A, K), 0.001)  # a cross-class montage is not the one shown
    data.main[(A, K, 0.001)] = replace(cross, montage=b"not this one")
    same = next(p for p in data.pairs if p[0] == p[1])
    data.main[(*same, 0.001)] = replace(data.get(same, 0.001), montage=png)
    files = write_report(data, tmp_path / "out", {})
    assert (tmp_path / "out" / MONTAGE).read_bytes() == png
    assert tmp_path / "out" / MONTAGE in files
    md = (tmp_path / "out" / "report.md").read_text()
    assert f"![stable maps]({MONTAGE})" in md

    # none logged: an earlier report's montage is not left behind, and the report says so
    files = write_report(organize(sweep(), 0.001), tmp_path / "out", {})
    assert not (tmp_path / "out" / MONTAGE).exists()
    assert "logged a montage" in (tmp_path / "out" / "report.md").read_text()
