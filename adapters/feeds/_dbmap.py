"""Options of the intermediate-database sources, and rows → national documents.

The document is built by `adapters._flat.row_to_document`, the CSV/XLSX builder: a column
is read as a document path (`setl_id`, `setlinfo.setl_id`, `diseinfo[0].diag_code`), so a
table in the national field names needs no mapping at all, and a vendor's names need only a
column → path table. Child tables (a diagnosis table beside the main one) become the list
entries `<node>[i].<field>` in their order.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit
from uuid import UUID

import msgspec

from adapters._flat import _LIST_NODES, _LIST_PATH, _plain_paths, row_to_document
from adapters.feeds._source import ReadProblem
from contracts import CST, fields_of

__all__ = [
    "ChildEntries",
    "ChildOptions",
    "ChildPlan",
    "Columns",
    "DbOptions",
    "MainPlan",
    "MysqlOptions",
    "PostgresOptions",
    "build_document",
    "child_plan",
    "main_plan",
    "text_of",
]

_IDENT = re.compile(r"[A-Za-z_\u4e00-\u9fff][A-Za-z0-9_\u4e00-\u9fff]{0,62}\Z")
"""Table and column names: letters, digits, `_` (and CJK, for views in Chinese names). No
quote, dot or semicolon can pass, so a name quoted per dialect can never close its quotes."""


_OFFSET = re.compile(r"[+-](0[0-9]|1[0-4]):[0-5][0-9]\Z")


def _check_ident(name: str, what: str) -> None:
    if not _IDENT.match(name):
        raise ValueError(f"{what}: {name!r} is not a plain name (letters, digits, '_')")


def _check_table(name: str, what: str) -> None:
    parts = name.split(".")
    if len(parts) > 2:
        raise ValueError(f"{what}: {name!r} — at most schema.table")
    for part in parts:
        _check_ident(part, what)


class ChildOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A child table holding one list node's entries (diagnoses, operations)."""

    table: str
    join_column: str
    """The child's column holding the parent row's `parent_column` value."""
    parent_column: str | None = None
    """The main table's column joined on (default: the same name as `join_column`)."""
    order_column: str | None = None
    """Entries in this column's order (the main diagnosis first, as the list requires)."""
    mapping: dict[str, str] | None = None
    """Child column → the node's field name (default: columns named by the fields)."""


class DbOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Options shared by the `postgres` and `mysql` kinds (see docs/feeds-database.md)."""

    _schemes: ClassVar[tuple[str, ...]] = ()

    dsn: str
    table: str
    password: str | None = None
    password_env: str | None = None
    time_column: str | None = None
    key_column: str | None = None
    sequence_column: str | None = None
    settle_s: float = 5.0
    mapping: dict[str, str] | None = None
    mapping_file: str | None = None
    document_column: str | None = None
    children: dict[str, ChildOptions] = msgspec.field(default_factory=dict)
    defaults: dict[str, str] = msgspec.field(default_factory=dict)
    status_column: str | None = None
    message_column: str | None = None
    read_value: str = "已读取"
    failed_value: str = "校验失败"
    message_max: int = 500
    pool_size: int = 2
    connect_timeout_s: float = 10.0
    time_zone: str | None = None
    """The session's UTC offset (`+08:00`) when the server's own zone differs from the wall
    clock the HIS writes its zone-less times in: the settle cutoff is computed in it."""

    def __post_init__(self) -> None:
        scheme = urlsplit(self.dsn).scheme
        if scheme not in self._schemes:
            raise ValueError(
                f"dsn: must start with {' or '.join(s + '://' for s in self._schemes)}"
            )
        _check_table(self.table, "table")
        for what in (
            "time_column",
            "key_column",
            "sequence_column",
            "document_column",
            "status_column",
            "message_column",
        ):
            value = getattr(self, what)
            if value is not None:
                _check_ident(value, what)
        if self.sequence_column is None and (self.time_column is None or self.key_column is None):
            raise ValueError("give time_column and key_column, or sequence_column")
        if self.password is not None and self.password_env is not None:
            raise ValueError("password and password_env: give one")
        if self.time_zone is not None and not _OFFSET.match(self.time_zone):
            raise ValueError("time_zone: an offset such as +08:00")
        if self.settle_s < 0:
            raise ValueError("settle_s: must be >= 0")
        if self.message_max < 10:
            raise ValueError("message_max: at least 10")
        if not 1 <= self.pool_size <= 10:
            raise ValueError("pool_size: 1 to 10")
        if self.message_column is not None and self.status_column is None:
            raise ValueError("message_column needs status_column")
        if self.document_column is not None and (
            self.mapping or self.mapping_file or self.children
        ):
            raise ValueError("document_column holds the whole document: no mapping or children")
        if self.mapping is not None and self.mapping_file is not None:
            raise ValueError("mapping and mapping_file: give one")
        for column, path in self.columns().items():
            _check_ident(column, "mapping")
            _check_path(path, f"mapping[{column!r}]")
        for node, child in self.children.items():
            if node not in _LIST_NODES:
                raise ValueError(
                    f"children: {node!r} is not a list node ({', '.join(_LIST_NODES)})"
                )
            _check_table(child.table, f"children.{node}.table")
            for what in ("join_column", "parent_column", "order_column"):
                value = getattr(child, what)
                if value is not None:
                    _check_ident(value, f"children.{node}.{what}")
            known = {s.field for s in fields_of(node)}
            for column, name in (child.mapping or {}).items():
                _check_ident(column, f"children.{node}.mapping")
                if name not in known:
                    raise ValueError(f"children.{node}.mapping[{column!r}]: no field {name!r}")
        envelope = {s.field for s in fields_of("envelope")}
        for name in self.defaults:
            if name not in envelope:
                raise ValueError(f"defaults: {name!r} is not an envelope field")

    def columns(self) -> dict[str, str]:
        """The main table's explicit column → path mapping (inline or from the TOML file)."""
        if self.mapping_file is None:
            return dict(self.mapping or {})
        try:
            data = tomllib.loads(Path(self.mapping_file).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"mapping_file: cannot be read ({type(exc).__name__})") from None
        table = data.get("columns", data)
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise ValueError('mapping_file: a [columns] table of column = "path" lines')
        return {str(k): v for k, v in table.items()}


