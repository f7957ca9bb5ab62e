"""`experiment=paper` on a small tree in ImageNet layout, with a local checkpoint."""

from __future__ import annotations

import csv
import hashlib
import shutil
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from omegaconf import open_dict
from tiny_run import run_tool
from torchvision.models import inception_v3

from src.data.annotations import AnnotatedObject, Annotation, parse_voc_xml, write_voc_xml
from src.data.synthetic import generate_synthetic_dataset
from src.errors import ScaleprobeError
from src.job import run

pytestmark = pytest.mark.slow

SMALL = ["n_train=8", "n_test=6", "n_splits=3", "extract.progress=false", "extract.batch_size=8"]


@pytest.fixture(scope="module")
def ilsvrc(tmp_path_factory) -> Path:
    """An ILSVRC train tree (train/<wnid>/*.JPEG, Annotation/<wnid>/*.xml) plus a LOC CSV."""
    root = generate_synthetic_dataset(tmp_path_factory.mktemp("ilsvrc") / "ILSVRC", n_per_class=16)
    with open(root / "LOC_train_solution.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ImageId", "PredictionString"])
        for xml in sorted((root / "Annotation").glob("*/*.xml")):
            annotation = parse_voc_xml(xml)
            boxes = " ".join(
                f"{o.name} {o.box.xmin:g} {o.box.ymin:g} {o.box.xmax:g} {o.box.ymax:g}"
                for o in annotation.objects
            )
            writer.writerow([xml.stem, boxes])
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A state_dict shaped like Google's InceptionV3 file (aux head included)."""
    path = tmp_path_factory.mktemp("weights") / "inception_v3_local.pth"
    torch.manual_seed(1)
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), path)
    return path


@pytest.mark.parametrize("annotations", ["xml", "csv"])
def test_paper_protocol_runs_on_an_imagenet_tree(tmp_path, ilsvrc, checkpoint, annotations):
    extra = (
        [f"data.annotations_csv={ilsvrc / 'LOC_train_solution.csv'}"]
        if annotations == "csv"
        else []
    )
    result = run_tool(
        tmp_path,
        "experiment=paper",
        f"data.root={ilsvrc}",
        f"backbone.weights_path={checkpoint}",
        "pair=albatross_kite",
        *SMALL,
        *extra,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    (child,) = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if "mlflow.parentRunId" in r.data.tags
    ]
    params = child.data.params
    assert params["weights"] == "file:inception_v3_local.pth"
    assert params["data"] == "imagenet"
    assert params["layer"] == "mixed8"
    assert params["feature_dim"] == "1280"
    assert (
        child.data.tags["scaleprobe.weights_sha256"]
        == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    )
    assert -1e9 < child.data.metrics["r2_test"] <= 1.0


