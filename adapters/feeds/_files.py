"""File-drop sources: a watched folder and an SFTP account.

The hospital's HIS exports settlement lists as files (any registered format, chosen by
extension) into an agreed folder. A file's presence is its position: it is read whole, one
per batch, oldest first; once every line is durable `finish` writes `<name>.result.json` into
`done/` or `failed/` and only then moves the file beside it. A crash in between leaves the
file in the drop folder, so it is read and finished again into the same slot (the runner's
idempotent ingest answers `duplicate`). Nothing is ever deleted or overwritten but our own
result file of that slot.

Half-written files are never read: names of the write-then-rename convention (`.x`, `x.tmp`,
`x.part`, …) are skipped, and a file is read only once its size and mtime have stood still
for `settle_s`.
"""

from __future__ import annotations

import asyncio
import os
import stat as stat_mod
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from adapters import FORMATS
from adapters._textenc import UndecodableText, utf8_body
from adapters.feeds._registry import SOURCE_KINDS
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
)
from adapters.runtime.logs import get_logger
from contracts import CST, shown

__all__ = [
    "PARTIAL_SUFFIXES",
    "RESULT_SUFFIX",
    "DropSource",
    "Entry",
    "FolderOptions",
    "FolderSource",
    "is_partial_name",
]

log = get_logger(__name__)

MiB = 1024 * 1024
PARTIAL_SUFFIXES = (".tmp", ".part", ".partial", ".filepart", ".crdownload", ".swp")
"""Names a file has while still being written (upload tools, editors, write-then-rename)."""
RESULT_SUFFIX = ".result.json"
DONE, FAILED = "done", "failed"


def _default_extensions() -> list[str]:
    return [e for f in FORMATS for e in f.extensions]


class FolderOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    path: str
    """The drop folder; `done/` and `failed/` are made inside it."""
    settle_s: float = 2.0
    """A file is read only once its size and mtime have not changed for this long."""
    max_file_bytes: int = 256 * MiB
    extensions: list[str] = msgspec.field(default_factory=_default_extensions)
    """Accepted extensions (lower case, with the dot); others go to failed/."""

    def __post_init__(self) -> None:
        _check_common(self.settle_s, self.max_file_bytes, self.extensions)


def _check_common(settle_s: float, max_file_bytes: int, extensions: list[str]) -> None:
    if settle_s < 0:
        raise ValueError("settle_s: must be >= 0")
    if max_file_bytes < 1:
        raise ValueError("max_file_bytes: must be > 0")
    for ext in extensions:
        if FORMATS.by_extension(ext) is None:
            known = ", ".join(e for f in FORMATS for e in f.extensions)
            raise ValueError(f"extensions: {ext!r} is no registered format's ({known})")


def is_partial_name(name: str) -> bool:
    """A name the convention reserves for files still being written (or our own results)."""
    lower = name.lower()
    return name.startswith(".") or lower.endswith(PARTIAL_SUFFIXES) or lower.endswith(RESULT_SUFFIX)


@dataclass(frozen=True, slots=True)
class Entry:
    """A regular file of the drop folder as listed."""

    name: str
    size: int
    mtime: float


class _ResultFile(msgspec.Struct, kw_only=True):
    file: str
    format: str
    finished_at: str
    notes: list[str]
    accepted: int
    duplicate: int
    rejected: int
    results: list[ItemResult]