class PostgresOptions(DbOptions, kw_only=True, forbid_unknown_fields=True):
    _schemes: ClassVar[tuple[str, ...]] = ("postgresql", "postgres")


class MysqlOptions(DbOptions, kw_only=True, forbid_unknown_fields=True):
    _schemes: ClassVar[tuple[str, ...]] = ("mysql", "mariadb")


_PLAIN = _plain_paths()
_TARGETS = frozenset(_PLAIN.values())


def _check_path(path: str, what: str) -> None:
    if path in _PLAIN:
        return
    m = _LIST_PATH.match(path)
    if m is None or m["node"] not in _LIST_NODES:
        raise ValueError(f"{what}: {path!r} is not a document path")
    if m["field"] not in {s.field for s in fields_of(m["node"])}:
        raise ValueError(f"{what}: {path!r} — {m['node']} has no field {m['field']!r}")


# -- values → document text ------------------------------------------------------------------


def _datetime(v: datetime) -> str:
    if v.tzinfo is not None:
        v = v.astimezone(CST)
    return v.replace(tzinfo=None, microsecond=0).isoformat(" ")


def _float(v: float) -> str | None:
    return format(Decimal(repr(v)), "f") if math.isfinite(v) else None


_CONVERT: dict[type, Callable[[Any], str | None]] = {
    int: str,
    bool: lambda v: "1" if v else "0",
    Decimal: lambda v: format(v, "f") if v.is_finite() else None,
    float: _float,
    datetime: _datetime,
    date: date.isoformat,
    time: lambda v: v.replace(tzinfo=None, microsecond=0).isoformat(),
    UUID: str,
}


def text_of(value: Any) -> str | None:
    """A cell as document text; None for a value no list field can hold (bytes, JSON, an
    array…). Naive datetimes are taken as +08:00, the HIS's own wall clock."""
    if type(value) is str:
        return value
    convert = _CONVERT.get(type(value))
    return convert(value) if convert is not None else None


# -- plans: which column becomes which path ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Columns:
    """What the driver says of a result's columns."""

    names: tuple[str, ...]
    types: tuple[str, ...]
    """Each column's database type name, for the column_type detail."""
    unreadable: frozenset[int]
    """Columns whose type can never be a list field (JSON), whatever Python value they
    arrive as."""
    text: frozenset[int]
    """Columns the driver always returns as str (or None): no conversion to try."""


