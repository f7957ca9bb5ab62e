"""A SLURM request the cluster cannot serve stops the sweep in one line, before any run exists.

Fake ``sinfo`` / ``sbatch`` scripts on PATH stand for the cluster (the real
one is in tests/integration/test_slurm.py).
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from omegaconf import open_dict
from tiny_run import TINY

from src.cluster import check_launcher
from src.errors import ScaleprobeError
from src.tracking.callbacks import MlflowSweepCallback

SLURM = "hydra_plugins.scaleprobe_launcher.SlurmLauncher"
# Partitions debug (one 16000 MB node) and gpu (64000 MB); no -p: every node.
SINFO = """#!/bin/sh
case "$*" in
  *%R*) printf 'debug\\ngpu\\n' ;;
  *"-p debug"*%m*) printf '16000\\n' ;;
  *"-p gpu"*%m*) printf '64000\\n' ;;
  *%m*) printf '16000\\n64000+\\n' ;;
esac
"""


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch) -> Path:
    """A PATH holding only fake ``sinfo`` and ``sbatch``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"sinfo": SINFO, "sbatch": "#!/bin/sh\nexit 0\n"}.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", str(bin_dir))
    return bin_dir


def test_a_request_the_cluster_serves_passes(fake_slurm):
    check_launcher({"_target_": SLURM, "partition": None, "mem_gb": 60})
    check_launcher({"_target_": SLURM, "partition": "gpu", "mem_gb": 62})
    check_launcher({"_target_": SLURM, "partition": "debug", "mem_gb": None})


def test_an_unknown_partition_is_named_with_the_clusters_own(fake_slurm):
    with pytest.raises(ScaleprobeError) as info:
        check_launcher({"_target_": SLURM, "partition": "a100", "mem_gb": 1})
    assert str(info.value) == (
        "hydra.launcher.partition='a100' is not a partition of this cluster; "
        "sinfo lists ['debug', 'gpu']"
    )


@pytest.mark.parametrize(
    ("partition", "mem_gb", "largest"),
    [(None, 63, "64000 MB, 62 GB"), ("debug", 16, "16000 MB, 15 GB")],
)
def test_more_memory_than_any_node_has_is_refused(fake_slurm, partition, mem_gb, largest):
    with pytest.raises(ScaleprobeError, match=f"mem_gb={mem_gb} is more memory") as info:
        check_launcher({"_target_": SLURM, "partition": partition, "mem_gb": mem_gb})
    assert f"(largest: {largest}, per sinfo)" in str(info.value)
    assert "\n" not in str(info.value)


def test_no_sbatch_on_path_is_one_line(fake_slurm):
    (fake_slurm / "sbatch").unlink()
    with pytest.raises(ScaleprobeError, match="no sbatch is on PATH") as info:
        check_launcher({"_target_": SLURM, "partition": None, "mem_gb": 1})
    assert "hydra/launcher=local" in str(info.value)


def test_a_failing_sinfo_is_one_line(fake_slurm):
    (fake_slurm / "sinfo").write_text(
        "#!/bin/sh\necho 'sinfo: error: Unable to contact' >&2\nexit 1\n"
    )
    with pytest.raises(ScaleprobeError, match=r"failed \(sinfo: error: Unable to contact\)"):
        check_launcher({"_target_": SLURM, "partition": None, "mem_gb": 1})


def test_launchers_that_do_not_submit_to_slurm_are_not_checked(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sinfo, no sbatch
    check_launcher({"_target_": "hydra_plugins.scaleprobe_launcher.LocalLauncher"})
    check_launcher(
        {"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"}
    )


def test_the_sweep_callback_stops_before_making_a_parent_run(
    fake_slurm, compose_config, tmp_path, capsys
):
    cfg = compose_config(["hydra/launcher=slurm", "hydra.launcher.partition=a100", *TINY])
    with open_dict(cfg):
        cfg.paths.mlruns_dir = str(tmp_path / "mlruns")
        cfg.paths.cache_dir = str(tmp_path / "cache")
    assert cfg.hydra.launcher._target_ == SLURM
    with pytest.raises(SystemExit) as info:
        MlflowSweepCallback().on_multirun_start(cfg)
    assert info.value.code == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        "error: hydra.launcher.partition='a100' is not a partition of this cluster; "
        "sinfo lists ['debug', 'gpu']"
    ]
    assert not (tmp_path / "mlruns").exists()
    assert not (tmp_path / "cache").exists()


