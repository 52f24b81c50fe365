"""Kafka plumbing shared by every process: client security, the producer, topic creation and
the ACLs each principal needs.

The producer is idempotent with acks=all, so a write acknowledged to a hospital is on every
in-sync replica and a retried send cannot duplicate it. Every client (producer, consumers,
admin) is made with `client_options`, so one `[kafka]` security setting secures them all.
Every record a producer of `new_producer` sends carries its topic's schema headers
(`contracts.schemas.message_headers`: schema id and version, content type), whichever code
sends it: the headers are derived from the topic name here, not at each send site.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import collect_hosts, create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError, SaslAuthenticationFailed
from aiokafka.protocol.admin import CreateAclsRequest, DescribeAclsRequest

from adapters.runtime import topics
from adapters.runtime.errors import DipgwError
from adapters.runtime.logs import get_logger
from adapters.runtime.metrics import PRODUCER_RENEWALS
from adapters.runtime.settings import KafkaSettings, Settings, TopicSettings
from contracts.messages import TOPIC_TYPES
from contracts.schemas import message_headers

log = get_logger("dipgw.bus")

T = TypeVar("T")


class KafkaSecurityError(DipgwError, ValueError):
    """A secret or certificate file named by a setting could not be used."""


class KafkaAuthenticationError(KafkaSecurityError):
    """The brokers refused the configured SASL user or password: retrying cannot help."""


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """The security keyword arguments of every aiokafka client (producer, consumer, admin).

    Files named by `*_file` settings are read here, when a client is made, so a rotated
    secret or certificate is used by the next client without a restart of the process."""
    options: dict[str, Any] = {"security_protocol": kafka.security_protocol}
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl_context(kafka)
    if kafka.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        options["sasl_mechanism"] = kafka.sasl_mechanism
        options["sasl_plain_username"] = kafka.sasl_username
        options["sasl_plain_password"] = _secret(
            "sasl_password", kafka.sasl_password, kafka.sasl_password_file
        )
    return options


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext:
    """TLS towards the brokers: their chain checked against `ssl_cafile` (or the system CAs),
    their name against the address unless `ssl_check_hostname` is off; a client certificate
    when `ssl_certfile` is set (mTLS)."""
    try:
        context = ssl.create_default_context(cafile=kafka.ssl_cafile or None)
        context.check_hostname = kafka.ssl_check_hostname
        if kafka.ssl_certfile:
            password = _secret(
                "ssl_key_password", kafka.ssl_key_password, kafka.ssl_key_password_file
            )
            context.load_cert_chain(kafka.ssl_certfile, kafka.ssl_keyfile or None, password or None)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaSecurityError(
            f"kafka.ssl_cafile / ssl_certfile / ssl_keyfile: cannot be used: {exc}"
        ) from None
    return context


def _secret(name: str, value: str, file: str) -> str:
    """A secret set inline, or read from its `*_file` (one trailing newline dropped)."""
    if not file:
        return value
    try:
        text = Path(file).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KafkaSecurityError(f"kafka.{name}_file = {file!r}: {exc}") from None
    return text.removesuffix("\n").removesuffix("\r")


async def authentication_refused(settings: Settings, bootstrap: str) -> str | None:
    """Why the brokers refuse the configured SASL credentials, or None when they do not (or
    cannot be reached, or SASL is not used). aiokafka's bootstrap only logs the broker's
    SaslAuthenticationFailed and raises a general "Unable to bootstrap", which looks like a
    Kafka that is away; one direct connection tells the two apart."""
    kafka = settings.kafka
    if kafka.security_protocol not in ("SASL_PLAINTEXT", "SASL_SSL"):
        return None
    options = client_options(kafka)
    for host, port, _family in collect_hosts(bootstrap):
        try:
            conn = await create_conn(
                host,
                port,
                client_id=f"{kafka.client_id}-auth-check",
                request_timeout_ms=kafka.request_timeout_ms,
                **options,
            )
        except SaslAuthenticationFailed as exc:
            return (
                f"kafka.sasl_username / kafka.sasl_password (or sasl_password_file): the broker"
                f" {host}:{port} refused user {kafka.sasl_username!r} with"
                f" {kafka.sasl_mechanism}: {exc}"
            )
        except (TimeoutError, OSError, KafkaError):
            continue  # this broker is away: another one may answer
        conn.close()
        return None
    return None


async def authenticated(
    settings: Settings, bootstrap: str, attempt: Callable[[], Awaitable[T]]
) -> T:
    """`await attempt()` (a Kafka client's start, say); when it cannot bootstrap because the
    brokers refuse the credentials, `KafkaAuthenticationError` instead of the general
    connection error, so the caller stops at once rather than waiting for Kafka."""
    try:
        return await attempt()
    except KafkaConnectionError:
        reason = await authentication_refused(settings, bootstrap)
        if reason is not None:
            raise KafkaAuthenticationError(reason) from None
        raise


Headers = list[tuple[str, bytes]]


class SchemaHeaders:
    """The schema headers of a record, from its topic's name as the settings declare it.

    A fixed name maps to its topic; a name made from a template with `{admdvs}` (the cities'
    scored topics) matches it with any city code. A topic dipgw does not declare gets none."""

    def __init__(self, topics: TopicSettings) -> None:
        self._exact: dict[str, str] = {}
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for topic in TOPIC_TYPES:
            name: str = getattr(topics, topic)
            if "{admdvs}" in name:
                before, after = name.split("{admdvs}", 1)
                pattern = re.compile(re.escape(before) + r"[^.]+" + re.escape(after))
                self._patterns.append((pattern, topic))
            else:
                self._exact[name] = topic
        self._known: dict[str, Headers] = {}

    def topic_of(self, name: str) -> str | None:
        """Which topic (its `TopicSettings` field) a topic name is, if any."""
        if name in self._exact:  # first: a fixed name may also fit a template
            return self._exact[name]
        return next((topic for p, topic in self._patterns if p.fullmatch(name)), None)

    def __call__(self, name: str) -> Headers:
        headers = self._known.get(name)
        if headers is None:
            topic = self.topic_of(name)
            headers = self._known[name] = message_headers(topic) if topic is not None else []
        return headers


def with_schema_headers(producer: Any, headers_for: Callable[[str], Headers]) -> Any:
    """`producer` whose `send` (and so `send_and_wait`) adds the topic's headers to those the
    caller gives (a caller's header of the same name wins). The method is replaced on the
    instance rather than subclassed, so every construction of `AIOKafkaProducer` stays here."""
    send = producer.send

    async def send_with_headers(
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Headers | None = None,
    ) -> Any:
        extra = headers_for(topic)
        if headers:
            given = {name for name, _ in headers}
            extra = [*headers, *(h for h in extra if h[0] not in given)]
        return await send(topic, value, key, partition, timestamp_ms, extra or None)

    producer.send = send_with_headers
    return producer


def new_producer(
    settings: Settings, bootstrap: str, *, purpose: str = "ingest"
) -> AIOKafkaProducer:
    """The one way dipgw makes a producer (idempotent, acks=all, schema headers on every
    record); `RenewingProducer` and `dipgw rescore` make theirs with it."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=f"{settings.kafka.client_id}-{purpose}",
        acks="all",
        enable_idempotence=True,
        linger_ms=0,  # a request's records are all added before the sender runs
        # A 200-list request is ~800 KB: let it go out in a few produce requests, not in
        # hundreds of 16 KB batches (the idempotent producer has one request in flight).
        max_batch_size=1024 * 1024,
        request_timeout_ms=settings.kafka.request_timeout_ms,
        compression_type=settings.kafka.compression or None,
        **client_options(settings.kafka),
    )
    return with_schema_headers(producer, SchemaHeaders(settings.topics))


class RenewingProducer:
    """The idempotent producer, replaced by a new one once it may no longer deliver.

    An idempotent producer numbers its batches per partition. When a batch fails for good
    (it expired while its partition had no leader during a broker outage, say), its number
    is spent without a record behind it; the broker then refuses every later batch of that
    partition (OutOfOrderSequence) and aiokafka's sender stops, failing every send after it.
    Kafka's Java client bumps the producer epoch at that point; aiokafka does not, so after
    any failed delivery (or a stopped sender) the next send first starts a fresh producer
    (a new producer id, numbering from zero). Renewal is attempted at most once every
    `min_interval_s`; while the broker is away it fails and sends keep answering 'retry'.
    """

    def __init__(
        self,
        make: Callable[[], AIOKafkaProducer],
        *,
        purpose: str,
        min_interval_s: float = 2.0,
        start_timeout_s: float = 10.0,
    ) -> None:
        self._make = make
        self._purpose = purpose
        self._min_interval_s = min_interval_s
        self._start_timeout_s = start_timeout_s
        self._current: AIOKafkaProducer | None = None
        self._suspect: str | None = None  # why the current producer may be unable to deliver
        self._last_attempt = -float("inf")
        self._renewing = asyncio.Lock()  # binds to the running loop on first use
        self._retiring: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        producer = self._make()
        await producer.start()
        self._current = producer

    async def stop(self) -> None:
        if self._current is not None:
            await _stop_within(self._current, 10)
        for task in list(self._retiring):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task

    @property
    def producer(self) -> AIOKafkaProducer:
        """The producer in use now (for metadata such as `partitions_for`)."""
        assert self._current is not None, "start() first"
        return self._current

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, **kw: Any
    ) -> asyncio.Future[Any]:
        """Queue a record; the future resolves when acks=all is reached (or fails)."""
        if self._suspect is not None or _sender_stopped(self.producer):
            await self._renew()
        try:
            future: asyncio.Future[Any] = await self.producer.send(topic, value, key, **kw)
        except Exception as exc:
            if not _sender_stopped(self.producer) and not self.producer._closed:
                raise  # a full buffer or no metadata yet: the producer itself is fine
            self._suspect = f"sender stopped: {type(exc).__name__}"
            if not await self._renew():
                raise
            future = await self.producer.send(topic, value, key, **kw)
        future.add_done_callback(functools.partial(self._observe, self.producer))
        return future

    async def send_and_wait(
        self, topic: str, value: bytes, key: bytes | None = None, **kw: Any
    ) -> Any:
        return await (await self.send(topic, value, key, **kw))

    def _observe(self, sender: AIOKafkaProducer, future: asyncio.Future[Any]) -> None:
        if sender is not self._current or future.cancelled() or future.exception() is None:
            return  # delivered, or failed by a producer already replaced
        self._suspect = self._suspect or f"delivery failed: {type(future.exception()).__name__}"

    async def _renew(self) -> bool:
        """Swap in a fresh producer if one can start now; True if the current one is fresh."""
        async with self._renewing:
            if self._suspect is None and not _sender_stopped(self.producer):
                return True  # another send renewed it meanwhile
            if time.monotonic() - self._last_attempt < self._min_interval_s:
                return False
            self._last_attempt = time.monotonic()
            cause = self._suspect or "sender stopped"
            fresh = self._make()
            try:
                await asyncio.wait_for(fresh.start(), self._start_timeout_s)
            except Exception as exc:
                await _stop_within(fresh, 2)
                log.warning(
                    "kafka.producer.renewal_failed",
                    purpose=self._purpose,
                    cause=cause,
                    error=type(exc).__name__,
                )
                return False
            old, self._current, self._suspect = self._current, fresh, None
            PRODUCER_RENEWALS.labels(self._purpose).inc()
            log.warning("kafka.producer.renewed", purpose=self._purpose, cause=cause)
            if old is not None:  # its undelivered records fail; their senders retry them
                task = asyncio.create_task(_stop_within(old, 5))
                self._retiring.add(task)
                task.add_done_callback(self._retiring.discard)
            return True


