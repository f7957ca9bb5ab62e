"""A real ``mlflow server`` on 127.0.0.1, shared by the tracking-server and browser tests.

Starting one takes 25-45 s on 2 cores, so a session starts it once, on first
use, with the command the README gives a team (sqlite backend store, proxied
artifacts); tests keep apart by experiment name. Under pytest-xdist each worker
is its own session (``--dist loadfile``), so two workers may each start one. It
is always stopped at the end of the session, its whole process group (the
uvicorn worker included).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_repo import BIN, free_port, tool_env

SERVER_START_TIMEOUT_S = 240


def _stop(process: subprocess.Popen) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL after a bounded wait."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Yield ``{"url": ..., "root": ...}`` of a running server (bounded start, always stopped)."""
    root: Path = tmp_path_factory.mktemp("mlflow-server")
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root}/mlflow.db",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--serve-artifacts",
        "--host",
        "127.0.0.1",
        "--port",
        url.rsplit(":", 1)[1],
        "--workers",
        "1",
    ]
    log_path = root / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            command,
            cwd=root,
            env=tool_env(root),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    pytest.fail(f"mlflow server exited {process.returncode}: {log_path}")
                try:
                    health = f"{url}/health"  # http on 127.0.0.1 only
                    with urllib.request.urlopen(health, timeout=2) as response:  # noqa: S310
                        if response.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"mlflow server not healthy after {SERVER_START_TIMEOUT_S}s")
                time.sleep(1)
            yield {"url": url, "root": root}
        finally:
            _stop(process)
