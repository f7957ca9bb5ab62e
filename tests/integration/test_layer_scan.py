"""A layer scan extracts every layer of the sweep in one pass (issue 17.1, 17.5)."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient
from omegaconf import open_dict
from tiny_run import TINY, cached_entries, run_tool

import src.run
from src.errors import ScaleprobeError
from src.features import extract
from src.features.scan import SCAN_LAYERS_ENV, scan_layers, sweep_layer_union


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
        src.run.run(cfg)


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
