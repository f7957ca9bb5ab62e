"""A real ``mlflow server`` on 127.0.0.1 over a real PostgreSQL, for the server and browser tests.

Starting one takes 25-45 s on 2 cores, so a session starts it once, on first
use, with the commands the README gives a team (PostgreSQL backend store,
proxied artifacts); tests keep apart by experiment name. Under pytest-xdist
each worker is its own session (``--dist loadfile``), so two workers may each
start one. Both are always stopped at the end of the session, each its whole
process group (the uvicorn worker, PostgreSQL's backends).
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pipeline_repo import BIN, free_port, tool_env

SERVER_START_TIMEOUT_S = 240
POSTGRES_START_TIMEOUT_S = 120


def _stop(process: subprocess.Popen, stop_signal: int = signal.SIGTERM) -> None:
    """Stop a service's process group: ``stop_signal``, then SIGKILL after a bounded wait."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, stop_signal)
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass


def _postgres_bin() -> Path:
    """Return Debian's PostgreSQL server directory (``apt-get install postgresql``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
    return Path(found[-1]).parent


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """Yield the URI of a fresh PostgreSQL database on 127.0.0.1 (initdb in a temp dir).

    PostgreSQL refuses to run as root, so under root (CI) its processes run as
    Debian's ``postgres`` user, in a directory of their own outside pytest's
    0700 temporary tree.
    """
    import psycopg

    pg_bin = _postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="scaleprobe-pg-"))
    user = "postgres" if os.geteuid() == 0 else None
    if user:
        shutil.chown(base, user)
    port = free_port()
    log_path = base / "postgres.log"
    process = None
    try:
        initdb = [str(pg_bin / "initdb"), "-D", str(base / "data"), "-U", "mlflow"]
        subprocess.run(
            [*initdb, "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            user=user,
        )
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [
                    str(pg_bin / "postgres"),
                    "-D",
                    str(base / "data"),
                    "-p",
                    str(port),
                    "-k",
                    str(base),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "fsync=off",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                user=user,
            )
        deadline = time.monotonic() + POSTGRES_START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"postgres exited {process.returncode}: {log_path.read_text()}")
            try:
                admin = psycopg.connect(
                    host="127.0.0.1",
                    port=port,
                    user="mlflow",
                    dbname="postgres",
                    connect_timeout=2,
                    autocommit=True,
                )
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    pytest.fail(f"postgres not ready after {POSTGRES_START_TIMEOUT_S}s")
                time.sleep(0.5)
        with admin.cursor() as cursor:
            cursor.execute("CREATE DATABASE mlflow")
        admin.close()
        yield f"postgresql://mlflow@127.0.0.1:{port}/mlflow"
    finally:
        if process is not None:
            _stop(process, signal.SIGINT)  # PostgreSQL's fast shutdown
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def mlflow_server(
    tmp_path_factory: pytest.TempPathFactory, postgres_uri: str
) -> Iterator[dict[str, object]]:
    """Yield ``{"url": ..., "root": ...}`` of a running server (bounded start, always stopped)."""
    root: Path = tmp_path_factory.mktemp("mlflow-server")
    url = f"http://127.0.0.1:{free_port()}"
    command = [
        str(BIN / "mlflow"),
        "server",
        "--backend-store-uri",
        postgres_uri,
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