def _sender_stopped(producer: AIOKafkaProducer) -> bool:
    # aiokafka has no public "is this producer still able to send"; its sender task ending
    # (with OutOfOrderSequence, ProducerFenced, …) is exactly that.
    task = producer._sender.sender_task
    return task is not None and task.done()


async def _stop_within(producer: AIOKafkaProducer, timeout_s: float) -> None:
    """Stop a producer; a broker that is away must not hold the caller beyond `timeout_s`."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), timeout_s)


@contextlib.asynccontextmanager
async def admin_client(settings: Settings, bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """A started admin client (topics, configs), closed when the block ends."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id=f"{settings.kafka.client_id}-admin",
        **client_options(settings.kafka),
    )
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def ensure_topics(settings: Settings, bootstrap: str, names: list[str]) -> list[str]:
    """Create the missing topics as declared (`adapters.runtime.topics`); returns those
    created. With `topics.auto_create` off nothing is created: `topics.TopicsMissing` names
    the missing ones."""
    async with admin_client(settings, bootstrap) as admin:
        return await topics.ensure(admin, settings, names)


# -- ACLs ------------------------------------------------------------------------------------

AclOperation = Literal["READ", "WRITE", "CREATE", "DESCRIBE"]
AclResource = Literal["TOPIC", "GROUP"]
# Kafka's wire codes (org.apache.kafka.common.acl / resource): aiokafka has no enums for them.
_RESOURCE = {"TOPIC": 2, "GROUP": 3}
_OPERATION = {"READ": 3, "WRITE": 4, "CREATE": 5, "DESCRIBE": 8}
_PATTERN = {"LITERAL": 3, "PREFIXED": 4}
_ALLOW = 3


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW binding: `principal` (User:name) may `operation` on a resource, any host."""

    principal: str
    resource: AclResource
    name: str
    operation: AclOperation
    pattern: Literal["LITERAL", "PREFIXED"] = "LITERAL"

    def __str__(self) -> str:
        prefix = " (prefix)" if self.pattern == "PREFIXED" else ""
        return f"{self.principal} {self.operation} {self.resource.lower()} {self.name!r}{prefix}"


def acl_plan(
    settings: Settings,
    *,
    gateway: str,
    workers: str,
    cities: Mapping[str, str],
    can_create: bool = True,
) -> list[Acl]:
    """The least-privilege ACLs of dipgw's principals, derived from the topic settings.

    `gateway` and `workers` are the SASL user names of the gateway processes and the worker
    processes; `cities` maps a city (admdvs) to its bureau's user name. With a process of both
    roles (`dipgw up`), give its user both lists. `can_create`: the workers create a city's
    scored topic at its first case, and the quality alerts topic; False when every topic is
    created beforehand by the operator. The gateway reads the workers' input topics and may
    write them for the ops message browser (open a dead letter, replay it after a fix).
    Idempotent producers need no IDEMPOTENT_WRITE in Kafka
    3+ (WRITE on a topic implies it) and no transactional id is used, so none is granted.
    """
    t, w = settings.topics, settings.worker
    scored_prefix = t.scored.split("{admdvs}", 1)[0]
    if not scored_prefix or "{admdvs}" not in t.scored:
        raise KafkaSecurityError(
            f"topics.scored = {t.scored!r}: the ACL plan needs a fixed prefix before {{admdvs}}"
        )
    gw, wk = f"User:{gateway}", f"User:{workers}"
    fixed = [t.accepted, t.rejected, t.grouped, t.scored_all, t.out_of_province, t.quality_alerts]
    acls: list[Acl] = []
    for user in (gw, wk):  # every process checks the topics it needs at start (metadata)
        acls += [Acl(user, "TOPIC", name, "DESCRIBE") for name in fixed]
        acls.append(Acl(user, "TOPIC", scored_prefix, "DESCRIBE", "PREFIXED"))
    acls += [Acl(gw, "TOPIC", name, "WRITE") for name in (t.accepted, t.rejected)]
    consumed = [t.accepted, t.rejected, t.grouped, t.scored_all]
    acls += [Acl(wk, "TOPIC", name, "READ") for name in consumed]
    # The /ops message browser: a dead letter is read back by its position (no group) and
    # replayed onto the topic it was consumed from, which the workers consume.
    acls += [Acl(gw, "TOPIC", name, "READ") for name in consumed]
    acls += [Acl(gw, "TOPIC", name, "WRITE") for name in (t.grouped, t.scored_all)]
    acls += [Acl(wk, "TOPIC", name, "WRITE") for name in (t.grouped, t.quality_alerts)]
    # the cities' topics, scored_all and out_of_province share the scored prefix
    acls.append(Acl(wk, "TOPIC", scored_prefix, "WRITE", "PREFIXED"))
    acls.append(Acl(wk, "GROUP", f"{w.group_prefix}.", "READ", "PREFIXED"))
    if can_create:
        acls.append(Acl(wk, "TOPIC", scored_prefix, "CREATE", "PREFIXED"))
        acls.append(Acl(wk, "TOPIC", t.quality_alerts, "CREATE"))
    for city, user in sorted(cities.items()):
        acls.append(Acl(f"User:{user}", "TOPIC", t.scored.format(admdvs=city), "READ"))
        acls.append(Acl(f"User:{user}", "GROUP", city_group_prefix(city), "READ", "PREFIXED"))
    return sorted(set(acls))


def city_group_prefix(admdvs: str) -> str:
    """The consumer groups a city's bureau may use: `city.<admdvs>.` and any suffix (apart
    from the workers' `worker.group_prefix`, so neither can join the other's groups)."""
    return f"city.{admdvs}."


_ANY = 1  # the ANY of resource type, pattern type, operation and permission in a filter


async def describe_acls(settings: Settings, bootstrap: str) -> set[Acl]:
    """The cluster's ALLOW bindings for any host on topics and groups (the kind `acl_plan`
    declares), read as the configured user, which must hold DESCRIBE on the cluster (a super
    user does). Kafka's DescribeAcls with a match-everything filter; other bindings (DENY,
    one host, the cluster resource, other operations) are left out."""
    resources = {code: name for name, code in _RESOURCE.items()}
    operations = {code: name for name, code in _OPERATION.items()}
    patterns = {code: name for name, code in _PATTERN.items()}
    request = DescribeAclsRequest(
        resource_type=_ANY,
        resource_name=None,  # null: any name (principal, host too)
        resource_pattern_type_filter=_ANY,
        principal=None,
        host=None,
        operation=_ANY,
        permission_type=_ANY,
    )
    async with admin_client(settings, bootstrap) as admin:
        response = await admin._send_request(request)
    if response.error_code != 0:
        raise KafkaSecurityError(
            f"cannot describe the cluster's ACLs as {settings.kafka.sasl_username!r}:"
            f" error {response.error_code} {response.error_message}"
        )
    found: set[Acl] = set()
    for resource_type, name, pattern, bindings in response.resources:
        if resource_type not in resources or pattern not in patterns:
            continue
        for principal, host, operation, permission in bindings:
            if host == "*" and permission == _ALLOW and operation in operations:
                found.add(
                    Acl(
                        principal,
                        resources[resource_type],  # type: ignore[arg-type]
                        name,
                        operations[operation],  # type: ignore[arg-type]
                        patterns[pattern],  # type: ignore[arg-type]
                    )
                )
    return found


async def create_acls(settings: Settings, bootstrap: str, acls: list[Acl]) -> None:
    """Create the bindings (idempotent: an existing one is kept) as the configured user, which
    must be a super user or hold ALTER on the cluster. aiokafka has no ACL API: the request is
    Kafka's CreateAcls (v1), one binding each."""
    async with admin_client(settings, bootstrap) as admin:
        for acl in acls:
            request = CreateAclsRequest(
                resource_type=_RESOURCE[acl.resource],
                resource_name=acl.name,
                resource_pattern_type_filter=_PATTERN[acl.pattern],
                principal=acl.principal,
                host="*",
                operation=_OPERATION[acl.operation],
                permission_type=_ALLOW,
            )
            response = await admin._send_request(request)
            for code, message in response.creation_responses:
                if code != 0:
                    raise KafkaSecurityError(f"cannot create ACL {acl}: error {code} {message}")
