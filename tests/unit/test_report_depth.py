"""The layer-scan section of the report on synthetic records (#17.3, no MLflow)."""

from dataclasses import replace

from PIL import Image

from src.report.build import _organize_scan, write_report
from src.report.depth import DEPTH_FIGURE, depth_rows, depth_table
from tests.unit.test_report_tables import A, K, make_record

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Logged out of network order, with a dimension each, so order and nnz / d can fail.
LAYERS = (("blocks.2", 2, 40), ("blocks.0", 0, 16), ("blocks.1", 1, 24))


def _scan():
    records = []
    for layer, depth, dim in LAYERS:
        for pair in ((A, A), (A, K)):
            for alpha in (0.0, 0.001):
                record = make_record(
                    *pair, alpha, seed=1.0 + depth, dim=dim, layer=layer, layer_depth=str(depth)
                )
                metrics = dict(record.metrics)
                metrics.update(
                    r2_test_random_weights=0.1 * depth,
                    r2_test_random_weights_std=0.04,
                    r2_test_random_weights_ci95=0.05,
                    r2_test_pixels=0.2,
                    r2_test_pixels_std=0.008,
                    r2_test_pixels_ci95=0.01,
                    angle_deg=10.0 * depth + (pair[0] != pair[1]) * 50.0,
                )
                records.append(replace(record, metrics=metrics))
    return records


def test_rows_follow_network_order_and_read_the_reference_run():
    rows = depth_rows(_scan(), 0.001)
    assert [r.layer for r in rows] == ["blocks.0", "blocks.1", "blocks.2"]
    for row, depth, dim in zip(rows, (0, 1, 2), (16, 24, 40), strict=True):
        assert row.run.alpha == 0.001
        assert row.run.pair == (A, A)
        assert row.feature_dim == dim
        assert row.r2["trained"] == (row.run.metrics["r2_test"], row.run.metrics["r2_test_ci95"])
        assert row.r2["random weights"] == (0.1 * depth, 0.05)
        assert row.r2["shuffled null"][0] == row.run.metrics["r2_test_shuffled"]
        assert row.nnz_fraction == row.run.metrics["nnz"] / dim
        assert row.angle_within == 10.0 * depth
        assert row.angle_cross == 10.0 * depth + 50.0


def test_table_cells():
    table = depth_table(depth_rows(_scan(), 0.001))
    assert [r["layer"] for r in table.rows] == ["blocks.0", "blocks.1", "blocks.2"]
    last = table.rows[2]
    assert last["d"] == "40"
    assert last["R² pixels"] == (0.2, 0.01)
    assert last["nnz / d"] == (1.0 + 2 + 2) / 40  # make_record: nnz = seed + 2
    md = table.to_markdown()
    assert "| 2 | blocks.2 | 40 |" in md
    assert "70.0" in md  # angle cross of blocks.2


def test_write_report_draws_depth_png_and_shows_the_deepest_layer(tmp_path):
    data = _organize_scan(_scan(), 0.001, {})
    assert data.shared["layer"] == "blocks.2"
    assert len(data.scan) == 12
    files = write_report(data, tmp_path, {"parent run": "p"})
    path = tmp_path / DEPTH_FIGURE
    assert path in files
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.size[0] > 600
    md = (tmp_path / "report.md").read_text()
    assert f"]({DEPTH_FIGURE})" in md
    assert "### Test R² against depth" in md


def test_one_layer_sweep_has_no_depth_section(tmp_path):
    records = [r for r in _scan() if r.params["layer"] == "blocks.1"]
    data = _organize_scan(records, 0.001, {})
    assert not data.scan
    files = write_report(data, tmp_path, {})
    assert tmp_path / DEPTH_FIGURE not in files
    assert not (tmp_path / DEPTH_FIGURE).exists()
    select = _organize_scan(_scan(), 0.001, {"layer": "blocks.0"})
    assert not select.scan
    assert select.feature_dim == 16
