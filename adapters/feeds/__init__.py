"""Feed sources beyond HTTP push: HIS intermediate databases (中间库) and file drops.

Each source reads and reports back through the narrow `FeedSource` interface; the gateway's
feed runner (`gateway.feeds`) checks and ingests what it reads exactly as an HTTP upload. The
kinds are declared once, in `SOURCE_KINDS` (postgres, mysql, folder, sftp).
"""

from adapters.feeds import _db, _files  # noqa: F401  (each registers its kinds)
from adapters.feeds._registry import SOURCE_KINDS, SourceKindRegistry, UnknownSourceKind
from adapters.feeds._source import (
    Backlog,
    FeedConfig,
    FeedSource,
    ItemResult,
    ReadProblem,
    SourceBatch,
    SourceError,
    SourceFile,
    SourceKind,
    SourceRecord,
)

__all__ = [
    "SOURCE_KINDS",
    "Backlog",
    "FeedConfig",
    "FeedSource",
    "ItemResult",
    "ReadProblem",
    "SourceBatch",
    "SourceError",
    "SourceFile",
    "SourceKind",
    "SourceKindRegistry",
    "SourceRecord",
    "UnknownSourceKind",
]
