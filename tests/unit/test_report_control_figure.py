"""The nulls figure draws the in-job controls beside the observed R² (synthetic data)."""

import numpy as np
from PIL import Image

from src.report.build import FIGURES, write_report
from src.report.figures import null_figure
from src.report.runs import organize
from tests.unit.test_report_tables import sweep

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _pixels(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=int)


def _blue_fraction(image):
    blue = (image[..., 2] > image[..., 0] + 60) & (image[..., 2] > 150)
    return blue.mean()


def test_null_figure_draws_the_controls(tmp_path):
    null = np.random.default_rng(0).normal(-0.5, 0.2, size=200)
    panels = {"R², a": (null, 0.9, 0.01, "mean test R²")}
    plain = _pixels(null_figure(panels, tmp_path / "plain.png", "t"))
    drawn = _pixels(
        null_figure(
            panels,
            tmp_path / "controls.png",
            "t",
            {"R², a": {"random weights": (0.3, 0.05), "pixels": (0.6, 0.05)}},
        )
    )
    assert drawn.shape == plain.shape
    # the controls' lines and CI bands change the panel (blue and green pixels appear)
    assert np.mean(np.any(drawn != plain, axis=-1)) > 0.005
    assert _blue_fraction(plain) == 0
    assert _blue_fraction(drawn) > 0.001


def test_report_nulls_png_with_controls_is_valid(tmp_path):
    records = sweep()
    for record in records:
        for name, value in (("r2_test_random_weights", 0.4), ("r2_test_pixels", 0.3)):
            record.metrics.update({name: value, f"{name}_std": 0.02, f"{name}_ci95": 0.03})
    write_report(organize(records, 0.001), tmp_path, {})
    image = _pixels(tmp_path / FIGURES["nulls"])
    assert image.shape[0] > 200
    assert image.shape[1] > 300
    assert _blue_fraction(image) > 0.001  # the random-weights control's line and band
    write_report(organize(sweep(), 0.001), tmp_path, {})  # older runs: no controls drawn
    assert _blue_fraction(_pixels(tmp_path / FIGURES["nulls"])) == 0
