"""dipgw against a secured Kafka, as a province runs it: the project's local cluster with a
SASL_SSL client listener (certificates made here, SCRAM users created at format time) and
ACLs enforced (StandardAuthorizer); the gateway and workers run as least-privilege principals
(`adapters.runtime.kafka.acl_plan`) and a city cannot read another city's topic."""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from adapters.runtime.kafka import (
    KafkaAuthenticationError,
    acl_plan,
    client_options,
    create_acls,
    ensure_topics,
)
from adapters.runtime.settings import Settings
from gateway.localkafka import LocalKafkaCluster, LocalSecurity
from gateway.runtime import all_topics, running_stack
from tests.builders import document, push, wait_scored
from tests.clock import CLOCK
from tests.conftest import register_hospital

pytestmark = pytest.mark.integration

GATEWAY, WORKERS = "dipgw-gateway", "dipgw-workers"
CITIES = {"440100": "city-440100", "440300": "city-440300"}
# A second principal set, granted only by `dipgw kafka acls apply`.
ACL_USERS = {"gateway": "acl-gateway", "workers": "acl-workers", "city": "acl-city-{admdvs}"}
ACL_CITY_USERS = [ACL_USERS["city"].format(admdvs=city) for city in CITIES]
PASSWORDS = {
    name: secrets.token_urlsafe(18)
    for name in (
        "admin",
        GATEWAY,
        WORKERS,
        *CITIES.values(),
        ACL_USERS["gateway"],
        ACL_USERS["workers"],
        *ACL_CITY_USERS,
    )
}


@dataclass(frozen=True)
class Secured:
    cluster: LocalKafkaCluster
    bootstrap: str
    ca_file: Path
    home: Path


def make_pki(into: Path) -> tuple[Path, Path, Path]:
    """A CA and the brokers' certificate (127.0.0.1, localhost; server and client use)."""
    into.mkdir(parents=True)
    now = dt.datetime.now(dt.UTC)

    def cert(
        subject: str, key: rsa.RSAPrivateKey, issuer: x509.Name | None, signer: rsa.RSAPrivateKey
    ) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()), False
            )
        )
        if issuer is None:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    ]
                ),
                False,
            ).add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = cert("dipgw-test-ca", ca_key, None, ca_key)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    broker = cert("dipgw-local-broker", key, ca.subject, ca_key)
    paths = into / "ca.pem", into / "broker.pem", into / "broker.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(broker.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.fixture(scope="module")
def secured() -> Iterator[Secured]:
    """One secured single-node cluster for the module (started from the main thread)."""
    home = Path(tempfile.mkdtemp(prefix="dipgw-test-sasl-"))
    try:
        ca, cert, key = make_pki(home / "pki")
        cluster = LocalKafkaCluster(
            home / "kafka",
            heap_mb=256,
            security=LocalSecurity(ca, cert, key, users=PASSWORDS),
        )
        bootstrap = cluster.start(owned=True)
        try:
            yield Secured(cluster, bootstrap, ca, home)
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)


def as_user(
    base: Settings, secured: Secured, user: str, *, mechanism: str = "SCRAM-SHA-512"
) -> Settings:
    """`base` connecting as `user`, its password from a file (a mounted secret)."""
    secret = secured.home / f"{user}.password"
    secret.write_text(PASSWORDS.get(user, "wrong-password") + "\n")
    kafka = msgspec.structs.replace(
        base.kafka,
        bootstrap=secured.bootstrap,
        security_protocol="SASL_SSL",
        sasl_mechanism=mechanism,
        sasl_username=user,
        sasl_password_file=str(secret),
        ssl_cafile=str(secured.ca_file),
    )
    return msgspec.structs.replace(base, kafka=kafka)


def consumer(settings: Settings, topic: str, group: str | None = None) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **client_options(settings.kafka),
    )


async def test_round_trip_over_sasl_ssl_with_each_mechanism(
    secured: Secured, settings: Settings
) -> None:
    admin = as_user(settings, secured, "admin")
    topic = "security.round-trip.v1"
    assert await ensure_topics(admin, secured.bootstrap, [topic]) == [topic]
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"):
        client = as_user(settings, secured, "admin", mechanism=mechanism)
        producer = AIOKafkaProducer(
            bootstrap_servers=secured.bootstrap, acks="all", **client_options(client.kafka)
        )
        await producer.start()
        try:
            await producer.send_and_wait(topic, mechanism.encode())
        finally:
            await producer.stop()
    reader = consumer(admin, topic)
    await reader.start()
    try:
        seen: list[bytes] = []
        while len(seen) < 3:
            batch = await reader.getmany(timeout_ms=1000)
            seen += [r.value or b"" for records in batch.values() for r in records]
    finally:
        await reader.stop()
    assert sorted(seen) == [b"PLAIN", b"SCRAM-SHA-256", b"SCRAM-SHA-512"]


