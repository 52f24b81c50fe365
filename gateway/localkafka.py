"""A real Apache Kafka (KRaft) of one or three broker+controller nodes, for development, demo,
tests and fault drills.

No Kafka broker is packaged on PyPI, npm or Debian, so the broker is resolved from Maven
Central (`deploy/kafka/pom.xml`) with `mvn` into a per-user cache, once per machine and
version, and run on the machine's Java 17. Every node is formatted with the whole controller
quorum (`--initial-controllers`, the KIP-853 dynamic quorum; one node is what `--standalone`
makes) and listens on free loopback ports chosen at format time and kept with its data, so a
restarted node comes back where its peers and clients expect it.

Nodes started with `owned=True` get PR_SET_PDEATHSIG, so they die with the process that
started them even on SIGKILL: `dipgw up`, the demo and the tests never leave an orphan JVM.
`dipgw kafka up` starts them detached on purpose; `dipgw kafka down` stops them by pid file.

With `security=LocalSecurity(...)` the cluster is secured as a province's would be: clients
connect over SASL_SSL (SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN; SCRAM users created at format
time), and ACLs are enforced (StandardAuthorizer, nothing allowed without an ACL). The nodes
talk to each other (inter-broker and controller listeners) over mutual TLS with the broker's
own certificate, whose subject is a super user; no listener is left without authentication.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from adapters.runtime.errors import DipgwError

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


class KafkaError(DipgwError, RuntimeError):
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


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports: all are held while choosing, so none comes twice."""
    with contextlib.ExitStack() as held:
        socks = [held.enter_context(socket.socket(socket.AF_INET)) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]


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
    state = _proc_state(pid)
    if state != "Z":
        return state != ""
    # A zombie counts as dead once its other threads are gone: a killed JVM's main thread
    # turns Z first, while the rest still hold its listening sockets.
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def _proc_state(pid: int) -> str:
    """The one-letter state in /proc/<pid>/stat (R, S, T = stopped, Z = zombie); "" if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return ""


def _kafka_uuid() -> str:
    """Kafka's own Uuid.randomUuid() form: URL-safe base64 of 16 random bytes, unpadded."""
    while True:
        value = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not value.startswith("-"):  # Kafka refuses ids that look like an option
            return value


_SAFE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SCRAM_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256")
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


@dataclass(frozen=True)
class LocalSecurity:
    """A SASL_SSL client listener, SCRAM users and ACLs for a local cluster.

    `cert_file` / `key_file` (PEM; the key unencrypted PKCS#8) are the brokers' certificate,
    signed by `ca_file`: it must name 127.0.0.1 (clients check the host name) and its subject
    is the nodes' own principal (`broker_principal`, a super user, for the mutual-TLS
    inter-broker and controller listeners). `users` (name → password, [A-Za-z0-9_.-]) get
    SCRAM-SHA-512 and SCRAM-SHA-256 credentials at format time and may also log in with PLAIN;
    `super_users` bypass ACLs (the administrator that creates topics and ACLs).
    """

    ca_file: Path
    cert_file: Path
    key_file: Path
    users: Mapping[str, str] = field(default_factory=dict)
    super_users: tuple[str, ...] = ("admin",)
    broker_principal: str = "CN=dipgw-local-broker"

    def __post_init__(self) -> None:
        for name, password in self.users.items():
            if not (_SAFE.fullmatch(name) and _SAFE.fullmatch(password)):
                raise KafkaError(
                    f"local Kafka user {name!r}: names and passwords are 1-64 of [A-Za-z0-9_.-]"
                )
        for path in (self.ca_file, self.cert_file, self.key_file):
            if not Path(path).is_file():
                raise KafkaError(f"local Kafka security: {path} is not a file")

    def format_args(self) -> list[str]:
        """StorageTool's `--add-scram` for every user and both SCRAM mechanisms."""
        return [
            arg
            for name, password in self.users.items()
            for mechanism in _SCRAM_MECHANISMS
            for arg in ("--add-scram", f"{mechanism}=[name={name},password={password}]")
        ]

    def properties(self, ports: dict[str, int]) -> list[str]:
        """server.properties lines: the listeners, TLS material inline (PEM), SASL, ACLs."""
        jaas_scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        jaas_plain = "org.apache.kafka.common.security.plain.PlainLoginModule required " + " ".join(
            f'user_{name}="{password}"' for name, password in self.users.items()
        )
        supers = [f"User:{name}" for name in self.super_users] + [f"User:{self.broker_principal}"]
        return [
            f"listeners=CLIENT://127.0.0.1:{ports['broker']},"
            f"INTERNAL://127.0.0.1:{ports['internal']},"
            f"CONTROLLER://127.0.0.1:{ports['controller']}",
            f"advertised.listeners=CLIENT://127.0.0.1:{ports['broker']},"
            f"INTERNAL://127.0.0.1:{ports['internal']}",
            "inter.broker.listener.name=INTERNAL",
            "listener.security.protocol.map=CLIENT:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL",
            "ssl.keystore.type=PEM",
            "ssl.keystore.key=" + _property_value(Path(self.key_file).read_text()),
            "ssl.keystore.certificate.chain=" + _property_value(Path(self.cert_file).read_text()),
            "ssl.truststore.type=PEM",
            "ssl.truststore.certificates=" + _property_value(Path(self.ca_file).read_text()),
            "listener.name.internal.ssl.client.auth=required",
            "listener.name.controller.ssl.client.auth=required",
            "listener.name.client.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN",
            f"listener.name.client.scram-sha-512.sasl.jaas.config={jaas_scram}",
            f"listener.name.client.scram-sha-256.sasl.jaas.config={jaas_scram}",
            f"listener.name.client.plain.sasl.jaas.config={jaas_plain};",
            f"authorizer.class.name={STANDARD_AUTHORIZER}",
            "allow.everyone.if.no.acl.found=false",
            "super.users=" + ";".join(supers),
        ]


