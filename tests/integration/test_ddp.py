"""Extraction across processes (issue 18.5): Lightning DDP on the CPU, 2 processes on gloo.

``extract.accelerator=cpu extract.devices=2`` spawns two ranks; each writes its
batches' rows into the shared memmaps by dataset index. The entry must be the
one-process entry byte for byte, its rows in the records' order. On the CPU the
last bits of a convolution depend on its intra-op thread count (measured: 1 vs
2 threads differ in ``layer2``), and Lightning gives each rank ``cores //
devices`` threads (unless ``OMP_NUM_THREADS`` is set), so the one process runs
with as many.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from src.data.boxes import Box
from src.data.records import ImageRecord
from src.errors import ScaleprobeError
from src.features.backbones import WeightsSource, build_backbone
from src.features.cache import FeatureCache
from src.features.extract import ExtractionSettings, Preprocessing, ensure_features

SOURCE = WeightsSource("random", "random-init-seed-0")
NODES = ["layer1", "layer2"]


def _records(root, n: int) -> list[ImageRecord]:
    """``n`` small JPEGs with distinct content and sizes."""
    from PIL import Image

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        path = root / f"img_{i}.JPEG"
        Image.fromarray(rng.integers(0, 255, (40 + i, 50, 3), dtype=np.uint8)).save(path)
        records.append(ImageRecord(f"img_{i}", str(path), "n0", 50, 40 + i, Box(5, 5, 30, 30)))
    return records


def _extract(cache_dir, records, devices: int):
    settings = ExtractionSettings(
        batch_size=3, num_workers=0, accelerator="cpu", devices=devices, progress=False
    )
    return ensure_features(
        FeatureCache(cache_dir),
        backbone="resnet50",
        weights=SOURCE.label,
        weights_sha256=SOURCE.sha256,
        build_model=lambda: build_backbone("resnet50", SOURCE),
        nodes=NODES,
        records=records,
        preprocessing=Preprocessing(size=64),
        settings=settings,
    )


# What a one-task SLURM job sets (sbatch --ntasks-per-node=1, the submitit launcher): the
# two ranks are spawned inside it, not SLURM tasks, and must not be taken for them.
SLURM_TASK = {
    "SLURM_NTASKS": "1",
    "SLURM_NTASKS_PER_NODE": "1",
    "SLURM_JOB_NAME": "scaleprobe",
    "SLURM_JOB_ID": "4242",
    "SLURM_NODELIST": "localhost",
    "SLURM_PROCID": "0",
    "SLURM_LOCALID": "0",
    "SLURM_NODEID": "0",
}


@pytest.mark.slow
def test_two_cpu_processes_give_the_one_process_entries_byte_for_byte(tmp_path, capfd, monkeypatch):
    records = _records(tmp_path / "images", 11)  # 4 batches of 3: uneven over 2 ranks
    threads = torch.get_num_threads()
    per_rank = os.environ.get("OMP_NUM_THREADS") or max(1, len(os.sched_getaffinity(0)) // 2)
    torch.set_num_threads(int(per_rank))
    try:
        one = _extract(tmp_path / "one", records, devices=1)
    finally:
        torch.set_num_threads(threads)
    capfd.readouterr()
    for name, value in SLURM_TASK.items():
        monkeypatch.setenv(name, value)
    two = _extract(tmp_path / "two", records, devices=2)
    err = capfd.readouterr().err  # Lightning's banner, from both spawned ranks
    assert "distributed_backend=gloo" in err, err
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in err, err
    for node in NODES:
        assert two[node].key == one[node].key  # the number of processes is not in the key
        assert list(two[node].image_ids) == [r.image_id for r in records]  # dataset order
        assert np.asarray(two[node].features).tobytes() == np.asarray(one[node].features).tobytes()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"devices": 0}, r"extract\.devices=0 .*integer >= 1"),
        ({"num_nodes": 2}, r"extract\.num_nodes=2 .*extract\.num_nodes=1"),
    ],
)
def test_bad_process_counts_are_one_line(kwargs, message):
    with pytest.raises(ScaleprobeError, match=message) as info:
        ExtractionSettings(**kwargs)
    assert "\n" not in str(info.value)