@dataclass(frozen=True, slots=True)
class _Cells:
    """(column index, target) split by how much work a value needs."""

    text: tuple[tuple[int, str], ...]
    other: tuple[tuple[int, str], ...]
    unreadable: tuple[tuple[int, str], ...]
    types: tuple[str, ...]

    @classmethod
    def split(cls, cells: dict[int, str], columns: Columns) -> _Cells:
        ordered = sorted(cells.items())
        return cls(
            text=tuple(c for c in ordered if c[0] in columns.text),
            other=tuple(
                c for c in ordered if c[0] not in columns.text and c[0] not in columns.unreadable
            ),
            unreadable=tuple(c for c in ordered if c[0] in columns.unreadable),
            types=columns.types,
        )

    def values(self, row: Sequence[Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(target, text) of the row's non-empty cells, and (target, db type) of the cells
        that cannot be text. Empty strings are absent, as empty CSV cells are."""
        out = [(t, v) for i, t in self.text if (v := row[i])]
        bad: list[tuple[str, str]] = []
        for i, target in self.other:
            value = row[i]
            if value is None:
                continue
            text = text_of(value)
            if text is None:
                bad.append((target, self.types[i]))
            elif text:
                out.append((target, text))
        for i, target in self.unreadable:
            if row[i] is not None:
                bad.append((target, self.types[i]))
        return out, bad


@dataclass(frozen=True, slots=True)
class MainPlan:
    cells: _Cells
    """Column → document path."""
    missing: tuple[ReadProblem, ...]


@dataclass(frozen=True, slots=True)
class ChildPlan:
    node: str
    join: int
    cells: _Cells
    """Column → the node's field name."""
    missing: tuple[ReadProblem, ...]

    def entry(self, row: Sequence[Any]) -> tuple[dict[str, str], Sequence[tuple[str, str]]]:
        """One list entry, and the (field, db type) of values that cannot be text."""
        cells = self.cells
        if not cells.other and not cells.unreadable:  # all text: the common child table
            return {f: v for i, f in cells.text if (v := row[i])}, ()
        values, bad = cells.values(row)
        return dict(values), bad


def _index(names: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i, name in enumerate(names):
        out.setdefault(name, i)
        out.setdefault(name.lower(), i)
    return out


def main_plan(columns: Columns, mapping: Mapping[str, str]) -> MainPlan:
    """Explicitly mapped columns, then every other column named by a national field (matched
    case-insensitively); the rest (keys, times, status columns) stay out of the document."""
    names = columns.names
    index = _index(names)
    cells: dict[int, str] = {}
    missing: list[ReadProblem] = []
    for column, path in mapping.items():
        i = index.get(column, index.get(column.lower()))
        if i is None:
            missing.append(ReadProblem("column_missing", column, "mapped column not in the table"))
        else:
            cells[i] = _PLAIN.get(path, path)
    for i, name in enumerate(names):
        if i not in cells and name not in mapping and name.lower() in _PLAIN:
            cells[i] = _PLAIN[name.lower()]
    return MainPlan(cells=_Cells.split(cells, columns), missing=tuple(missing))


def child_plan(node: str, options: ChildOptions, columns: Columns) -> ChildPlan:
    names = columns.names
    index = _index(names)
    known = {s.field for s in fields_of(node)}
    mapping = options.mapping or {}
    cells: dict[int, str] = {}
    missing: list[ReadProblem] = []
    for column, name in mapping.items():
        i = index.get(column, index.get(column.lower()))
        if i is None:
            missing.append(
                ReadProblem(
                    "column_missing", f"{options.table}.{column}", "mapped column not in the table"
                )
            )
        else:
            cells[i] = name
    skip = {options.join_column.lower(), (options.order_column or "").lower()}
    for i, name in enumerate(names):
        low = name.lower()
        if i not in cells and name not in mapping and low in known and low not in skip:
            cells[i] = low
    join = index.get(options.join_column, index.get(options.join_column.lower(), -1))
    return ChildPlan(
        node=node, join=join, cells=_Cells.split(cells, columns), missing=tuple(missing)
    )


def _unreadable(path: str, db_type: str) -> ReadProblem:
    return ReadProblem("column_type", path, f"{db_type} cannot be read as text")


ChildEntries = Sequence[tuple[dict[str, str], Sequence[tuple[str, str]]]]
"""A parent row's entries of one child table, in order: (entry, unreadable fields)."""


def build_document(
    row: Sequence[Any],
    plan: MainPlan,
    children: Sequence[tuple[ChildPlan, ChildEntries]],
    defaults: Mapping[str, str],
) -> tuple[bytes | None, tuple[ReadProblem, ...]]:
    """One row (and its child rows' entries) as the national document's JSON, or the
    problems that keep it from being one. A value that cannot be text makes the whole row a
    problem rather than a missing field: the hospital is told which column to fix, not a
    misleading `required field absent`."""
    pairs, bad = plan.cells.values(row)
    problems = [*plan.missing, *(_unreadable(path, t) for path, t in bad)]
    for child, entries in children:
        problems.extend(child.missing)
        for n, (_, fields) in enumerate(entries):
            problems.extend(_unreadable(f"{child.node}[{n}].{f}", t) for f, t in fields)
    if problems:
        return None, tuple(problems)
    doc = row_to_document(pairs, defaults)
    body = doc["input"]
    for child, entries in children:
        if entries:  # after any entries the main table maps itself (`diseinfo[0].…`)
            body.setdefault(child.node, []).extend(entry for entry, _ in entries)
    return msgspec.json.encode(doc), ()
