"""A layer scan extracts every layer of the sweep in one pass (issue 17.1, 17.5)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys

import pytest
from hydra import compose, initialize
from hydra.core.global_hydra import GlobalHydra
from mlflow.tracking import MlflowClient
from omegaconf import open_dict
from tiny_run import REPO, TINY, assert_one_line_and_nothing_cached, cached_entries, run_tool

import src.job
from src.errors import ScaleprobeError
from src.features import extract
from src.features.backbones import create_backbone_spec
from src.features.layers import scan_blocks
from src.features.scan import SCAN_LAYERS_ENV, expand_all_layers, scan_layers, sweep_layer_union
from src.tracking.sweep_jobs import list_sweep_jobs


@pytest.fixture
def passes(monkeypatch):
    """Record the nodes of every extraction pass (one pass: one class's images, once)."""
    seen: list[list[str]] = []
    real = extract._extract_entries

    def counted(cache, build_model, missing, *args, **kwargs):
        seen.append(list(missing))
        return real(cache, build_model, missing, *args, **kwargs)

    monkeypatch.setattr(extract, "_extract_entries", counted)
    return seen


def _jobs(compose_config, shared_dirs, tmp_path, layers):
    jobs = []
    for layer in layers:
        cfg = compose_config([*TINY, "n_permutations=2", f"layer.name={layer}", "controls=[]"])
        with open_dict(cfg):
            del cfg["hydra"]  # its sweep paths need a running Hydra job
            cfg.paths.data_dir = str(shared_dirs["data"])
            cfg.paths.cache_dir = str(tmp_path / "cache")
            cfg.paths.mlruns_dir = str(tmp_path / "mlruns")
        jobs.append(cfg)
    return jobs


def _scan(jobs, monkeypatch):
    monkeypatch.setenv(SCAN_LAYERS_ENV, json.dumps(sweep_layer_union(jobs)))
    for cfg in jobs:
        src.job.run(cfg)


@pytest.mark.slow
def test_a_scan_extracts_all_its_layers_in_one_pass_and_later_only_new_ones(
    compose_config, shared_dirs, tmp_path, monkeypatch, passes
):
    jobs = _jobs(compose_config, shared_dirs, tmp_path, ["blocks.0", "blocks.3", "blocks.6"])
    assert scan_layers(jobs[0], env={}) == []  # outside a sweep: the job's own layer only
    _scan(jobs, monkeypatch)
    assert passes == [["blocks.0", "blocks.3", "blocks.6"]]  # one pass, all three layers
    assert len(cached_entries(tmp_path / "cache")) == 3
    client = MlflowClient(tracking_uri=jobs[0].tracking.uri)
    experiment = client.get_experiment_by_name(jobs[0].tracking.experiment)
    runs = client.search_runs([experiment.experiment_id])
    params = [r.data.params for r in runs if "layer_depth" in r.data.params]
    by_layer = {
        p.get("layer.name", p.get("layer")): (int(p["layer_depth"]), int(p["feature_dim"]))
        for p in params
    }
    assert sorted(by_layer) == ["blocks.0", "blocks.3", "blocks.6"]
    assert by_layer["blocks.0"][0] < by_layer["blocks.3"][0] < by_layer["blocks.6"][0]
    passes.clear()
    more = _jobs(compose_config, shared_dirs, tmp_path, ["blocks.0", "blocks.3", "blocks.4"])
    _scan(more, monkeypatch)
    assert passes == [["blocks.4"]]  # the rest are cache hits
    assert len(cached_entries(tmp_path / "cache")) == 4


def test_an_unknown_layer_stops_the_scan_naming_the_listing_command(compose_config):
    jobs = [compose_config([*TINY, f"layer.name={name}"]) for name in ["blocks.0", "blocks.9"]]
    listing = r"blocks\.9.*python -m src\.features\.layers"
    with pytest.raises(ScaleprobeError, match=listing) as info:
        sweep_layer_union(jobs)
    assert "\n" not in str(info.value)


def test_layers_of_two_backbones_are_refused_in_one_line(compose_config):
    jobs = [
        compose_config(["backbone=resnet50", "layer=layer3"]),
        compose_config(["backbone=inception_v3", "layer=mixed8"]),
    ]
    with pytest.raises(ScaleprobeError, match=r"one backbone.*resnet50") as info:
        sweep_layer_union(jobs)
    assert "\n" not in str(info.value)


@pytest.mark.slow
def test_a_sweep_with_an_unknown_layer_extracts_nothing(tmp_path):
    result = run_tool(tmp_path, "-m", "layer.name=blocks.0,blocks.9", *TINY)
    assert result.returncode == 1, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    assert "blocks.9" in errors[0]
    assert "src.features.layers" in errors[0]
    assert cached_entries(tmp_path / "cache") == []


@pytest.mark.parametrize(
    ("backbone", "first", "last", "n"),
    [
        ("efficientnet_lite0", "blocks.0", "blocks.6", 7),
        ("inception_v3", "mixed0", "mixed10", 11),
        ("resnet50", "layer1", "layer4", 4),
    ],
)
def test_layer_all_is_every_named_block_in_network_order(backbone, first, last, n):
    blocks = scan_blocks(backbone)
    assert (blocks[0], blocks[-1], len(blocks)) == (first, last, n)


def test_layer_all_of_a_vit_is_its_encoder_layers(compose_config):
    cfg = compose_config(["backbone=torchvision", "backbone.name=vit_b_16"])
    blocks = scan_blocks(create_backbone_spec(cfg.backbone))
    assert blocks == [f"encoder.layers.encoder_layer_{i}" for i in range(12)]


def test_layer_all_expands_into_one_job_per_block_before_any_job():
    """As the sweep callback sees it: Hydra initialized, the sweep's task overrides set."""
    GlobalHydra.instance().clear()
    try:
        with initialize(version_base="1.3", config_path="../../conf"):
            task = ["experiment=scan", "backbone=resnet50", "alpha=0,0.1"]
            cfg = compose("config", overrides=task[:2], return_hydra_config=True)
            with open_dict(cfg):
                cfg.hydra.overrides.task = task
            assert cfg.layer.name == "all"
            assert expand_all_layers(cfg) == ["layer1", "layer2", "layer3", "layer4"]
            jobs = list_sweep_jobs(cfg)
            named = [{o for o in job if o.startswith(("layer.name=", "alpha="))} for job in jobs]
            assert named == [
                {f"layer.name=layer{i}", f"alpha={a}"} for i in range(1, 5) for a in (0, 0.1)
            ]
            other = compose("config", overrides=["backbone=inception_v3"], return_hydra_config=True)
            assert other.layer.name == "mixed8"
            assert expand_all_layers(other) is None
    finally:
        GlobalHydra.instance().clear()


def test_layer_all_outside_a_sweep_is_one_line_and_caches_nothing(
    compose_config, shared_dirs, tmp_path
):
    cfg = compose_config([*TINY, "layer=all"])
    assert_one_line_and_nothing_cached(cfg, shared_dirs, tmp_path, r"layer=all.*-m layer=all")


@pytest.mark.slow
def test_experiment_scan_extracts_once_and_reports_depth_with_the_controls(shared_dirs, tmp_path):
    """#17's done-when, on tiny data: one pass per weights for all blocks, then depth.png."""
    trained = [o for o in TINY if not o.startswith("backbone.weights")]  # controls differ
    paths = [f"paths.data_dir={shared_dirs['data']}", "n_permutations=3"]
    result = run_tool(tmp_path, "-m", "experiment=scan", *trained, *paths)
    assert result.returncode == 0, result.stderr[-3000:]
    blocks = ", ".join(f"blocks.{i}" for i in range(7))
    pattern = r"extracting (.+?) of efficientnet_lite0 \(weights=(\S+)\) for \d+ images of (.+)"
    log = result.stdout + result.stderr  # Hydra's console log: stdout
    passes = re.findall(pattern, log)
    assert passes, log[-3000:]
    assert {layers for layers, _, _ in passes} == {blocks}  # every pass: all seven blocks
    assert len({weights for _, weights, _ in passes}) == 2  # trained and the random control
    assert len(passes) == len({(w, c) for _, w, c in passes})  # none repeated
    report = subprocess.run(
        [sys.executable, "-m", "src.report", "report.output_dir=reports"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    assert (tmp_path / "reports" / "depth.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tables = json.loads((tmp_path / "reports" / "report.json").read_text())["tables"]
    (depth,) = [t for t in tables if t["title"] == "Test R² against depth"]
    rows = depth["rows"]
    assert [row["layer"] for row in rows] == [f"blocks.{i}" for i in range(7)]  # network order
    for column in ["R² trained", "R² random weights", "R² pixels", "R² shuffled null"]:
        assert all(math.isfinite(row[column][0]) for row in rows), (column, rows)
    assert any(row["R² trained"] != row["R² random weights"] for row in rows)
