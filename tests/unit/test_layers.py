"""Layer names: Keras aliases and torchvision nodes, checked against real feature dims."""

from __future__ import annotations

import pytest

from src.errors import ScaleprobeError
from src.features.backbones import get_backbone_spec
from src.features.layers import layer_table, list_layers, main, resolve_layer

INCEPTION_DIMS = {
    "mixed0": 256,
    "mixed1": 288,
    "mixed2": 288,
    "mixed3": 768,
    "mixed4": 768,
    "mixed5": 768,
    "mixed6": 768,
    "mixed7": 768,
    "mixed8": 1280,
    "mixed9": 2048,
    "mixed10": 2048,
}


def test_inception_layer_table_matches_real_feature_dims():
    table = {name: (node, dim) for name, node, dim in list_layers("inception_v3")}
    assert {
        name: dim for name, (_, dim) in table.items() if name in INCEPTION_DIMS
    } == INCEPTION_DIMS
    assert table["mixed8"] == ("Mixed_7a", 1280)
    assert set(get_backbone_spec("inception_v3").layer_aliases) == set(INCEPTION_DIMS)


def test_resnet_stages_have_their_dims():
    table = {name: dim for name, _, dim in list_layers("resnet50")}
    assert [table[f"layer{i}"] for i in range(1, 5)] == [256, 512, 1024, 2048]


@pytest.mark.parametrize(
    ("backbone", "layer", "node"),
    [
        ("inception_v3", "mixed8", "Mixed_7a"),
        ("inception_v3", "Mixed_7a", "Mixed_7a"),
        ("inception_v3", "Mixed_6e.cat", "Mixed_6e.cat"),
        ("resnet50", "layer3", "layer3"),
        ("resnet50", "layer3.5.relu_2", "layer3.5.relu_2"),
    ],
)
def test_resolve_aliases_and_node_names(backbone, layer, node):
    assert resolve_layer(backbone, layer) == node


def test_unknown_layer_lists_choices():
    with pytest.raises(ScaleprobeError) as info:
        resolve_layer("resnet50", "mixed8")
    message = str(info.value)
    assert "layer='mixed8' is not a layer of resnet50" in message
    assert "layer4" in message
    assert "python -m src.features.layers resnet50 --all" in message


def test_layers_command_prints_the_table(capsys):
    assert main(["resnet50"]) == 0
    out = capsys.readouterr().out
    assert "layer3" in out
    assert "1024" in out


def test_layers_command_reads_a_backbone_yaml_not_in_conf(capsys):
    from pathlib import Path

    yaml = (
        Path(__file__).resolve().parents[1] / "integration" / "conf" / "backbone" / "resnet18.yaml"
    )
    assert main([str(yaml)]) == 0
    out = capsys.readouterr().out
    assert "stage3" in out  # the YAML's alias of layer3
    assert "256" in out


def test_layers_command_lists_any_torchvision_model_with_layouts(capsys):
    """#13.6: `torchvision --name <model>`: dims and layouts after reduction, offline."""
    assert main(["torchvision", "--name", "vit_b_16"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    table = {row[1]: (int(row[2]), row[3]) for row in rows}
    assert table["encoder.layers.encoder_layer_6"] == (768, "tokens")
    assert table["conv_proj"] == (768, "nchw")
    assert main(["torchvision", "--name", "swin_t"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    table = {row[1]: (int(row[2]), row[3]) for row in rows}
    assert table["features.0.0"] == (96, "nchw")  # the patch-embedding conv
    assert table["features.3"] == (192, "nhwc")  # Swin's stages are channels-last


def test_preset_rows_carry_their_layout():
    rows = {row.name: row for row in layer_table("inception_v3")}
    assert (rows["mixed8"].node, rows["mixed8"].dim, rows["mixed8"].layout) == (
        "Mixed_7a",
        1280,
        "nchw",
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["torchvision"], "error: backbone 'torchvision' needs --name <model>"),
        (["torchvision", "--name", "resnt18"], "close matches: ['resnet18'"),
        (["torchvision", "--name", "raft_small"], "is a torchvision optical_flow model"),
        (["resnet50", "--name", "resnet18"], "--name resnet18 does not apply to 'resnet50'"),
    ],
)
def test_layers_command_bad_input_is_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1


def test_unknown_layer_of_a_torchvision_model_names_the_listing_command():
    from omegaconf import OmegaConf

    from src.features.backbones import CONF_DIR, create_backbone_spec

    node = OmegaConf.load(CONF_DIR / "backbone" / "torchvision.yaml")
    node.name = "resnet18"
    with pytest.raises(ScaleprobeError, match=r"python -m src.features.layers torchvision "):
        resolve_layer(create_backbone_spec(node), "mixed8")