async def test_wrong_password_is_refused(
    secured: Secured, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    intruder = as_user(settings, secured, "admin")
    Path(intruder.kafka.sasl_password_file).write_text("not-the-password")
    producer = AIOKafkaProducer(
        bootstrap_servers=secured.bootstrap, **client_options(intruder.kafka)
    )
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    # aiokafka raises "Unable to bootstrap"; the broker's reason is in its log line
    assert "SaslAuthenticationFailed" in caplog.text and "invalid credentials" in caplog.text


async def test_a_process_with_a_wrong_password_stops_at_once(
    secured: Secured, settings: Settings, fresh_dsn: str
) -> None:
    """Refused credentials are not a Kafka that is away: the start ends at once (not after
    the 120 s of waiting for dependencies) naming the settings to fix."""
    intruder = as_user(settings, secured, "admin")
    Path(intruder.kafka.sasl_password_file).write_text("not-the-password")
    started = time.monotonic()
    with pytest.raises(KafkaAuthenticationError) as refused:
        async with running_stack(intruder, secured.bootstrap, fresh_dsn, clock=CLOCK):
            pass
    assert time.monotonic() - started < 20
    message = str(refused.value)
    assert "kafka.sasl_username" in message and "kafka.sasl_password" in message
    assert "'admin'" in message and "SCRAM-SHA-512" in message
    assert "not-the-password" not in message


def test_dipgw_up_with_a_wrong_password_exits_with_one_line(
    secured: Secured, fresh_dsn: str, tmp_path: Path
) -> None:
    secret = tmp_path / "password"
    secret.write_text("not-the-password\n")
    config = tmp_path / "dipgw.toml"
    config.write_text(
        f"""state_dir = "{tmp_path / "state"}"
[kafka]
bootstrap = "{secured.bootstrap}"
security_protocol = "SASL_SSL"
sasl_mechanism = "SCRAM-SHA-256"
sasl_username = "admin"
sasl_password_file = "{secret}"
ssl_cafile = "{secured.ca_file}"
[pg]
dsn = "{fresh_dsn}"
"""
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), "up"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < 30
    assert proc.returncode == 1, proc.stdout + proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("dipgw: ")]
    assert len(error_lines) == 1, proc.stderr
    assert "kafka.sasl_password" in error_lines[0] and "'admin'" in error_lines[0]
    assert "Traceback" not in proc.stderr


async def test_gateway_and_workers_run_as_least_privilege_principals(
    secured: Secured, settings: Settings, fresh_dsn: str
) -> None:
    admin = as_user(settings, secured, "admin")
    t = settings.topics
    cities = [t.scored.format(admdvs=city) for city in CITIES]
    await ensure_topics(admin, secured.bootstrap, [*all_topics(settings), *cities])
    plan = acl_plan(settings, gateway=GATEWAY, workers=WORKERS, cities=CITIES)
    await create_acls(admin, secured.bootstrap, plan)

    gateway = as_user(settings, secured, GATEWAY)
    workers = as_user(settings, secured, WORKERS)
    async with (
        running_stack(workers, secured.bootstrap, fresh_dsn, gateway=False, clock=CLOCK) as w,
        running_stack(gateway, secured.bootstrap, fresh_dsn, workers=(), clock=CLOCK) as gw,
    ):
        from workers.dip import SAMPLE_RULES
        from workers.rules_store import import_rules, read_rules_files

        ruleset, sources = read_rules_files([SAMPLE_RULES["440100"]])
        await import_rules(w.pool, ruleset, sources)
        hospital = await register_hospital(gw, "H44010000001", "440100")
        setl_id = f"SEC{secrets.token_hex(6)}"
        await push(hospital, document(setl_id, area="440100", insured="440100"))
        scored = await wait_scored(w.pool, {("H44010000001", setl_id): 1})
        assert scored[("H44010000001", setl_id)]["revision"] == 1

    # The city reads its own topic, with a group of its own prefix ...
    city = as_user(settings, secured, CITIES["440100"])
    reader = consumer(city, cities[0], group="city.440100.bureau")
    await reader.start()
    try:
        found = False
        while not found:
            batch = await reader.getmany(timeout_ms=1000)
            found = any(setl_id.encode() in (r.value or b"") for rs in batch.values() for r in rs)
    finally:
        await reader.stop()

    # ... and another city is denied it.
    other = as_user(settings, secured, CITIES["440300"])
    denied = consumer(other, cities[0], group="city.440300.bureau")
    with pytest.raises(TopicAuthorizationFailedError):
        await denied.start()
        await denied.getmany(timeout_ms=5000)
    await denied.stop()

    # The gateway reads the accepted topic only by position (the ops message browser opening
    # a dead letter), never in a consumer group: it cannot consume the workers' input.
    snoop = consumer(as_user(settings, secured, GATEWAY), t.accepted, group="dipgw.snoop")
    with pytest.raises(GroupAuthorizationFailedError):
        await snoop.start()
        await snoop.getmany(timeout_ms=5000)
    await snoop.stop()