def test_paper_without_weights_stops_with_one_clear_line(tmp_path, ilsvrc):
    result = run_tool(
        tmp_path,
        "experiment=paper",
        f"data.root={ilsvrc}",
        *SMALL,
        env={"TORCH_HOME": str(tmp_path / "torch")},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error: ")]
    assert "inception_v3_google-0cc3c7bd.pth" in line
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in line
    assert not (tmp_path / "cache").exists() or not any(
        (tmp_path / "cache" / "features").glob("[0-9a-f]*")
    )


def test_paper_preset_prints_its_protocol(tmp_path):
    result = run_tool(tmp_path, "experiment=paper", "data.root=/data/ILSVRC", "--cfg", "job")
    assert result.returncode == 0, result.stderr
    for line in (
        "n_train: 220",
        "n_test: 220",
        "n_splits: 10",
        "name: mixed8",
        "weights: IMAGENET1K_V1",
        "require_weights: true",
        "name: imagenet",
        "root: /data/ILSVRC",
    ):
        assert line in result.stdout


def test_paper_preset_sweeps_the_alpha_grid_and_the_three_pairs(compose_config):
    cfg = compose_config(["experiment=paper", "data.root=/data/ILSVRC"])
    params = cfg.hydra.sweeper.params
    alphas = [float(a) for a in str(params.alpha).split(",")]
    assert alphas[0] == 0.0
    assert len(alphas) == 21
    assert alphas[-1] == pytest.approx(0.01)
    assert cfg.reference_alpha == 0.001
    assert str(params.pair).split(",") == [
        "albatross_albatross",
        "albatross_kite",
        "albatross_racing_car",
    ]


def test_missing_data_root_is_named(compose_config):
    with pytest.raises(ScaleprobeError, match=r"data.root is not set; pass data.root=<value>"):
        run(compose_config(["experiment=paper"]))


@pytest.fixture(scope="module")
def voc(ilsvrc, tmp_path_factory) -> Path:
    """A Pascal VOC tree: albatrosses become `bird`, racing cars `car`."""
    root = tmp_path_factory.mktemp("voc") / "VOC2012"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    names = {"n02058221": "bird", "n04037443": "car"}
    for wnid, name in names.items():
        for xml in sorted((ilsvrc / "Annotation" / wnid).glob("*.xml")):
            annotation = parse_voc_xml(xml)
            shutil.copy(
                ilsvrc / "train" / wnid / f"{xml.stem}.JPEG",
                root / "JPEGImages" / f"{xml.stem}.jpg",
            )
            objects = tuple(
                AnnotatedObject(name, o.box, o.difficult, o.truncated) for o in annotation.objects
            )
            write_voc_xml(
                root / "Annotations" / f"{xml.stem}.xml",
                Annotation(f"{xml.stem}.jpg", annotation.width, annotation.height, objects),
            )
    return root


def test_voc_classes_by_name_with_a_custom_pair(tmp_path, voc):
    result = run_tool(
        tmp_path,
        "data=voc",
        f"data.root={voc}",
        "pair=custom",
        "pair.train_class=bird",
        "pair.test_class=car",
        "backbone.weights=random",
        *SMALL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlruns/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    (child,) = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if "mlflow.parentRunId" in r.data.tags
    ]
    assert child.data.params["pair"] == "bird_car"
    assert (child.data.params["train_class"], child.data.params["test_class"]) == ("bird", "car")
    assert child.data.params["data"] == "voc"


def test_voc_class_name_not_in_voc_names_it(compose_config, voc):
    cfg = compose_config(
        [
            "data=voc",
            f"data.root={voc}",
            "pair=custom",
            "pair.train_class=albatross",
            "pair.test_class=car",
            "backbone.weights=random",
            *SMALL,
        ]
    )
    with pytest.raises(ScaleprobeError, match="albatross"):
        run(cfg)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("<xmax>", "<xmax>9999"), "outside"),
        (("<xmax>", "<xmax>-"), "n02058221_3.xml"),
        (("<annotation>", "<annotation><size>"), "n02058221_3.xml"),
    ],
)
def test_bad_box_in_the_data_stops_naming_the_file(compose_config, tmp_path, ilsvrc, edit, message):
    tree = tmp_path / "ILSVRC"
    shutil.copytree(ilsvrc, tree)
    xml = tree / "Annotation" / "n02058221" / "n02058221_3.xml"
    xml.write_text(xml.read_text().replace(*edit, 1))
    cfg = compose_config(["data=imagenet", f"data.root={tree}", "backbone.weights=random", *SMALL])
    with open_dict(cfg):
        cfg.paths.cache_dir = str(tmp_path / "cache")
        cfg.paths.mlruns_dir = str(tmp_path / "mlruns")
    with pytest.raises(ScaleprobeError) as info:
        run(cfg)
    assert message in str(info.value)
    assert "n02058221_3" in str(info.value)
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "mlruns" / "mlflow.db").exists()  # nothing logged


def _child_params(mlruns: Path) -> list[dict[str, str]]:
    client = MlflowClient(tracking_uri=f"sqlite:///{mlruns}/mlflow.db")
    experiment = client.get_experiment_by_name("scaleprobe")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return [r.data.params for r in runs if "mlflow.parentRunId" in r.data.tags]


def test_transform_input_is_in_the_cache_key_and_logged(tmp_path, checkpoint):
    """#19.1: the second run (transform off) must not reuse the first run's features."""
    tiny = [
        *SMALL,
        "backbone=inception_v3",
        "data.n_per_class=16",
        "backbone.input_size=96",
        f"backbone.weights_path={checkpoint}",
    ]
    runs = {}
    for transform in ("true", "false"):
        result = run_tool(tmp_path, *tiny, f"backbone.transform_input={transform}")
        assert result.returncode == 0, result.stderr[-3000:]
        runs[transform] = result.stdout + result.stderr
    assert "extracting Mixed_7a" in runs["false"]  # not reused from the first run
    first, second = _child_params(tmp_path / "mlruns")
    assert first["features.transform_input"] == "True"
    assert second["features.transform_input"] == "False"
    assert first["cache_key"] != second["cache_key"]
    assert first["features.precision"] == second["features.precision"] == "32-true"
    assert first["features.preprocessing.size"] == "96"
    # The same run on an empty cache gives the second run's key.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    result = run_tool(fresh, *tiny, "backbone.transform_input=false")
    assert result.returncode == 0, result.stderr[-3000:]
    (alone,) = _child_params(fresh / "mlruns")
    assert alone["cache_key"] == second["cache_key"]
