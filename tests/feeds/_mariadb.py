"""A real MariaDB server for the database-source tests, started from Debian's binaries.

The project's bootstrap installs `mariadb-server`; the tests start their own throwaway
instance (its own data directory, socket and free port, as root on a CI machine) rather than
rely on a system service, and stop it afterwards. `stop()`/`start()` again drive the outage
test: the data directory survives, so the tables do too.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pymysql

__all__ = ["MariaDB", "running_mariadb"]

DATABASE = "his"
USER = "dipgw_reader"
PASSWORD = "s3cret-Pa55word"


def _binary(name: str) -> str:
    """Debian puts the server in /usr/sbin, which a CI user's PATH may lack."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(f"{name} not found: deploy/bootstrap.sh installs mariadb-server")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MariaDB:
    """One server: `dsn` (no password in it) plus `password`; `root()` for setting up tables."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.datadir = base / "data"
        self.port = _free_port()
        self.socket = base / "mysqld.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self.password = PASSWORD
        self.dsn = f"mysql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def install(self) -> None:
        subprocess.run(
            [
                _binary("mariadb-install-db"),
                "--no-defaults",
                "--user=root",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        log = (self.base / "server.log").open("ab")
        self.process = subprocess.Popen(
            [
                _binary("mariadbd"),
                "--no-defaults",
                "--user=root",
                f"--datadir={self.datadir}",
                f"--socket={self.socket}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                f"--pid-file={self.base / 'mysqld.pid'}",
                "--innodb-buffer-pool-size=64M",
                "--innodb-log-file-size=16M",
                "--innodb-flush-log-at-trx-commit=2",
                "--skip-log-bin",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            if self.process.poll() is not None:
                tail = (self.base / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"mariadbd exited ({self.process.returncode}):\n{tail}")
            try:
                self.root().close()
                return
            except pymysql.err.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def root(self, database: str | None = None) -> pymysql.connections.Connection:  # type: ignore[type-arg]
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            password="",
            database=database,
            charset="utf8mb4",
            autocommit=True,
        )

    def execute(self, *statements: str) -> None:
        """Run DDL/DML as root in the test database."""
        conn = self.root(DATABASE)
        try:
            with conn.cursor() as cur:
                for sql in statements:
                    cur.execute(sql)
        finally:
            conn.close()

    def setup(self) -> None:
        conn = self.root()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE} CHARACTER SET utf8mb4")
                cur.execute(f"CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'")
                cur.execute(f"GRANT ALL ON *.* TO '{USER}'@'%'")
        finally:
            conn.close()


@contextlib.contextmanager
def running_mariadb() -> Iterator[MariaDB]:
    """A started server with database `his` and a password user; removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="dipgw-test-mariadb-"))
    server = MariaDB(base)
    try:
        server.install()
        server.start()
        server.setup()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
