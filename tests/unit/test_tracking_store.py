"""A local MLflow store that cannot be written stops a run before any work (issue 19.7).

Root ignores file modes, so the read-only store is injected: ``os.open`` fails
with EROFS for paths under the store, as on a read-only mount.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from omegaconf import open_dict

from src.errors import ScaleprobeError
from src.job import run
from src.tracking.store import TrackingTarget, check_reachable


def _read_only(monkeypatch: pytest.MonkeyPatch, root: Path, *, writes_only: bool = True) -> None:
    real_open = os.open

    def fake_open(path, flags, *args, **kwargs):
        inside = Path(path) == root or root in Path(path).parents
        writing = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if inside and (writing or not writes_only):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)


def _target(root: Path) -> TrackingTarget:
    return TrackingTarget(f"sqlite:///{root}/mlflow.db", artifact_location=str(root / "artifacts"))


def test_read_only_store_directory_is_one_line(tmp_path, monkeypatch):
    root = tmp_path / "mlruns"
    root.mkdir()
    _read_only(monkeypatch, root)
    with pytest.raises(ScaleprobeError) as info:
        check_reachable(_target(root))
    assert str(info.value) == (
        f"MLflow store directory {root} cannot be written (Read-only file system); make it "
        "writable or set paths.mlruns_dir to a writable directory"
    )


def test_read_only_database_file_is_one_line(tmp_path, monkeypatch):
    root = tmp_path / "mlruns"
    root.mkdir()
    (root / "mlflow.db").write_bytes(b"")
    _read_only(monkeypatch, root / "mlflow.db")
    with pytest.raises(ScaleprobeError, match=r"MLflow store database .*mlflow\.db cannot be"):
        check_reachable(_target(root))


def test_read_only_artifact_root_is_one_line(tmp_path, monkeypatch):
    root = tmp_path / "mlruns"
    (root / "artifacts").mkdir(parents=True)
    _read_only(monkeypatch, root / "artifacts")
    with pytest.raises(ScaleprobeError, match=r"MLflow store artifact directory .* cannot be"):
        check_reachable(_target(root))


def test_writable_store_passes_and_leaves_no_probe_file(tmp_path):
    root = tmp_path / "mlruns"
    check_reachable(_target(root))
    assert sorted(p.name for p in root.iterdir()) == ["artifacts"]
    assert list((root / "artifacts").iterdir()) == []


def test_run_stops_before_any_extraction(cfg_tiny, tmp_path, monkeypatch):
    with open_dict(cfg_tiny):
        cfg_tiny.paths.cache_dir = str(tmp_path / "cache")
    root = Path(cfg_tiny.paths.mlruns_dir)
    root.mkdir()
    _read_only(monkeypatch, root)
    with pytest.raises(ScaleprobeError, match=r"MLflow store directory .* cannot be written"):
        run(cfg_tiny)
    assert not (tmp_path / "cache").exists()


def test_an_experiment_created_by_another_process_meanwhile_is_used(tmp_path, monkeypatch):
    """Two members start at once: both see no experiment, the second create loses the race."""
    from mlflow.tracking import MlflowClient

    from src.tracking.log import get_experiment_id

    target = _target(tmp_path)
    winner = get_experiment_id(target)  # the other process's create
    looks = []
    original = MlflowClient.get_experiment_by_name

    def lookup(self, name):  # this process looked before that create landed
        looks.append(name)
        return None if len(looks) == 1 else original(self, name)

    monkeypatch.setattr(MlflowClient, "get_experiment_by_name", lookup)
    assert get_experiment_id(target) == winner