def test_hydra_launcher_options_are_left_to_hydra():
    from src.config import check_group_overrides

    # conf/hydra/launcher holds slurm and local; joblib and submitit_* are the plugins'
    check_group_overrides(["hydra/launcher=slurm"])
    check_group_overrides(["hydra/launcher=submitit_local"])
    check_group_overrides(["hydra/launcher=joblib"])


class _Job:
    """What src.cluster reads of a submitit job that ended."""

    def __init__(self, error, state, stderr="", result=None):
        self._error, self.state, self._stderr, self._result = error, state, stderr, result

    def exception(self):
        return self._error

    def results(self):
        return [self._result]

    def stderr(self):
        return self._stderr


def test_each_way_a_job_ends_is_one_line():
    from hydra.core.utils import JobReturn, JobStatus
    from submitit.core.utils import FailedJobError, UncompletedJobError

    from src.cluster import _failure

    done = JobReturn()
    done.status, done._return_value = JobStatus.COMPLETED, 0.9
    assert _failure(_Job(None, "COMPLETED", result=done), 0, "alpha=0") is None
    raised = FailedJobError("Job (task=0) failed\nTraceback ...\nValueError: boom")
    said = "error: data.n_per_class=2 is too small\n"
    assert _failure(_Job(raised, "FAILED", said), 1, "alpha=1").line() == (
        "job #1 (alpha=1): FAILED: raised ValueError: boom; "
        "the job said: error: data.n_per_class=2 is too small"
    )
    gone = UncompletedJobError("has not produced any output")
    assert _failure(_Job(gone, "CANCELLED by 0"), 2, "alpha=2").line() == (
        "job #2 (alpha=2): KILLED: ended without a result (scheduler state CANCELLED by 0)"
    )
    assert _failure(_Job(gone, "TIMEOUT"), 3, "alpha=3").status == "KILLED"
    assert _failure(_Job(gone, "NODE_FAIL"), 4, "alpha=4").status == "FAILED"
    bug = JobReturn()
    bug.status, bug._return_value = JobStatus.FAILED, RuntimeError("a bug")
    assert _failure(_Job(None, "COMPLETED", result=bug), 5, "alpha=5").line() == (
        "job #5 (alpha=5): FAILED: raised RuntimeError('a bug')"
    )


def test_a_failed_job_keeps_one_child_in_its_state(tmp_path, monkeypatch):
    """Job 1 was killed mid-logging (its child RUNNING), job 2 never logged: one child each."""
    from mlflow.tracking import MlflowClient
    from omegaconf import OmegaConf

    from src.cluster import JobFailure, _close_failed_sweep
    from src.tracking.callbacks import PARENT_RUN_ENV
    from src.tracking.log import JOB_NUM_TAG, create_parent_run, get_experiment_id
    from src.tracking.query import list_child_runs
    from src.tracking.store import PARENT_TAG, tracking_target

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    config = OmegaConf.create({"tracking": {"uri": uri, "experiment": "scaleprobe"}})
    target = tracking_target(config.tracking)
    parent = create_parent_run(target, "sweep", tags={})
    client = MlflowClient(tracking_uri=uri)
    child = {PARENT_TAG: parent, JOB_NUM_TAG: "1", "scaleprobe.role": "job"}
    left = client.create_run(get_experiment_id(target), tags=child).info.run_id
    done = client.create_run(get_experiment_id(target), tags={**child, JOB_NUM_TAG: "0"})
    client.set_terminated(done.info.run_id, status="FINISHED")
    monkeypatch.setenv(PARENT_RUN_ENV, parent)
    failures = [
        JobFailure(1, "alpha=0.001", "KILLED", "ended without a result"),
        JobFailure(2, "alpha=0.01", "FAILED", "raised ValueError"),
    ]
    _close_failed_sweep(config, failures, total=3)
    children = list_child_runs(target, parent)
    by_num = {}
    for run in children:
        by_num.setdefault(run.data.tags[JOB_NUM_TAG], []).append(run)
    assert sorted(by_num) == ["0", "1", "2"]
    assert all(len(runs) == 1 for runs in by_num.values()), by_num
    assert by_num["1"][0].info.run_id == left  # the child the job left, not another
    assert by_num["1"][0].info.status == "KILLED"
    assert by_num["1"][0].data.tags["scaleprobe.failure"] == "ended without a result"
    assert by_num["2"][0].info.status == "FAILED"
    assert by_num["0"][0].info.status == "FINISHED"
    assert client.get_run(parent).info.status == "FAILED"
