"""The MLflow UI of a finished sweep, opened in headless Chromium, lists its runs.

The UI is a single-page app: the runs table only exists after its JavaScript has
fetched the runs, so the test reads the DOM Chromium dumps after a virtual-time
budget rather than the HTML the server sends. The screenshot is kept in
``tests/artifacts/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient
from pipeline_repo import REPO, TINY, ok, sh, tool_env

pytestmark = pytest.mark.slow

logger = logging.getLogger(__name__)

ARTIFACTS = REPO / "tests" / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--virtual-time-budget=15000",
]


def chromium(tmp_path, *args: str, attempts: int = 2, timeout: float = 180) -> str:
    """Run headless Chromium with a throwaway profile; return its stdout.

    Chromium runs in its own process group, ended group and all when it hangs
    (seen once on a loaded CI machine: no output after 120 s); a hung run is
    tried once more with a fresh profile before the test fails.
    """
    binary = shutil.which("chromium")
    if binary is None:
        pytest.skip("chromium is not installed (.ci/run installs it: apt-get install chromium)")
    for attempt in range(1, attempts + 1):
        profile = tmp_path / f"chromium-profile-{attempt}"
        command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        process = subprocess.Popen(
            command,
            cwd=tmp_path,
            env=tool_env(tmp_path),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            logger.warning("chromium hung for %s s (attempt %d of %d)", timeout, attempt, attempts)
            continue
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its renderers, if any outlived it
        assert process.returncode == 0, f"chromium exited {process.returncode}:\n{stderr[-4000:]}"
        return stdout
    pytest.fail(f"chromium hung {attempts} times for {timeout} s: {command}")


def test_mlflow_ui_lists_the_runs_of_a_finished_sweep(mlflow_server, tmp_path):
    url = str(mlflow_server["url"])
    experiment = "browser-sweep"
    sweep = sh(
        tmp_path,
        sys.executable,
        "-m",
        "src.run",
        "-m",
        "alpha=0,0.01",
        "pair=albatross_kite",
        "tracking=server",
        f"tracking.experiment={experiment}",
        *TINY,
        PYTHONPATH=str(REPO),
        MLFLOW_TRACKING_URI=url,
    )
    ok(sweep)
    client = MlflowClient(url)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id])
    assert len(runs) == 3
    assert all(run.info.status == "FINISHED" for run in runs)
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]

    ARTIFACTS.mkdir(exist_ok=True)

    def open_page(name: str, address: str) -> str:
        """Dump the page's DOM and save its screenshot in one Chromium run."""
        shot = ARTIFACTS / f"mlflow_ui_sweep_{name}.png"
        shot.unlink(missing_ok=True)
        dom = chromium(
            tmp_path, "--dump-dom", f"--screenshot={shot}", "--window-size=1600,1000", address
        )
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
        logger.warning("MLflow UI screenshot: %s", shot)
        return dom

    # The runs page lists the sweep (its children sit folded under it) ...
    dom = open_page("runs", f"{url}/#/experiments/{experiment_id}/runs")
    assert experiment in dom
    assert parent.info.run_name in dom, dom[-3000:]
    # ... and the compare page of the sweep's children lists each of them.
    ids = ",".join(f"%22{child.info.run_id}%22" for child in children)
    compare = f"{url}/#/compare-runs?runs=%5B{ids}%5D&experiments=%5B%22{experiment_id}%22%5D"
    dom = open_page("compare", compare)
    for child in children:
        assert child.info.run_name in dom, child.info.run_name
        assert child.info.run_id in dom
