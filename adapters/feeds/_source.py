"""What every feed source is: where hospital lists wait that no one pushes to the gateway.

A source (a HIS intermediate database, a watched folder, an SFTP account) only reads and
reports back; the gateway's feed runner (`gateway.feeds`) checks what it reads with the same
checker and hands it to the same ingestor as an HTTP upload, then tells the source how each
item ended (`finish`) and only then stores the source's new position. Dying anywhere in
between re-reads the batch: the ingestor's idempotency (same content → `duplicate`, changed
content → the next revision) makes the end state the same as if it had not.

Sources never decide a record's verdict and never name a rule: a problem only they can see (a
column of a type that cannot be read, a file in an unknown encoding) is a `ReadProblem` of a
fixed `kind`, which the runner turns into its catalogued refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import msgspec

from adapters.runtime.errors import DipgwError

__all__ = [
    "Backlog",
    "FeedConfig",
    "FeedSource",
    "ItemResult",
    "ReadProblem",
    "SourceBatch",
    "SourceError",
    "SourceFile",
    "SourceKind",
    "SourceRecord",
]

ProblemKind = Literal[
    "column_type",  # a value of a type a list field cannot hold (a BLOB, a JSON column, …)
    "column_missing",  # a mapped column the table or view does not have
    "encoding",  # a text file neither UTF-8 nor GB18030/GBK
    "too_large",  # a file past the source's size limit (never read into memory)
    "unreadable",  # a file that cannot be read as its format (truncated XLSX, …)
    "unknown_format",  # a file whose extension names no registered format
]


@dataclass(frozen=True, slots=True)
class ReadProblem:
    """Why a source could not turn an item into a document; `field` is the document path
    (or source column) concerned, `detail` a short description, never a cell's content."""

    kind: ProblemKind
    field: str = "$"
    detail: str = ""


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One row of a database source: the national envelope document as JSON bytes."""

    key: str
    """The source's own identity of the row (its primary key as text): the result's
    `position`, and what the status write-back updates."""
    document: bytes | None
    """None when the row could not be made into a document (see `problems`)."""
    problems: tuple[ReadProblem, ...] = ()
    source_time: datetime | None = None
    """The row's incremental column when it is a time (for the lag metric)."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One whole file of a file source: its bytes in a registered format (`adapters.FORMATS`
    name), checked like an upload to the file endpoint, line by line."""

    name: str
    body: bytes
    format: str
    problems: tuple[ReadProblem, ...] = ()
    """Non-empty: the file as a whole cannot be read (encoding, size, format)."""
    notes: tuple[str, ...] = ()
    """What the source did to the bytes that the sender should know (`decoded from GB18030`)."""


@dataclass(frozen=True, slots=True)
class SourceBatch:
    """What one `read` returns: database rows or one file, and where the source stands once
    every item of it is durable."""

    records: tuple[SourceRecord, ...] = ()
    file: SourceFile | None = None
    position: str | None = None
    """Opaque to the runner, stored by it after `finish` and given back to the next `read`
    (a database source's cursor); None for sources whose items leave when finished."""
    oldest_at: datetime | None = None
    """When the oldest item of the batch was written at the source (lag)."""
    handle: Any = field(default=None, compare=False)
    """The source's own note of what to finish (a file's path, the rows' keys)."""


class ItemResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """How one item ended, in the shape of the HTTP batch answer's `results[]`."""

    position: str
    status: Literal["accepted", "duplicate", "rejected"]
    case_key: str | None = None
    receipt_id: str | None = None
    revision: int | None = None
    errors: list[Any] | None = None
    warnings: list[Any] | None = None


@dataclass(frozen=True, slots=True)
class Backlog:
    """What waits at the source beyond the stored position (bounded counting)."""

    items: int
    oldest_at: datetime | None = None


class SourceError(DipgwError):
    """The source cannot be reached or read now (server down, login refused, folder gone):
    the runner retries with backoff and counts an error; nothing has been lost."""


class FeedSource(Protocol):
    """The narrow interface the runner drives; one instance per configured feed."""

    async def read(self, position: str | None, limit: int) -> SourceBatch | None:
        """The next items after `position` (at most `limit` rows; files one at a time), or
        None when nothing new is ready. Raises `SourceError`."""
        ...

    async def finish(self, batch: SourceBatch, results: Sequence[ItemResult]) -> None:
        """Tell the source how each item ended (status write-back; move the file to done/ or
        failed/ with its result file). Called only once every item is durable: accepted,
        duplicate or rejected (and that rejection published). Must be safe to repeat.
        Raises `SourceError`."""
        ...

    async def backlog(self, position: str | None) -> Backlog:
        """What waits beyond `position`, for the lag metrics. Raises `SourceError`."""
        ...

    async def close(self) -> None: ...


class FeedConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One configured feed: declared in settings (`[[feeds]]`) or by `dipgw feeds add`."""

    name: str
    kind: str
    """A registered source kind (`SOURCE_KINDS`): postgres, mysql, folder, sftp."""
    hospitals: list[str]
    """The institutions whose lists this feed may carry (one hospital, or a group's); a list
    of any other is refused as a foreign record, as over HTTP."""
    options: dict[str, Any] = msgspec.field(default_factory=dict)
    """The kind's own options (checked by its `options` Struct when the feed is added)."""
    poll_interval_s: float = 5.0
    batch_size: int = 500
    paused: bool = False


@dataclass(frozen=True, slots=True)
class SourceKind:
    """A registered source kind: how to check its options and build the source."""

    name: str
    options: type[msgspec.Struct]
    """Options Struct (forbid_unknown_fields): `dipgw feeds add` checks against it."""
    build: Callable[[FeedConfig], FeedSource]
    secret_options: tuple[str, ...] = ()
    """Options never shown by `feeds list` / `status` or logged (passwords)."""
