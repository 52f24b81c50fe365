"""A real single-node Apache Kafka (KRaft, broker+controller) for development, demo and tests.

No Kafka broker is packaged on PyPI, npm or Debian, so the broker is resolved from Maven
Central (`deploy/kafka/pom.xml`) with `mvn` into a per-user cache, once per machine and
version, and run on the machine's Java 17. Storage is formatted with `--standalone` and the
node listens on free loopback ports chosen at format time and kept with the data.

A broker started with `owned=True` gets PR_SET_PDEATHSIG, so it dies with the process that
started it even on SIGKILL: `dipgw up`, the demo and the tests never leave an orphan JVM.
`dipgw kafka up` starts it detached on purpose; `dipgw kafka down` stops it by its pid file.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

DEFAULT_VERSION = "4.1.1"
_POM = Path(__file__).resolve().parent.parent / "deploy" / "kafka" / "pom.xml"
_PR_SET_PDEATHSIG = 1
_STARTED_MARK = "Kafka Server started"

_LOG4J2 = """Configuration:
  status: warn
  Appenders:
    RollingFile:
      name: F
      fileName: "{log}"
      filePattern: "{log}.%i"
      PatternLayout: {{pattern: "[%d] %p %m (%c)%n"}}
      Policies: {{SizeBasedTriggeringPolicy: {{size: 20MB}}}}
      DefaultRolloverStrategy: {{max: 3}}
  Loggers:
    Root: {{level: INFO, AppenderRef: [{{ref: F}}]}}
    Logger:
      - {{name: kafka.request.logger, level: WARN}}
      - {{name: org.apache.kafka.controller, level: WARN}}
"""


class KafkaError(RuntimeError):
    pass


def cache_root(cache_dir: str = "") -> Path:
    """The per-user cache: the `cache_dir` setting (`DIPGW_CACHE_DIR`), else XDG, else ~/.cache."""
    if cache_dir or os.environ.get("DIPGW_CACHE_DIR"):
        return Path(cache_dir or os.environ["DIPGW_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dipgw"


def libs_dir(version: str = DEFAULT_VERSION, cache_dir: str = "") -> Path:
    return cache_root(cache_dir) / "kafka" / version / "libs"


def fetch(version: str = DEFAULT_VERSION, *, cache_dir: str = "", quiet: bool = True) -> Path:
    """Resolve the broker jars with mvn into the cache; a no-op when already there."""
    target = libs_dir(version, cache_dir)
    if (target / ".complete").exists():
        return target
    if shutil.which("mvn") is None:
        raise KafkaError("mvn not found: install Maven (apt-get install maven) to fetch Kafka")
    staging = target.with_name(f"libs.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    cmd = [
        "mvn",
        "-B",
        *(["-q"] if quiet else []),
        "-f",
        str(_POM),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={staging}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KafkaError(
            f"mvn could not resolve org.apache.kafka:kafka_2.13:{version}:\n"
            + (proc.stdout + proc.stderr)[-3000:]
        )
    if not any(staging.glob(f"kafka_2.13-{version}.jar")):
        raise KafkaError(f"mvn finished but kafka_2.13-{version}.jar is missing in {staging}")
    (staging / ".complete").write_text(version)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when its parent dies (Linux PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@dataclass
class LocalKafka:
    """One broker's state directory: config, data, log, pid and ports."""

    home: Path
    version: str = DEFAULT_VERSION
    heap_mb: int = 512
    cache_dir: str = ""

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self._ports()['broker']}"

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def _pid_file(self) -> Path:
        return self.home / "kafka.pid"

    def _ports(self) -> dict[str, int]:
        return dict(json.loads((self.home / "ports.json").read_text()))

    def pid(self) -> int | None:
        try:
            pid = int(self._pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def status(self) -> dict[str, object]:
        pid = self.pid()
        formatted = (self.home / "data" / "meta.properties").exists()
        return {
            "running": pid is not None,
            "pid": pid,
            "bootstrap": self.bootstrap if formatted else None,
            "version": self.version,
            "home": str(self.home),
            "log": str(self.log_file),
        }

    def _format(self, libs: Path) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        ports = {"broker": _free_port(), "controller": _free_port()}
        (self.home / "ports.json").write_text(json.dumps(ports))
        data = self.home / "data"
        shutil.rmtree(data, ignore_errors=True)
        (self.home / "server.properties").write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"listeners=PLAINTEXT://127.0.0.1:{ports['broker']},"
                    f"CONTROLLER://127.0.0.1:{ports['controller']}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{ports['broker']}",
                    "controller.listener.names=CONTROLLER",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{ports['controller']}",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={data}",
                    "num.partitions=1",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=10",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        (self.home / "log4j2.yaml").write_text(_LOG4J2.format(log=self.log_file))
        # Kafka's own Uuid.randomUuid() form: URL-safe base64 of 16 random bytes, unpadded.
        cluster_id = "-"
        while cluster_id.startswith("-"):  # Kafka refuses ids that look like an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        _java(
            libs,
            [
                f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "-t",
                cluster_id,
                "-c",
                str(self.home / "server.properties"),
            ],
        )

    def start(self, *, owned: bool = True, timeout: float = 90.0) -> str:
        """Start the broker (formatting first if new), wait until it serves; return bootstrap."""
        if self.pid() is not None:
            return self.bootstrap
        libs = fetch(self.version, cache_dir=self.cache_dir)
        if not (self.home / "data" / "meta.properties").exists():
            self._format(libs)
        ports = self._ports()
        busy = [name for name, port in ports.items() if _port_open(port)]
        if busy:
            raise KafkaError(
                f"ports {ports} of the local broker in {self.home} are taken by another process;"
                " stop it or remove the directory"
            )
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        out = open(self.home / "stdout.log", "ab")  # noqa: SIM115 - the child owns it
        cmd = [
            _java_bin(),
            f"-Xms{min(256, self.heap_mb)}m",
            f"-Xmx{self.heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
            "-cp",
            f"{libs}/*",
            "kafka.Kafka",
            str(self.home / "server.properties"),
        ]
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent if owned else None,
        )
        out.close()
        self._pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise KafkaError(
                    f"Kafka exited with {proc.returncode} while starting; see {self.log_file}"
                    f" and {self.home / 'stdout.log'}"
                )
            if self._log_since(offset).find(_STARTED_MARK) >= 0 and _port_open(ports["broker"]):
                return self.bootstrap
            time.sleep(0.2)
        self.stop()
        raise KafkaError(f"Kafka did not start within {timeout:.0f}s; see {self.log_file}")

    def _log_since(self, offset: int) -> str:
        try:
            with open(self.log_file, "rb") as log:
                log.seek(offset)
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM (controlled shutdown), then SIGKILL after `timeout`; True if one was running."""
        pid = self.pid()
        if pid is None:
            self._pid_file.unlink(missing_ok=True)
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            _reap(pid)
            time.sleep(0.1)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while pid_alive(pid):
                _reap(pid)
                time.sleep(0.05)
        _reap(pid)
        self._pid_file.unlink(missing_ok=True)
        return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _java_bin() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaError(
            "java not found: Kafka needs Java 17+ (apt-get install openjdk-17-jre-headless)"
        )
    return java


def _java(libs: Path, args: list[str]) -> str:
    proc = subprocess.run(
        [_java_bin(), "-Xmx256m", "-cp", f"{libs}/*", *args], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise KafkaError(f"{args[-1]} failed: {(proc.stdout + proc.stderr)[-2000:]}")
    return proc.stdout
