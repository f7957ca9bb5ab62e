"""Tests for src.targets.table.CsvTarget: the join, the skip/error policy, bad input."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from tiny_run import TINY, assert_one_line_and_nothing_cached

from src.config import validate_config
from src.data.boxes import Box
from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.targets import build_target
from src.targets.select import probe_rows, target_rows
from src.targets.table import CsvTarget

BOX = Box(0, 0, 10, 10)
RECORDS = [ImageRecord(f"im{i}", f"/x/im{i}.JPEG", "n1", 20, 20, BOX) for i in range(6)]

TABLE = """image_id,blur,other
im0,0.5,a
im1,1.5,b
im2,nan,c
im3,abc,d
im4,2.0,e
im4,3.0,f
"""  # im2: not finite, im3: not a number, im4: twice, im5: no row


def cfg_overrides(table):
    return ["target=csv", f"target.path={table}", "target.column=blur"]


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "factors.csv"
    path.write_text(TABLE)
    return path


def test_skip_keeps_the_images_with_one_finite_value_and_counts_the_rest(table):
    target = CsvTarget(str(table), "blur")
    rows, dropped = target.rows(RECORDS)
    np.testing.assert_array_equal(rows, [0, 1])
    assert dropped == {"missing_row": 1, "duplicate_id": 1, "not_a_number": 2}
    np.testing.assert_array_equal(target.values(RECORDS[:2]), [0.5, 1.5])
    assert target.label == "blur (from factors.csv)"


def test_probe_rows_select_feature_rows_by_index_and_log_per_class(table, caplog):
    features = {"n1": np.arange(12.0).reshape(6, 2)}
    with caplog.at_level(logging.INFO, logger="src.targets.select"):
        ((X, y),) = probe_rows(CsvTarget(str(table), "blur"), features, {"n1": RECORDS}).values()
    np.testing.assert_array_equal(X, [[0, 1], [2, 3]])
    np.testing.assert_array_equal(y, [0.5, 1.5])
    assert "class n1: target csv has a value for 2 of 6 images; left out" in caplog.text
    assert "'duplicate_id': 1" in caplog.text


@pytest.mark.parametrize(
    ("records", "message"),
    [
        (RECORDS[2:3], r"image im2 \(/x/im2.JPEG\) has not a number \(row 4: 'nan'\)"),
        (RECORDS[3:4], r"image im3 .* has not a number \(row 5: 'abc'\)"),
        (RECORDS[4:5], r"image im4 .* has duplicate id \(rows 6, 7\)"),
        (RECORDS[:6], r"image im2 .*on_missing=skip leaves such images out"),
    ],
)
def test_error_names_the_first_offending_image_and_row(table, records, message):
    with pytest.raises(ScaleprobeError, match=message) as info:
        CsvTarget(str(table), "blur", on_missing="error").rows(records)
    assert "\n" not in str(info.value)


def test_a_missing_row_under_error_names_the_image(table):
    with pytest.raises(ScaleprobeError, match=r"image im5 .*no row with image_id='im5'"):
        CsvTarget(str(table), "blur", on_missing="error").rows(RECORDS[:2] + RECORDS[5:])


def test_a_relative_path_is_found_under_the_data_root(table, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path.parent)
    target = CsvTarget("factors.csv", "blur", root=str(tmp_path))
    assert target.path == table.resolve()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "nowhere.csv"}, r"target.path='nowhere.csv': no such file"),
        ({"column": "size"}, r"target.column='size' is not a column of .*\['image_id', 'blur',"),
        ({"id_column": "stem"}, r"target.id_column='stem' is not a column"),
        ({"on_missing": "drop"}, r"target.on_missing='drop' is not allowed; choose from \['skip'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(table, kwargs, message):
    arguments = {"path": str(table), "column": "blur", **kwargs}
    with pytest.raises(ScaleprobeError, match=message) as info:
        CsvTarget(**arguments)
    assert "\n" not in str(info.value)


def test_an_id_column_matching_no_image_is_one_line(table):
    target = CsvTarget(str(table), "other", id_column="blur")
    with pytest.raises(ScaleprobeError, match=r"target.id_column='blur' of .* matches no image"):
        target_rows(target, {"n1": RECORDS})


def test_the_csv_config_builds_and_its_keys_are_checked(compose_config, table):
    cfg = compose_config(cfg_overrides(table))
    validate_config(cfg)
    target = build_target(cfg.target)
    assert isinstance(target, CsvTarget)
    assert (target.name, target.id_column, target.on_missing) == ("csv", "image_id", "skip")
    bad = compose_config([*cfg_overrides(table), "target.on_missing=drop"])
    with pytest.raises(ScaleprobeError, match=r"target\.on_missing='drop' is not allowed"):
        validate_config(bad)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["target.path=TMP/nowhere.csv"], r"target.path='.*nowhere.csv': no such file"),
        (  # a relative path that is neither under the working directory nor the data root
            ["target.path=nowhere.csv"],
            r"target.path='nowhere.csv': no such file \(nowhere.csv or .*synthetic/nowhere.csv\)",
        ),
        (
            ["target.column=size"],
            r"target.column='size' is not a column of .*factors.csv; its columns: \['image_id', "
            r"'blur', 'other'\]",
        ),
        (["target.id_column=other"], r"target.id_column='other' of .*factors.csv matches no image"),
    ],
)
def test_a_bad_csv_target_stops_the_run_in_one_line_and_caches_nothing(
    overrides, message, table, compose_config, shared_dirs, tmp_path
):
    # #14.7: the run stops at the target, after the records, before any extraction.
    overrides = [o.replace("TMP", str(tmp_path)) for o in overrides]
    cfg = compose_config([*TINY, *cfg_overrides(table), *overrides])
    assert_one_line_and_nothing_cached(cfg, shared_dirs, tmp_path, message)
    assert not (tmp_path / "mlruns" / "mlflow.db").exists() or _no_runs(tmp_path / "mlruns")


def _no_runs(mlruns) -> bool:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{mlruns / 'mlflow.db'}")
    return all(not client.search_runs([e.experiment_id]) for e in client.search_experiments())
