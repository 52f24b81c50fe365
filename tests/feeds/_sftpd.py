"""A real OpenSSH server for the SFTP-source tests, started from the system's sshd.

Its own host key, client key, config and pid file live in a scratch directory; it listens on
127.0.0.1 at a free port and serves `internal-sftp`. Key login only (a password login would
need a system user's password changed). `stop()`/`start()` drive the outage test.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = ["Sshd"]


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/usr/local/sbin")
    if found is None:
        raise RuntimeError(f"{name} not found: deploy/bootstrap.sh installs openssh-server")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(
        [_binary("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rpartition(")")[2].split()[1])
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


class Sshd:
    """`host_key_fingerprint`, `known_hosts` (a file), `client_key` (a private key file) and
    `other_key` (a key the server does not know), and `port`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        self.host_key = base / "ssh_host_ed25519_key"
        self.client_key = base / "client_key"
        self.other_key = base / "other_key"
        self.config = base / "sshd_config"
        self.known_hosts = base / "known_hosts"
        self.wrong_known_hosts = base / "wrong_known_hosts"
        self.process: subprocess.Popen[bytes] | None = None
        self.username = pwd.getpwuid(os.getuid()).pw_name

    def prepare(self) -> None:
        Path("/run/sshd").mkdir(exist_ok=True)  # the privilege separation directory
        for key in (self.host_key, self.client_key, self.other_key):
            _keygen(key)
        (self.base / "authorized_keys").write_text(
            (self.client_key.with_suffix(".pub")).read_text()
        )
        host_pub = self.host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {host_pub[0]} {host_pub[1]}\n")
        wrong = self.base / "wrong_host_key"
        _keygen(wrong)
        wrong_pub = wrong.with_suffix(".pub").read_text().split()
        self.wrong_known_hosts.write_text(
            f"[127.0.0.1]:{self.port} {wrong_pub[0]} {wrong_pub[1]}\n"
        )
        out = subprocess.run(
            [_binary("ssh-keygen"), "-lf", str(self.host_key.with_suffix(".pub"))],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        self.host_key_fingerprint = out.split()[1]
        self.config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.base / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.base / 'authorized_keys'}",
                    "AuthenticationMethods publickey",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "StrictModes no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "Subsystem sftp internal-sftp",
                    "LogLevel ERROR",
                    "",
                ]
            )
        )

    def start(self) -> None:
        log = (self.base / "sshd.log").open("ab")
        self.process = subprocess.Popen(
            [_binary("sshd"), "-D", "-e", "-f", str(self.config)],
            stdout=log,
            stderr=log,
        )
        for _ in range(200):  # until it listens (or died)
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.base / 'sshd.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("sshd did not start listening")

    def stop(self) -> None:
        if self.process is not None:
            # each session process calls setsid(): find them before the listener goes
            sessions = _descendants(self.process.pid)
            self.process.terminate()
            self.process.wait(timeout=20)
            for pid in sessions:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
            self.process = None


@contextlib.contextmanager
def running_sshd() -> Iterator[Sshd]:
    """A started sshd in a scratch directory; stopped and removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="dipgw-sshd-") as base:
        server = Sshd(Path(base))
        server.prepare()
        server.start()
        try:
            yield server
        finally:
            server.stop()