def dipgw(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIPGW_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "--config", str(config), *args],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_kafka_acls_plan_and_apply_grant_exactly_what_each_principal_needs(
    secured: Secured, settings: Settings, tmp_path: Path
) -> None:
    admin = as_user(settings, secured, "admin")
    t = settings.topics
    city_topics = [t.scored.format(admdvs=city) for city in CITIES]
    await ensure_topics(admin, secured.bootstrap, [*all_topics(settings), *city_topics])
    config = tmp_path / "dipgw.toml"
    config.write_text(
        f"""state_dir = "{tmp_path / "state"}"
[kafka]
bootstrap = "{secured.bootstrap}"
security_protocol = "SASL_SSL"
sasl_mechanism = "SCRAM-SHA-512"
sasl_username = "admin"
sasl_password_file = "{admin.kafka.sasl_password_file}"
ssl_cafile = "{secured.ca_file}"
[topics]
auto_create = false
"""
    )
    users = ["--gateway-user", ACL_USERS["gateway"], "--workers-user", ACL_USERS["workers"]]
    users += ["--city-user", ACL_USERS["city"], *(f"--city={city}" for city in CITIES)]

    before = dipgw(config, "kafka", "acls", "plan", "--json", *users)
    assert before.returncode == 1, before.stderr
    planned = msgspec.json.decode(before.stdout)
    expected = acl_plan(
        settings,
        gateway=ACL_USERS["gateway"],
        workers=ACL_USERS["workers"],
        cities={city: ACL_USERS["city"].format(admdvs=city) for city in CITIES},
        can_create=False,  # topics.auto_create = false: nobody may create topics
    )
    assert planned["missing"] == len(expected) == len(planned["bindings"])
    assert {(b["principal"], b["operation"], b["resource_name"]) for b in planned["bindings"]} == {
        (acl.principal, acl.operation, acl.name) for acl in expected
    }
    assert not any(b["operation"] == "CREATE" for b in planned["bindings"])
    assert {b["state"] for b in planned["bindings"]} == {"missing"}

    applied = dipgw(config, "kafka", "acls", "apply", *users)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"{len(expected)} created, 0 missing" in applied.stdout

    after = dipgw(config, "kafka", "acls", "plan", "--json", *users)
    assert after.returncode == 0, after.stdout + after.stderr
    assert msgspec.json.decode(after.stdout)["missing"] == 0

    # The gateway user writes the accepted topic.
    gateway = as_user(settings, secured, ACL_USERS["gateway"])
    producer = AIOKafkaProducer(
        bootstrap_servers=secured.bootstrap, acks="all", **client_options(gateway.kafka)
    )
    await producer.start()
    try:
        await producer.send_and_wait(t.accepted, b"acl-probe")
        # nor write a city's scored topic (only the workers do)
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(city_topics[0], b"forged")
    finally:
        await producer.stop()
    # It reads it by position, as the ops message browser opens a dead letter, but may not
    # consume it in a group.
    browser = consumer(gateway, t.accepted)
    await browser.start()
    try:
        seen = False
        while not seen:
            batch = await browser.getmany(timeout_ms=1000)
            seen = any(r.value == b"acl-probe" for rs in batch.values() for r in rs)
    finally:
        await browser.stop()
    snoop = consumer(gateway, t.accepted, group=f"{settings.worker.group_prefix}.snoop")
    with pytest.raises(GroupAuthorizationFailedError):
        await snoop.start()
        await snoop.getmany(timeout_ms=5000)
    await snoop.stop()

    # The workers read it in a group of their prefix.
    workers = as_user(settings, secured, ACL_USERS["workers"])
    reader = consumer(workers, t.accepted, group=f"{settings.worker.group_prefix}.acl-probe")
    await reader.start()
    try:
        seen = False
        while not seen:
            batch = await reader.getmany(timeout_ms=1000)
            seen = any(r.value == b"acl-probe" for rs in batch.values() for r in rs)
    finally:
        await reader.stop()

    # A city reads its own scored topic and is denied the other city's.
    city, other = ACL_CITY_USERS
    own = consumer(as_user(settings, secured, city), city_topics[0], group="city.440100.acl")
    await own.start()
    try:
        await own.getmany(timeout_ms=2000)  # authorised: no error
    finally:
        await own.stop()
    denied = consumer(as_user(settings, secured, other), city_topics[0], group="city.440300.x")
    with pytest.raises(TopicAuthorizationFailedError):
        await denied.start()
        await denied.getmany(timeout_ms=5000)
    await denied.stop()
