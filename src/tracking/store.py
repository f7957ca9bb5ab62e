"""Where a job's runs go: the tracking target, its client, and checks made before any work.

Only :mod:`src.tracking` talks to MLflow. A local sqlite store is checked
writable, and a server or a PostgreSQL store answering, before any extraction starts.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.errors import ScaleprobeError

__all__ = [
    "N_JOBS_TAG",
    "PARENT_TAG",
    "ROLE_TAG",
    "RUN_NAME_TAG",
    "TrackingTarget",
    "check_reachable",
    "check_writable",
    "tracking_target",
]

PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
N_JOBS_TAG = "scaleprobe.n_jobs"  # on a sweep's parent: how many jobs the sweep launches
ROLE_TAG = "scaleprobe.role"  # "sweep" (a parent) or "job" (a child)


@dataclass(frozen=True)
class TrackingTarget:
    """Where runs go: a tracking URI, an experiment name and (local stores) an artifact root."""

    uri: str
    experiment: str = "scaleprobe"
    artifact_location: str | None = None

    @property
    def is_remote(self) -> bool:
        """True for an ``http(s)://`` tracking server."""
        return self.uri.startswith(("http://", "https://"))


def tracking_target(tracking: Any) -> TrackingTarget:
    """Build a :class:`TrackingTarget` from the ``tracking`` config node (or a mapping)."""
    return TrackingTarget(
        uri=str(tracking["uri"]),
        experiment=str(tracking["experiment"]),
        artifact_location=tracking.get("artifact_location"),
    )


def _client(target: TrackingTarget) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=target.uri)


def check_reachable(target: TrackingTarget, timeout: float = 10.0) -> None:
    """Fail fast, before any extraction, when a tracking server does not answer."""
    if target.is_remote:
        url = target.uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only)
                response.read()
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise ScaleprobeError(
                f"MLflow tracking server {target.uri} does not answer ({reason}); start it "
                "(README, 'Team tracking') or use tracking=local"
            ) from None
    elif target.uri.startswith("sqlite:///"):
        db = Path(target.uri.removeprefix("sqlite:///"))
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ScaleprobeError(
                f"tracking.uri={target.uri!r}: cannot create {db.parent}: {error.strerror}"
            ) from None
        check_writable(target)
    elif target.uri.startswith("postgresql"):
        _check_postgres(target.uri, timeout)


def _check_postgres(uri: str, timeout: float) -> None:
    """Connect once to a PostgreSQL backend store (``tracking.uri=postgresql://...``).

    MLflow itself retries a database that does not answer for minutes and then
    prints a traceback; this fails in one line, before any extraction.
    """
    import psycopg
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    shown = url.render_as_string(hide_password=True)
    try:
        psycopg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            password=url.password,
            dbname=url.database,
            connect_timeout=max(1, int(timeout)),
        ).close()
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ScaleprobeError(
            f"PostgreSQL tracking store {shown} does not answer ({reason}); start it "
            "(README, 'Team tracking') or use tracking=local"
        ) from None


def _writable_error(what: str, path: Path, error: OSError) -> ScaleprobeError:
    return ScaleprobeError(
        f"MLflow store {what} {path} cannot be written ({error.strerror}); make it writable "
        "or set paths.mlruns_dir to a writable directory"
    )


def _probe_dir(path: Path) -> None:
    """Create and remove a file in ``path``: what sqlite's journal and MLflow's artifacts need."""
    probe = path / f".scaleprobe-write-test-{os.getpid()}"
    fd = os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)
    probe.unlink()


def check_writable(target: TrackingTarget) -> None:
    """Fail before any extraction when a local store cannot take a run.

    sqlite opens a read-only database without complaint and fails only at
    the first write, i.e. after all the compute; so this opens the database
    file for writing, creates a file beside it (sqlite writes its journal
    there) and one in the local artifact root.
    """
    if not target.uri.startswith("sqlite:///"):
        return
    db = Path(target.uri.removeprefix("sqlite:///"))
    try:
        _probe_dir(db.parent)
    except OSError as error:
        raise _writable_error("directory", db.parent, error) from None
    if db.exists():
        try:
            os.close(os.open(db, os.O_RDWR))
        except OSError as error:
            raise _writable_error("database", db, error) from None
    location = target.artifact_location
    if location and "://" not in location:
        root = Path(location)
        try:
            root.mkdir(parents=True, exist_ok=True)
            _probe_dir(root)
        except OSError as error:
            raise _writable_error("artifact directory", root, error) from None


def _sqlite_path(target: TrackingTarget) -> Path | None:
    return (
        Path(target.uri.removeprefix("sqlite:///")) if target.uri.startswith("sqlite:///") else None
    )
