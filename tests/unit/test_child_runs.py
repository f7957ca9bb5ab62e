"""The one children-of-a-parent query (issue 12.7) on a real sqlite store."""

from __future__ import annotations

import json

from src.tracking.callbacks import _write_summary
from src.tracking.log import create_parent_run, get_experiment_id
from src.tracking.query import child_statuses, list_child_runs
from src.tracking.store import PARENT_TAG, TrackingTarget, _client


def test_children_oldest_first_and_filtered_by_status(tmp_path):
    target = TrackingTarget(f"sqlite:///{tmp_path}/mlflow.db", artifact_location=str(tmp_path))
    parent = create_parent_run(target, "sweep", tags={})
    other = create_parent_run(target, "sweep", tags={})
    client, experiment = _client(target), get_experiment_id(target)
    ids = []
    for start, status in ((3, "FINISHED"), (1, "FAILED"), (2, "FINISHED")):
        run = client.create_run(experiment, start_time=start, tags={PARENT_TAG: parent})
        client.set_terminated(run.info.run_id, status=status)
        ids.append(run.info.run_id)
    client.create_run(experiment, tags={PARENT_TAG: other})
    assert [r.info.run_id for r in list_child_runs(target, parent)] == [ids[1], ids[2], ids[0]]
    finished = list_child_runs(target, parent, experiment_id=experiment, status="FINISHED")
    assert [r.info.run_id for r in finished] == [ids[2], ids[0]]
    assert sorted(child_statuses(target, parent)) == ["FAILED", "FINISHED", "FINISHED"]


def test_sweep_summary_file_is_written_whole(tmp_path):
    path = tmp_path / "results" / "probes.json"
    _write_summary(path, {"n_runs": 2})
    assert json.loads(path.read_text()) == {"n_runs": 2}
    assert sorted(p.name for p in path.parent.iterdir()) == ["probes.json"]