def _property_value(pem: str) -> str:
    """A PEM text as one java.util.Properties value (its newlines escaped)."""
    return pem.strip().replace("\\", "\\\\").replace("\n", "\\n")


@dataclass(frozen=True)
class KafkaNode:
    """One combined broker+controller: its directory (config, data, log, pid, ports) and JVM.

    `node_id` is the Kafka node id, so a partition leader or ISR member read from metadata
    names the node to stop, kill or pause.
    """

    node_id: int
    home: Path

    @property
    def log_file(self) -> Path:
        return self.home / "server.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "kafka.pid"

    def ports(self) -> dict[str, int]:
        return dict(json.loads((self.home / "ports.json").read_text()))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports()['broker']}"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def status(self) -> dict[str, object]:
        pid = self.pid()
        return {
            "id": self.node_id,
            "running": pid is not None,
            "paused": self.paused(),
            "pid": pid,
            "address": self.address if (self.home / "ports.json").exists() else None,
            "log": str(self.log_file),
        }

    def configure(
        self, quorum: dict[int, dict[str, int]], security: LocalSecurity | None = None
    ) -> None:
        """Write server.properties and log4j2.yaml; `quorum` maps every node id to its ports."""
        ports = quorum[self.node_id]
        replicas = len(quorum)
        # acks=all must mean two copies once there are replicas: one node may be down.
        min_isr = 1 if replicas == 1 else 2
        controllers = ",".join(f"127.0.0.1:{p['controller']}" for p in quorum.values())
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "ports.json").write_text(json.dumps(ports))
        listeners = (
            security.properties(ports)
            if security is not None
            else [
                f"listeners=PLAINTEXT://127.0.0.1:{ports['broker']},"
                f"CONTROLLER://127.0.0.1:{ports['controller']}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{ports['broker']}",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            ]
        )
        properties = self.home / "server.properties"
        properties.touch(mode=0o600)  # it may hold the brokers' private key
        properties.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    *listeners,
                    "controller.listener.names=CONTROLLER",
                    f"controller.quorum.bootstrap.servers={controllers}",
                    f"log.dirs={self.home / 'data'}",
                    "num.partitions=1",
                    f"default.replication.factor={replicas}",
                    f"min.insync.replicas={min_isr}",
                    f"offsets.topic.replication.factor={replicas}",
                    "offsets.topic.num.partitions=10",
                    f"transaction.state.log.replication.factor={replicas}",
                    f"transaction.state.log.min.isr={min_isr}",
                    f"share.coordinator.state.topic.replication.factor={replicas}",
                    f"share.coordinator.state.topic.min.isr={min_isr}",
                    "group.initial.rebalance.delay.ms=0",
                    "auto.create.topics.enable=false",
                    "log.retention.hours=168",
                    "",
                ]
            )
        )
        (self.home / "log4j2.yaml").write_text(_LOG4J2.format(log=self.log_file))

    def format_args(
        self, cluster_id: str, initial_controllers: str, extra: list[str] | None = None
    ) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.yaml'}",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "--initial-controllers",
            initial_controllers,
            *(extra or []),
            "-c",
            str(self.home / "server.properties"),
        ]

    def launch(self, libs: Path, *, heap_mb: int, owned: bool) -> _Launch:
        """Spawn the JVM (not waiting for it); `owned` ties its life to this process."""
        ports = self.ports()
        busy = [name for name, port in ports.items() if _port_open(port)]
        if busy:
            raise KafkaError(
                f"ports {ports} of Kafka node {self.node_id} in {self.home} are taken by another"
                " process; stop it or remove the directory"
            )
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
        out = open(self.home / "stdout.log", "ab")  # noqa: SIM115 - the child owns it
        cmd = [
            _java_bin(),
            f"-Xms{min(256, heap_mb)}m",
            f"-Xmx{heap_mb}m",
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
        self.pid_file.write_text(str(proc.pid))
        return _Launch(self, proc, offset)

    def paused(self) -> bool:
        pid = self.pid()
        return pid is not None and _proc_state(pid) == "T"

    def set_paused(self, paused: bool, timeout: float = 5.0) -> None:
        """SIGSTOP or SIGCONT, and wait until the JVM's state shows it (signals are async)."""
        pid = self.pid()
        if pid is None:
            raise KafkaError(f"Kafka node {self.node_id} is not running")
        os.kill(pid, signal.SIGSTOP if paused else signal.SIGCONT)
        deadline = time.monotonic() + timeout
        while self.paused() != paused:
            if time.monotonic() >= deadline:
                raise KafkaError(
                    f"Kafka node {self.node_id} did not {'pause' if paused else 'resume'}"
                )
            time.sleep(0.02)

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM (controlled shutdown), then SIGKILL after `timeout`; True if it was running."""
        return bool(_stop_all([self], timeout))

    def kill(self) -> bool:
        """SIGKILL, as a crash or power loss would; True if it was running."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            _until_gone(pid, time.monotonic() + 30)
        self.pid_file.unlink(missing_ok=True)
        return pid is not None


@dataclass(frozen=True)
class _Launch:
    """A node's JVM spawned by this process, and where its log stood before."""

    node: KafkaNode
    proc: subprocess.Popen[bytes]
    log_offset: int

    def wait_started(self, deadline: float) -> None:
        """Poll until the node logs that it started and its broker port answers."""
        node = self.node
        port = node.ports()["broker"]
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise KafkaError(
                    f"Kafka node {node.node_id} exited with {self.proc.returncode} while"
                    f" starting; see {node.log_file} and {node.home / 'stdout.log'}"
                )
            if _STARTED_MARK in self._log_since_launch() and _port_open(port):
                return
            time.sleep(0.2)
        raise KafkaError(f"Kafka node {node.node_id} did not start in time; see {node.log_file}")

    def _log_since_launch(self) -> str:
        try:
            with open(self.node.log_file, "rb") as log:
                log.seek(self.log_offset)
                return log.read().decode("utf-8", "replace")
        except OSError:
            return ""


@dataclass
class LocalKafkaCluster:
    """N combined broker+controller nodes with ids 1..N under `home`; N is 1 or 3.

    `brokers` is how many nodes a new `home` is formatted with; a formatted home keeps its
    count (`cluster.json`) and `start()` refuses another rather than drop its data. One node
    lives in `home` itself (the layout of earlier single-broker versions); node i of three
    lives in `home/node-<i>`. With three, every topic and internal topic has three replicas
    and acks=all needs two in sync, so any one node may be stopped, killed or paused.
    `heap_mb` is per node. Node control (`stop_node`, `kill_node`, `pause_node`,
    `resume_node`, `start_node`) is for fault drills. Start owned nodes from the main thread:
    the parent-death signal fires when the starting thread ends, not just the process.
    """

    home: Path
    brokers: int = 1
    version: str = DEFAULT_VERSION
    heap_mb: int = 512
    cache_dir: str = ""
    security: LocalSecurity | None = None
    """SASL_SSL for clients and ACLs (see the module's docstring); fixed at format time."""

    def __post_init__(self) -> None:
        if self.brokers not in (1, 3):
            raise KafkaError(f"a local Kafka cluster has 1 or 3 nodes, not {self.brokers}")

    @property
    def _cluster_file(self) -> Path:
        return self.home / "cluster.json"

    def formatted_nodes(self) -> int | None:
        """How many nodes `home` was formatted with; None before it is."""
        try:
            return int(json.loads(self._cluster_file.read_text())["nodes"])
        except (OSError, ValueError, KeyError):
            pass
        if (self.home / "data" / "meta.properties").exists():
            return 1  # formatted by a single-broker dipgw, before cluster.json
        return None

    def _formatted_secure(self) -> bool:
        try:
            return bool(json.loads(self._cluster_file.read_text()).get("secure", False))
        except (OSError, ValueError):
            return False

    @property
    def nodes(self) -> list[KafkaNode]:
        return self._layout(self.formatted_nodes() or self.brokers)

    def _layout(self, count: int) -> list[KafkaNode]:
        if count == 1:
            return [KafkaNode(1, self.home)]
        return [KafkaNode(i, self.home / f"node-{i}") for i in range(1, count + 1)]

    def node(self, node_id: int) -> KafkaNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise KafkaError(f"no Kafka node {node_id} in {self.home}")

    @property
    def bootstrap(self) -> str:
        """Every node's broker address, comma-joined: clients find the cluster via any one."""
        return ",".join(node.address for node in self.nodes)

    def pid(self) -> int | None:
        """The lowest-id running node's pid (for one node, its JVM); None when none runs."""
        return next((pid for pid in self.node_pids().values() if pid is not None), None)

    def node_pids(self) -> dict[int, int | None]:
        return {node.node_id: node.pid() for node in self.nodes}

    def status(self) -> dict[str, object]:
        nodes = [node.status() for node in self.nodes]
        formatted = self.formatted_nodes() is not None
        return {
            "running": all(n["running"] for n in nodes),
            "brokers": len(nodes),
            "bootstrap": self.bootstrap if formatted else None,
            "version": self.version,
            "home": str(self.home),
            "nodes": nodes,
        }

    def start(self, *, owned: bool = True, timeout: float = 120.0) -> str:
        """Start every node not running (formatting a new home first) and wait until all
        serve; return the bootstrap. `owned` nodes die with this process."""
        libs = fetch(self.version, cache_dir=self.cache_dir)
        formatted = self.formatted_nodes()
        if formatted is None:
            self._format(libs)
        elif formatted != self.brokers:
            raise KafkaError(
                f"{self.home} holds a {formatted}-node Kafka cluster, not {self.brokers}:"
                f" ask for {formatted} or remove the directory to format anew"
            )
        elif self._formatted_secure() != (self.security is not None):
            raise KafkaError(
                f"{self.home} holds a{' secured' if self._formatted_secure() else 'n unsecured'}"
                " Kafka cluster: start it as it was formatted or remove the directory"
            )
        self._launch_and_wait(
            [node for node in self.nodes if node.pid() is None], owned=owned, timeout=timeout
        )
        return self.bootstrap

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop all nodes at once (each SIGTERM, SIGKILL after `timeout`); True if any ran."""
        return bool(_stop_all(self.nodes, timeout))

    def start_node(self, node_id: int, *, owned: bool = True, timeout: float = 120.0) -> None:
        """(Re)start one stopped or killed node and wait until it serves again."""
        node = self.node(node_id)
        if node.pid() is None:
            self._launch_and_wait([node], owned=owned, timeout=timeout)

    def stop_node(self, node_id: int, timeout: float = 30.0) -> bool:
        """SIGTERM: a controlled shutdown (leadership moves away first)."""
        return self.node(node_id).stop(timeout)

    def kill_node(self, node_id: int) -> bool:
        """SIGKILL: a crash; the controller fences the node after broker.session.timeout.ms."""
        return self.node(node_id).kill()

    def pause_node(self, node_id: int) -> None:
        """SIGSTOP: a hung node (long GC, frozen VM) that holds its sockets but answers nothing.

        Resume it before its owner exits: a stopped JVM takes no parent-death SIGTERM."""
        self.node(node_id).set_paused(True)

    def resume_node(self, node_id: int) -> None:
        """SIGCONT: the paused node carries on where it stopped."""
        self.node(node_id).set_paused(False)

    def _format(self, libs: Path) -> None:
        nodes = self._layout(self.brokers)
        names = ["broker", "controller"] + (["internal"] if self.security else [])
        ports = iter(free_ports(len(names) * len(nodes)))
        quorum = {node.node_id: {name: next(ports) for name in names} for node in nodes}
        directory_ids = {node.node_id: _kafka_uuid() for node in nodes}
        initial_controllers = ",".join(
            f"{i}@127.0.0.1:{quorum[i]['controller']}:{directory_ids[i]}" for i in quorum
        )
        cluster_id = _kafka_uuid()
        for node in nodes:
            shutil.rmtree(node.home / "data", ignore_errors=True)
            node.configure(quorum, self.security)
        scram = self.security.format_args() if self.security else []
        _java(libs, [node.format_args(cluster_id, initial_controllers, scram) for node in nodes])
        # Written last: a home without it was never completely formatted.
        self._cluster_file.write_text(
            json.dumps(
                {"cluster_id": cluster_id, "nodes": len(nodes), "secure": bool(self.security)}
            )
        )

    def _launch_and_wait(self, nodes: list[KafkaNode], *, owned: bool, timeout: float) -> None:
        """Launch together (three controllers need a majority up to elect), wait for each."""
        libs = fetch(self.version, cache_dir=self.cache_dir)
        launches: list[_Launch] = []
        try:
            for node in nodes:
                launches.append(node.launch(libs, heap_mb=self.heap_mb, owned=owned))
            deadline = time.monotonic() + timeout
            for launch in launches:
                launch.wait_started(deadline)
        except BaseException:
            _stop_all([launch.node for launch in launches], timeout=10)
            raise


LocalKafka = LocalKafkaCluster
"""The one-node name that callers of the single-broker version use (same class)."""


def _stop_all(nodes: list[KafkaNode], timeout: float) -> int:
    """SIGTERM every running node at once (a controlled shutdown needs the quorum still up),
    SIGKILL those still alive after `timeout`; returns how many were running."""
    running: list[tuple[KafkaNode, int]] = []
    for node in nodes:
        pid = node.pid()
        if pid is not None:
            os.kill(pid, signal.SIGCONT)  # a paused JVM would not act on SIGTERM
            os.kill(pid, signal.SIGTERM)
            running.append((node, pid))
    deadline = time.monotonic() + timeout
    for _, pid in running:
        if not _until_gone(pid, deadline):
            os.kill(pid, signal.SIGKILL)
            _until_gone(pid, time.monotonic() + 30)
    for node in nodes:
        if node.pid() is None:
            node.pid_file.unlink(missing_ok=True)
    return len(running)


def _until_gone(pid: int, deadline: float) -> bool:
    """Poll (reaping our own child) until `pid` is gone or `deadline`; True if it is gone."""
    while True:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not pid_alive(pid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


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


def _java(libs: Path, runs: list[list[str]]) -> None:
    """Run short-lived Kafka tools (one JVM per argument list, side by side); raise on failure."""
    procs = [
        subprocess.Popen(
            [_java_bin(), "-Xmx256m", "-cp", f"{libs}/*", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for args in runs
    ]
    outputs = [proc.communicate()[0] for proc in procs]
    failures = [
        f"{args[-1]} failed: {output[-2000:]}"
        for args, proc, output in zip(runs, procs, outputs, strict=True)
        if proc.returncode != 0
    ]
    if failures:
        raise KafkaError("\n".join(failures))
