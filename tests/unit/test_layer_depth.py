"""The layer_depth param sorts a backbone's layers in network order (issue 17.2)."""

from src.features.backbones import get_backbone_spec
from src.features.scan import layer_depth


def test_lite0_blocks_deepen_in_network_order():
    spec = get_backbone_spec("efficientnet_lite0")
    depths = [layer_depth(spec, f"blocks.{i}") for i in range(7)]
    assert depths == sorted(depths)
    assert len(set(depths)) == 7
    assert layer_depth(spec, "blocks.5") == depths[5]