class DropSource(ABC):
    """Everything both file sources share; subclasses only list, read, write and move."""

    def __init__(
        self,
        *,
        settle_s: float,
        max_file_bytes: int,
        extensions: Sequence[str],
        where: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settle_s = settle_s
        self.max_file_bytes = max_file_bytes
        self.extensions = frozenset(e.lower() for e in extensions)
        self.where = where
        self._clock = clock
        self._seen: dict[str, tuple[int, float, float]] = {}
        """name -> (size, mtime, when first seen so) by our clock: settling across polls."""

    # -- what a subclass provides -----------------------------------------------------------

    @abstractmethod
    async def _list(self) -> list[Entry]:
        """Regular files directly in the drop folder. Raises SourceError."""

    @abstractmethod
    async def _read_bytes(self, name: str) -> bytes: ...

    @abstractmethod
    async def _exists(self, sub: str, name: str) -> bool: ...

    @abstractmethod
    async def _write_result(self, sub: str, name: str, data: bytes) -> None:
        """Write `sub/name` via a temporary name and a rename (replacing our own result)."""

    @abstractmethod
    async def _move(self, name: str, sub: str, new_name: str) -> None:
        """Move the drop folder's `name` to `sub/new_name` (never over an existing file)."""

    @abstractmethod
    async def _stat(self, name: str) -> Entry | None: ...

    def _trust_mtime(self) -> bool:
        """Whether the folder's mtimes are on our clock (a local folder), so a file whose
        mtime is already settle_s old needs no second poll."""
        return False

    # -- FeedSource ------------------------------------------------------------------------------

    async def read(self, position: str | None, limit: int) -> SourceBatch | None:
        ready = self._ready(await self._list())
        if not ready:
            return None
        entry = min(ready, key=lambda e: (e.mtime, e.name))
        self._seen.pop(entry.name, None)
        return SourceBatch(
            file=await self._file(entry),
            handle=entry,
            oldest_at=datetime.fromtimestamp(entry.mtime, UTC),
        )

    async def backlog(self, position: str | None) -> Backlog:
        waiting = [e for e in await self._list() if not is_partial_name(e.name)]
        oldest = min((e.mtime for e in waiting), default=None)
        return Backlog(
            items=len(waiting),
            oldest_at=None if oldest is None else datetime.fromtimestamp(oldest, UTC),
        )

    async def finish(self, batch: SourceBatch, results: Sequence[ItemResult]) -> None:
        entry = batch.handle
        if not isinstance(entry, Entry) or batch.file is None:
            raise TypeError("finish: not a batch of this source")
        now = await self._stat(entry.name)
        if now is None or (now.size, now.mtime) != (entry.size, entry.mtime):
            # already finished (a repeated call), or the name was dropped anew since
            log.info("feed file already finished", extra={"where": self.where})
            return
        counts = {"accepted": 0, "duplicate": 0, "rejected": 0}
        for r in results:
            counts[r.status] += 1
        failed = bool(batch.file.problems) or counts["rejected"] > 0
        sub = FAILED if failed else DONE
        slot = await self._slot(sub, entry)
        result = _ResultFile(
            file=entry.name,
            format=batch.file.format,
            finished_at=shown(datetime.now(CST)),
            notes=list(batch.file.notes),
            results=list(results),
            **counts,
        )
        body = msgspec.json.format(msgspec.json.encode(result), indent=2) + b"\n"
        await self._write_result(sub, slot + RESULT_SUFFIX, body)
        await self._move(entry.name, sub, slot)

    # -- the shared logic -------------------------------------------------------------------

    def _ready(self, entries: list[Entry]) -> list[Entry]:
        """The files settled for settle_s: unchanged across polls for that long by our clock
        (or, on a local folder, last modified that long ago)."""
        now = self._clock()
        wall = time.time()
        ready: list[Entry] = []
        present: set[str] = set()
        for e in entries:
            if is_partial_name(e.name):
                continue
            present.add(e.name)
            seen = self._seen.get(e.name)
            if seen is None or seen[:2] != (e.size, e.mtime):
                self._seen[e.name] = seen = (e.size, e.mtime, now)
            if now - seen[2] >= self.settle_s or (
                self._trust_mtime() and wall - e.mtime >= self.settle_s
            ):
                ready.append(e)
        for gone in self._seen.keys() - present:
            del self._seen[gone]
        return ready

    async def _file(self, entry: Entry) -> SourceFile:
        ext = _extension(entry.name)
        fmt = FORMATS.by_extension(ext) if ext in self.extensions else None
        if fmt is None:
            accepted = ", ".join(sorted(self.extensions))
            detail = f"extension {ext or '(none)'!r} is not accepted here ({accepted})"
            return SourceFile(entry.name, b"", "", (ReadProblem("unknown_format", detail=detail),))
        if entry.size > self.max_file_bytes:
            detail = f"{entry.size} bytes, more than this feed's limit of {self.max_file_bytes}"
            return SourceFile(entry.name, b"", fmt.name, (ReadProblem("too_large", detail=detail),))
        body = await self._read_bytes(entry.name)
        if len(body) > self.max_file_bytes:  # grew between stat and read
            detail = f"more than this feed's limit of {self.max_file_bytes} bytes"
            return SourceFile(entry.name, b"", fmt.name, (ReadProblem("too_large", detail=detail),))
        if fmt.binary:
            return SourceFile(entry.name, body, fmt.name)
        try:
            utf8, note = utf8_body(body)
        except UndecodableText as exc:
            return SourceFile(
                entry.name, b"", fmt.name, (ReadProblem("encoding", detail=str(exc)),)
            )
        return SourceFile(entry.name, utf8, fmt.name, notes=() if note is None else (note,))

    async def _slot(self, sub: str, entry: Entry) -> str:
        """The name the file takes in done/ or failed/: its own, or (taken by an earlier file
        of that name) one suffixed by its mtime. A slot holding only a result is ours from a
        finish that died before the move, and is reused: that keeps `finish` repeatable."""
        stem, ext = _split_name(entry.name)
        stamp = datetime.fromtimestamp(entry.mtime, CST).strftime("%Y%m%d-%H%M%S")
        candidates = [entry.name, f"{stem}.{stamp}{ext}"]
        n = 2
        while True:
            for name in candidates:
                if not await self._exists(sub, name):
                    return name
            candidates = [f"{stem}.{stamp}-{n}{ext}"]
            n += 1


def _extension(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _split_name(name: str) -> tuple[str, str]:
    stem, ext = os.path.splitext(name)
    return (stem, ext) if stem else (name, "")


# -- a local folder --------------------------------------------------------------------------


class FolderSource(DropSource):
    """A folder on this machine (or a share mounted on it)."""

    def __init__(self, options: FolderOptions, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(
            settle_s=options.settle_s,
            max_file_bytes=options.max_file_bytes,
            extensions=options.extensions,
            where=options.path,
            clock=clock,
        )
        self.path = Path(options.path)

    def _trust_mtime(self) -> bool:
        return True

    def _fail(self, what: str, exc: OSError) -> SourceError:
        return SourceError(f"folder {self.path}: cannot {what}: {exc.strerror or exc}")

    async def _list(self) -> list[Entry]:
        return await asyncio.to_thread(self._list_sync)

    def _list_sync(self) -> list[Entry]:
        entries: list[Entry] = []
        try:
            with os.scandir(self.path) as it:
                for d in it:
                    try:
                        st = d.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # renamed away while we listed
                    if stat_mod.S_ISREG(st.st_mode):
                        entries.append(Entry(d.name, st.st_size, st.st_mtime))
        except OSError as exc:
            raise self._fail("list it", exc) from None
        return entries

    async def _stat(self, name: str) -> Entry | None:
        try:
            st = await asyncio.to_thread(os.stat, self.path / name, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._fail("stat a file", exc) from None
        return Entry(name, st.st_size, st.st_mtime)

    async def _read_bytes(self, name: str) -> bytes:
        try:
            return await asyncio.to_thread(self._read_bounded, self.path / name)
        except OSError as exc:
            raise self._fail("read a file", exc) from None

    def _read_bounded(self, path: Path) -> bytes:
        with path.open("rb") as f:
            return f.read(self.max_file_bytes + 1)

    async def _exists(self, sub: str, name: str) -> bool:
        return await asyncio.to_thread(os.path.lexists, self.path / sub / name)

    async def _write_result(self, sub: str, name: str, data: bytes) -> None:
        try:
            await asyncio.to_thread(self._write_sync, self.path / sub, name, data)
        except OSError as exc:
            raise self._fail(f"write a result file into {sub}/", exc) from None

    @staticmethod
    def _write_sync(folder: Path, name: str, data: bytes) -> None:
        folder.mkdir(exist_ok=True)
        tmp = folder / f".{name}.tmp"
        with tmp.open("wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, folder / name)

    async def _move(self, name: str, sub: str, new_name: str) -> None:
        try:
            await asyncio.to_thread(self._move_sync, self.path / name, self.path / sub / new_name)
        except OSError as exc:
            raise self._fail(f"move a file into {sub}/", exc) from None

    @staticmethod
    def _move_sync(src: Path, dst: Path) -> None:
        # a hard link fails if dst exists (rename would replace it): never overwrite
        try:
            os.link(src, dst)
        except OSError as exc:
            if isinstance(exc, FileExistsError):
                raise
            os.rename(src, dst)  # a filesystem without hard links; the slot was checked free
            return
        os.unlink(src)

    async def close(self) -> None:
        return None


def _build_folder(config: FeedConfig) -> FolderSource:
    return FolderSource(msgspec.convert(config.options, FolderOptions))


def _build_sftp(config: FeedConfig) -> FeedSource:
    from adapters.feeds._sftp import SftpOptions, SftpSource

    return SftpSource(msgspec.convert(config.options, SftpOptions))


def _register() -> None:
    from adapters.feeds._sftp import SftpOptions

    SOURCE_KINDS.register(SourceKind("folder", FolderOptions, _build_folder))
    SOURCE_KINDS.register(
        SourceKind("sftp", SftpOptions, _build_sftp, secret_options=("password",))
    )


_register()
