"""Parallel jobs on a cold cache: features extracted once, every run under the sweep's parent."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tiny_run import TINY

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]

# Each process extracts the same entry; a line per build_model call says who extracted.
RACER = textwrap.dedent(
    """
    import sys
    from PIL import Image
    from src.data.boxes import Box
    from src.data.records import ImageRecord
    from src.features.backbones import WeightsSource, build_backbone
    from src.features.cache import FeatureCache
    from src.features.extract import ExtractionSettings, Preprocessing, ensure_features

    images, cache_dir, log = sys.argv[1:4]
    records = [ImageRecord(f"i{i}", f"{images}/{i}.JPEG", "n0", 30, 30, Box(1, 1, 9, 9))
               for i in range(8)]

    def build():
        with open(log, "a") as handle:
            handle.write("built\\n")
        return build_backbone("resnet50", WeightsSource("random", "random-init-seed-0"))

    entry = ensure_features(
        FeatureCache(cache_dir), backbone="resnet50", weights="random",
        weights_sha256="random-init-seed-0", build_model=build, nodes=["layer1"],
        records=records, preprocessing=Preprocessing(size=32),
        settings=ExtractionSettings(batch_size=2, num_workers=1, progress=False),
    )["layer1"]
    print(entry.key, float(entry.features.sum()))
    """
)


def test_lock_makes_processes_extract_an_entry_once(tmp_path):
    images = tmp_path / "img"
    images.mkdir()
    for i in range(8):
        from PIL import Image

        Image.new("RGB", (30, 30), (i * 30, 20, 20)).save(images / f"{i}.JPEG", "JPEG")
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    log = tmp_path / "built.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, str(script), str(images), str(tmp_path / "cache"), str(log)]
    racers = [
        subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [racer.communicate(timeout=600) for racer in racers]
    for racer, (_, err) in zip(racers, outputs, strict=True):
        assert racer.returncode == 0, err[-2000:]
    assert log.read_text().count("built") == 1
    assert len({out for out, _ in outputs}) == 1  # same key, same features
    assert not list((tmp_path / "cache").glob(".partial-*"))


def test_joblib_sweep_on_cold_cache_extracts_once_and_logs_under_one_parent(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "src.run",
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "alpha=0,0.001,0.01",
            "pair=albatross_kite",
            "controls=[]",  # the count below is of the backbone's entries
            *TINY,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "database is locked" not in log
    assert log.count("extracting blocks.5") == 2, log[-3000:]  # once per class, not per job
    cache = tmp_path / "cache" / "features"
    assert len([p for p in cache.iterdir() if not p.name.startswith(".")]) == 2
    assert not list(cache.glob(".partial-*"))

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1
    assert parents[0].info.status == "FINISHED"
    assert len(children) == 3
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert {c.info.status for c in children} == {"FINISHED"}
    assert sorted(c.data.tags["scaleprobe.job_num"] for c in children) == ["0", "1", "2"]
