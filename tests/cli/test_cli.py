"""The `dipgw` command as an operator runs it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.localkafka import free_ports, pid_alive
from gateway.localpg import stop_server

ROOT = Path(__file__).parents[2]


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "up", "kafka", "db"):
        assert command in out


def test_no_command_is_usage_error() -> None:
    assert main([]) == 2


def test_bad_settings_exit_2_naming_each_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[http]\nport = -1\n")
    monkeypatch.setenv("DIPGW_LOG_LEVEL", "chatty")
    assert main(["--config", str(config), "kafka", "status"]) == 2
    err = capsys.readouterr().err
    assert "http.port = -1" in err and "log.level = 'chatty'" in err


@pytest.mark.integration
def test_demo_runs_the_whole_pipeline_and_stops_everything(scratch_dir: Path) -> None:
    tmp_path = scratch_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(DIPGW_STATE_DIR=str(tmp_path / "state"), DIPGW_HTTP_PORT="0", COLUMNS="160")
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "demo", "--records", "60", "--seed", "7"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all accepted lists stored" in proc.stdout
    assert "stored in PostgreSQL" in proc.stdout and "440300" in proc.stdout
    # Nothing it started is left running.
    kafka_pid = tmp_path / "state" / "kafka" / "kafka.pid"
    assert not kafka_pid.exists()
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path / "state") not in ps


@pytest.mark.integration
def test_up_serves_and_ctrl_c_stops_everything_it_started(scratch_dir: Path) -> None:
    tmp_path = scratch_dir
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(DIPGW_STATE_DIR=str(tmp_path / "state"), DIPGW_HTTP_PORT="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "stderr.log").open("w"),
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("dipgw is up: gateway http://127.0.0.1:"), (
            line + (tmp_path / "stderr.log").read_text()[-3000:]
        )
        url = line.split()[4].rstrip(",")
        with urllib.request.urlopen(f"{url}/healthz", timeout=5) as resp:
            assert resp.status == 200
        jvm = int((tmp_path / "state" / "kafka" / "kafka.pid").read_text())
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    assert not pid_alive(jvm)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert str(tmp_path / "state") not in ps  # no broker, no postgres left behind


def _port_and_three_free_ports() -> tuple[int, int]:
    """An HTTP port and the first of three consecutive free ones (metrics: port + index)."""
    import socket

    for _ in range(50):
        port, first = free_ports(2)
        try:
            with contextlib.ExitStack() as held:
                for candidate in (first + 1, first + 2):
                    sock = held.enter_context(socket.socket())
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        if port not in (first + 1, first + 2):
            return port, first
    raise AssertionError("no three consecutive free ports")


def _listeners(port: int, count: int, without: str = "") -> set[str]:
    """PIDs listening on `port`, waited for (up to 60 s) until `count` without `without`."""
    listeners: set[str] = set()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ss = subprocess.run(
            ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True
        ).stdout
        listeners = set(re.findall(r"pid=(\d+)", ss))
        if len(listeners) == count and without not in listeners:
            break
        time.sleep(0.2)
    return listeners


@pytest.mark.integration
def test_up_runs_several_gateway_processes_on_one_port(scratch_dir: Path) -> None:
    tmp_path = scratch_dir
    port, metrics_port = _port_and_three_free_ports()  # metrics: one port per process
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    env.update(DIPGW_STATE_DIR=str(tmp_path / "state"))
    # Settings from a file, one of them not the default: every process must run with them.
    config = tmp_path / "dipgw.toml"
    config.write_text(
        f"[http]\nport = {port}\nmax_body_bytes = 1000\n"
        f'[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n'
    )
    command = ["--config", str(config), "up", "--processes", "3", "--workers", ""]
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *command],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "stderr.log").open("w"),
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("dipgw is up"), line + (tmp_path / "stderr.log").read_text()[-3000:]

        def stderr_tail() -> str:
            return (tmp_path / "stderr.log").read_text()[-3000:]

        listeners = _listeners(port, 3)  # the extra processes come up on their own
        assert len(listeners) == 3, (listeners, stderr_tail())
        # Each process on its own metrics port (the shared one reaches a random process).
        owners = set()
        for i in range(3):
            ss = ""
            for _ in range(100):
                ss = subprocess.run(
                    ["ss", "-Hltnp", f"sport = :{metrics_port + i}"], capture_output=True, text=True
                ).stdout
                if "pid=" in ss:
                    break
                time.sleep(0.2)
            owners.update(re.findall(r"pid=(\d+)", ss))
            with urllib.request.urlopen(
                f"http://127.0.0.1:{metrics_port + i}/metrics", timeout=5
            ) as resp:
                assert b"dipgw_build_info{" in resp.read()
        assert owners == listeners, (owners, listeners)
        for _ in range(6):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                assert resp.status == 200
        # A body over the file's limit, with fresh signature headers: 413 from a process that
        # read the file, 401 (bad signature) from one on the default 16 MiB.
        statuses = set()
        for _ in range(30):  # new connections, spread over the processes by the kernel
            headers = {
                "X-Dipgw-Hospital": "H44010000001",
                "X-Dipgw-Timestamp": str(int(time.time())),
                "X-Dipgw-Nonce": f"n{time.monotonic_ns():020d}",
                "X-Dipgw-Signature": "0" * 64,
                "Content-Type": "application/json",
            }
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/v1/settlements", b"{}" + b" " * 5000, headers
            )
            try:
                urllib.request.urlopen(request, timeout=5)
            except urllib.error.HTTPError as exc:
                statuses.add(exc.code)
        assert statuses == {413}, statuses
        # An extra gateway killed: the parent logs it and starts another in its place.
        killed = min(listeners - {str(proc.pid)})
        os.kill(int(killed), signal.SIGKILL)
        listeners = _listeners(port, 3, without=killed)
        assert len(listeners) == 3 and killed not in listeners, (listeners, stderr_tail())
        assert "up.gateway_process_exited" in stderr_tail()
        children = listeners - {str(proc.pid)}
        proc.send_signal(signal.SIGKILL)  # the extra gateways must not outlive it
        proc.wait(10)
        deadline = time.monotonic() + 20
        while any(pid_alive(int(p)) for p in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(pid_alive(int(p)) for p in children)
    finally:
        proc.kill()
        stop_server(tmp_path / "state" / "pgdata")  # PostgreSQL daemonises: stop it here


def test_the_display_zone_is_read_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import argparse
    from datetime import UTC, datetime

    from contracts import shown
    from gateway.commands._common import UsageError, settings_from

    monkeypatch.setenv("DIPGW_DISPLAY_UTC_OFFSET", "+09:00")
    settings_from(argparse.Namespace(config=None))
    assert shown(datetime(2026, 11, 30, 16, 0, tzinfo=UTC)) == "2026-12-01T01:00:00+09:00"
    monkeypatch.setenv("DIPGW_DISPLAY_UTC_OFFSET", "UTC+8")
    with pytest.raises(UsageError, match=r"display\.utc_offset"):
        settings_from(argparse.Namespace(config=None))
