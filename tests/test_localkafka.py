"""The local broker's lifecycle: it never outlives the process that owns it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gateway.localkafka import LocalKafka, fetch, libs_dir, pid_alive

pytestmark = pytest.mark.integration


def test_fetch_is_cached_per_machine() -> None:
    first = fetch()
    assert (first / ".complete").exists() and first == libs_dir()
    assert any(first.glob("kafka_2.13-*.jar")) and any(first.glob("kafka-clients-*.jar"))
    started = time.monotonic()
    assert fetch() == first
    assert time.monotonic() - started < 1.0  # no mvn call the second time


def test_owned_broker_dies_with_its_owner_and_restarts_on_the_same_ports(tmp_path: Path) -> None:
    home = tmp_path / "kafka"
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from gateway.localkafka import LocalKafka
            broker = LocalKafka(Path({str(home)!r}), heap_mb=256)
            print(broker.start(owned=True), broker.pid(), flush=True)
            time.sleep(600)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert owner.stdout is not None
        bootstrap, pid = owner.stdout.readline().split()
        jvm = int(pid)
        assert pid_alive(jvm)
        owner.send_signal(signal.SIGKILL)  # no cleanup code can run in the owner
        owner.wait(10)
        deadline = time.monotonic() + 30
        while pid_alive(jvm) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not pid_alive(jvm), "the JVM outlived its owner"
    finally:
        owner.kill()

    broker = LocalKafka(home, heap_mb=256)
    assert broker.status()["running"] is False
    try:
        assert broker.start(owned=True) == bootstrap  # same data, same ports
        assert broker.status()["running"] is True
    finally:
        assert broker.stop() is True
    assert broker.status()["running"] is False and broker.pid() is None
    assert broker.stop() is False
    os.sync()
