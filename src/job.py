"""One probe job, the stages wired: validate -> records -> features -> probes -> MLflow.

:func:`run` works without Hydra (tests call it with a composed config); the
entry point ``python -m src.run`` (:mod:`src.run`) calls it for each job.
It is its own module so that the entry point imports torch, timm and
Lightning only when a job runs: a sweep's parent process never runs one.
"""

from __future__ import annotations

import logging
import tempfile
from typing import Any

from omegaconf import DictConfig, OmegaConf

from src.config import validate_job_config
from src.data.sources import load_records_with_counts, log_probed
from src.features.backbones import create_backbone_spec
from src.features.classes import class_features_from_config
from src.features.controls import control_features
from src.features.extract import key_params
from src.features.scan import layer_depth
from src.probes.build import build_probe
from src.probes.controls import control_metrics, evaluate_controls
from src.probes.disk_memo import ResultStore
from src.probes.lasso import LassoPathProbe
from src.probes.memo import ProbeMemo
from src.probes.protocol import evaluate_job
from src.probes.splits import check_split_sizes
from src.probes.stability import bootstrap_coefs, stable_maps
from src.report.montage import job_montage
from src.targets.build import build_target
from src.targets.select import probe_rows, target_rows
from src.tracking.job_log import log_job
from src.tracking.job_params import job_params
from src.tracking.log import check_store_present
from src.tracking.store import check_reachable, tracking_target

__all__ = ["run"]

logger = logging.getLogger(__name__)

# Lives as long as the process: Hydra's basic launcher runs a sweep's jobs in
# one process, so each probe fit of a sweep is made once (src/probes/memo.py).
_MEMO = ProbeMemo()


def _protocol_args(cfg: DictConfig) -> dict[str, Any]:
    """Return the pair protocol's split settings as the config gives them."""
    # str: a COCO category id given bare (pair.train_class=16) is a class name like the others
    train_class, test_class = str(cfg.pair.train_class), str(cfg.pair.test_class)
    return {
        "same_class": train_class == test_class,
        "n_splits": cfg.n_splits,
        "n_train": cfg.n_train,
        "n_test": cfg.n_test,
        "seed": cfg.seed,
        "train_class": train_class,
        "test_class": test_class,
    }


def _result_store(cfg: DictConfig) -> ResultStore | None:
    """Return the on-disk memo of evaluations (``paths.memo_dir``), checked writable; None: off."""
    root = cfg.paths.get("memo_dir")
    if not root:
        return None
    store = ResultStore(root)
    store.check_writable()
    return store


def _stable_maps(cfg: DictConfig, probe, value: float, X, y, coef):
    """Return the Lasso's selection frequencies over splits and resamples; None for other probes."""
    if not isinstance(probe, LassoPathProbe):  # selection is defined for the Lasso only
        return None
    boot = bootstrap_coefs(
        X, y, alpha=value, n_bootstrap=cfg.stability.n_bootstrap, n_train=cfg.n_train,
        seed=cfg.seed,
    )  # fmt: skip
    return stable_maps(coef, boot, threshold=cfg.stability.threshold)


def _sweep_job_num() -> int | None:
    """Return Hydra's number of this job in its sweep (None outside a Hydra app)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    num = HydraConfig.get().job.get("num")
    return None if num is None else int(num)


def run(cfg: DictConfig, parent_run_id: str | None = None) -> dict[str, float]:
    """Run one probe job and log it as a child MLflow run; return the mean metrics.

    The data's way, each step checked before the costly ones: the config, the
    store, the records and split sizes, the target and the probe, then the
    features (extracted only on a cache miss), the protocol, and the log.
    Without ``parent_run_id`` (a single run, not a sweep) the parent is
    created at the end, after all the work succeeded, so a failed run logs nothing.
    """
    validate_job_config(cfg)
    store = tracking_target(cfg.tracking)
    check_reachable(store)
    if parent_run_id is not None:
        check_store_present(store, parent_run_id)
    protocol = _protocol_args(cfg)
    train, test = protocol["train_class"], protocol["test_class"]
    records, counts = load_records_with_counts(
        OmegaConf.to_container(cfg.data, resolve=True), [train, test]
    )
    target = build_target(cfg.target)
    rows = target_rows(target, records)  # a bad target table stops here, before extraction
    check_split_sizes(len(rows[train]), len(rows[test]), **protocol)
    shared_fits = _result_store(cfg)
    probe, value = build_probe(cfg.probe)
    made = class_features_from_config(cfg, records)
    log_probed(records, counts)
    data = probe_rows(target, made.features, records)
    result, path = evaluate_job(
        *data[train],
        *data[test],
        probe=probe,
        value=value,
        n_permutations=cfg.n_permutations,
        inner_folds=cfg.inner_folds,
        memo=_MEMO,
        store=shared_fits,
        **protocol,
    )
    maps = _stable_maps(cfg, probe, value, *data[train], result.coef)
    controls = evaluate_controls(
        {
            name: probe_rows(target, features, records, log=False)
            for name, features in control_features(cfg, records).items()
        },
        probe=probe,
        value=value,
        memo=_MEMO,
        store=shared_fits,
        **protocol,
    )
    params = job_params(
        cfg,
        target_label=target.label,
        weights=made.weights.label,
        feature_dim=made.features[train].shape[1],
        layer_depth=layer_depth(create_backbone_spec(cfg.backbone), cfg.layer.name),
        cache_key=",".join(dict.fromkeys(made.keys[c] for c in (train, test))),
        probe_param=probe.param_name,
        **{probe.param_name: value},
        **key_params(made.fields),  # how the features were made (their cache key's fields)
        **{f"stability.{k}": v for k, v in cfg.stability.items()},
    )
    X, y = data[train]
    probed = [records[train][i].path for i in target_rows(target, records)[train]]  # X's rows
    with tempfile.TemporaryDirectory() as tmp:
        return log_job(
            store,
            parent_run_id,
            cfg,
            result,
            path,
            params=params,
            weights_sha256=made.weights.sha256,
            stable=maps,
            extra=control_metrics(result.r2_test, controls) if controls else None,
            files=job_montage(maps, X, probed, y, tmp),
            job_num=_sweep_job_num() if parent_run_id is not None else None,
        )
