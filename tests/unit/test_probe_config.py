"""Bad probe input is one line naming the key and what is allowed (#15.5)."""

import pytest
from omegaconf import OmegaConf

from src.config import check_group_overrides, validate_config
from src.errors import ScaleprobeError
from src.probes.build import build_probe
from src.probes.kernel_ridge import KernelRidgeProbe
from src.probes.lasso import LassoPathProbe
from src.probes.mlp import MLPProbe
from src.probes.ridge import RidgeProbe


@pytest.mark.parametrize(
    ("name", "cls", "param"),
    [
        ("lasso", LassoPathProbe, "alpha"),
        ("ridge", RidgeProbe, "ridge_alpha"),
        ("kernel_ridge", KernelRidgeProbe, "kernel_alpha"),
        ("mlp", MLPProbe, "mlp_alpha"),
    ],
)
def test_each_probe_config_validates_and_builds_with_its_value_on_the_grid(
    compose_config, name, cls, param
):
    cfg = compose_config([f"probe={name}"])
    validate_config(cfg)
    probe, value = build_probe(OmegaConf.to_container(cfg.probe, resolve=True))
    assert type(probe) is cls
    assert probe.param_name == param
    assert value in probe.grid_values()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["probe=ridge", "probe.grid=[1,-1]"],
            "probe.grid[1]=-1 is out of range; expected a value >= 0.0",
        ),
        (
            ["probe=ridge", "probe.value=-2"],
            "probe.value=-2 is out of range; expected a value >= 0.0",
        ),
        (
            ["probe=kernel_ridge", "probe.gamma=0"],
            "probe.gamma=0 is out of range; expected a value > 0.0",
        ),
        (
            ["probe=kernel_ridge", "probe.kernel=poly"],
            "probe.kernel='poly' is not allowed; choose from ['rbf', 'linear']",
        ),
        (
            ["probe=kernel_ridge", "probe.max_memory_gib=0"],
            "probe.max_memory_gib=0 is out of range; expected a value > 0.0",
        ),
        (
            ["probe=mlp", "probe.validation_fraction=1.0"],
            "probe.validation_fraction=1.0 is out of range; expected a value in (0.0, 1.0)",
        ),
        (
            ["probe=mlp", "probe.hidden_layer_sizes=[64,0]"],
            "probe.hidden_layer_sizes[1]=0 is out of range; expected a value >= 1",
        ),
        (
            ["probe=mlp", "probe.hidden_layer_sizes=[6.5]"],
            "probe.hidden_layer_sizes[0]=6.5 is not an integer; expected an integer >= 1",
        ),
        (
            ["probe=mlp", "probe.max_iter=0"],
            "probe.max_iter=0 is out of range; expected a value >= 1",
        ),
    ],
)
def test_a_hyperparameter_out_of_range_names_key_and_range(compose_config, overrides, message):
    cfg = compose_config(overrides)
    with pytest.raises(ScaleprobeError) as error:
        validate_config(cfg)
    assert str(error.value) == message


def test_gamma_null_is_allowed_and_a_plugin_named_ridge_is_not_checked(compose_config):
    validate_config(compose_config(["probe=kernel_ridge", "probe.gamma=null"]))
    cfg = compose_config(["probe=ridge", "probe._target_=mypackage.Ridge", "probe.grid=[-1]"])
    validate_config(cfg)  # another class's grid: its own checks, not ours


@pytest.mark.parametrize(
    ("overrides", "bad"),
    [(["probe=rigde"], "rigde"), (["n_splits=3", "probe=lasso, mlp,knn"], "knn")],
)
def test_an_unknown_probe_is_one_line_listing_the_probes(overrides, bad):
    with pytest.raises(ScaleprobeError) as error:
        check_group_overrides(overrides)
    assert str(error.value) == (
        f"probe={bad!r} is not an option of conf/probe; "
        "choose from ['kernel_ridge', 'lasso', 'mlp', 'ridge']"
    )


def test_known_probes_sweeps_and_search_paths_pass():
    check_group_overrides(["-m", "probe=lasso,ridge,kernel_ridge,mlp", "experiment=null"])
    check_group_overrides(["probe=plugin_probe", "hydra.searchpath=[file:///elsewhere]"])
    check_group_overrides(["probe=glob(*)"])


def test_value_gcv_builds_ridge_and_is_refused_for_a_probe_without_loo(compose_config):
    cfg = compose_config(["probe=ridge", "probe.value=gcv"])
    validate_config(cfg)
    probe, value = build_probe(OmegaConf.to_container(cfg.probe, resolve=True))
    assert value == "gcv"
    assert probe.gives_loo
    cfg = compose_config(["probe=mlp", "probe.value=gcv"])
    with pytest.raises(ScaleprobeError, match=r"^probe.value='gcv' needs leave-one-out errors"):
        build_probe(OmegaConf.to_container(cfg.probe, resolve=True))
    with pytest.raises(ScaleprobeError, match=r"^inner_folds=1 is out of range"):
        validate_config(compose_config(["inner_folds=1"]))
