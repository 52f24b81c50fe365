"""Intermediate-database sources (中间库): PostgreSQL and MySQL/MariaDB.

The HIS writes settlement lists into an agreed table or view; the source polls it by an
incremental cursor, strictly after the stored one, ordered on the server:

- `time_column` + `key_column`: the cursor is the pair (update time, key); rows ordered by
  both, so rows sharing a time are neither skipped nor read twice across a batch boundary.
  Only rows older than `settle_s` (by the database's own clock) are read: a HIS transaction
  that stamps its rows at its start but commits later would otherwise land *behind* a cursor
  that already passed that time and never be read. The price is `settle_s` of lag.
- `sequence_column`: a growing number. The same trap exists (a lower number committed after
  a higher one is skipped); with a `time_column` as well, reading stops at the first row not
  yet settled, which closes it for transactions shorter than `settle_s`.

A row changed at the source gets a new time (or sequence) and is read again: that is how its
next revision reaches the gateway. The optional status write-back never moves a row past the
cursor: in MySQL the time column is set to itself in the same UPDATE (so `ON UPDATE
CURRENT_TIMESTAMP` does not fire); in PostgreSQL the HIS's trigger must skip status-only
updates (docs/feeds-database.md gives one).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomysql
import asyncpg
import msgspec

from adapters._flat import document_to_row
from adapters.feeds._dbmap import (
    ChildEntries,
    ChildPlan,
    Columns,
    DbOptions,
    MainPlan,
    MysqlOptions,
    PostgresOptions,
    build_document,
    child_plan,
    main_plan,
)
from adapters.feeds._registry import SOURCE_KINDS
from adapters.feeds._source import (
    Backlog,
    FeedConfig,
    ItemResult,
    SourceBatch,
    SourceError,
    SourceKind,
    SourceRecord,
)
from adapters.runtime.logs import get_logger
from contracts import CST, fields_of

__all__ = [
    "BACKLOG_CAP",
    "DatabaseSource",
    "MysqlOptions",
    "PostgresOptions",
    "demo_options",
    "write_demo_rows",
]

log = get_logger(__name__)

BACKLOG_CAP = 100_000
"""Backlog counting stops here: an exact count of millions of rows is a table scan per poll."""

_SETTLED = "__dipgw_settled"
_PG_TIME_TYPES = frozenset({"timestamp", "timestamptz", "date"})
_PG_UNREADABLE = frozenset({"json", "jsonb"})
_PG_TEXT = frozenset({"text", "varchar", "bpchar", "name"})
_MY_TYPES = {245: "json", 249: "tinyblob", 250: "mediumblob", 251: "longblob", 252: "blob"}
_MY_UNREADABLE = frozenset({245, 255})  # JSON, GEOMETRY: text-like values, not list fields
_MY_NAMES = {16: "bit", 255: "geometry", 245: "json"}


# -- cursor values in the stored position ----------------------------------------------------


def _pack(value: Any) -> list[str]:
    if isinstance(value, bool) or value is None:
        raise SourceError("a cursor column holds a boolean or NULL")
    if isinstance(value, int):
        return ["i", str(value)]
    if isinstance(value, str):
        return ["s", value]
    if isinstance(value, Decimal):
        return ["n", format(value, "f")]
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, date):
        return ["d", value.isoformat()]
    raise SourceError(f"a cursor column of Python type {type(value).__name__} is not supported")


def _unpack(packed: Any) -> Any:
    tag, text = packed
    if tag == "i":
        return int(text)
    if tag == "s":
        return str(text)
    if tag == "n":
        return Decimal(text)
    if tag == "t":
        return datetime.fromisoformat(text)
    if tag == "d":
        return date.fromisoformat(text)
    raise ValueError(tag)


def _key_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _aware(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=CST) if value.tzinfo is None else value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=CST)
    return None


# -- dialects --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Result:
    columns: Columns
    rows: Sequence[Sequence[Any]]

    @property
    def names(self) -> tuple[str, ...]:
        return self.columns.names


class _Dialect:
    """Quoting, parameters and the connection pool of one database family."""

    def __init__(self, options: DbOptions, password: str | None) -> None:
        self.options = options
        self.password = password

    def q(self, name: str) -> str:
        raise NotImplementedError

    def table(self, name: str) -> str:
        return ".".join(self.q(p) for p in name.split("."))

    def p(self, n: int) -> str:
        """The n-th (1-based) bind parameter."""
        raise NotImplementedError

    def cutoff(self, n: int) -> str:
        """The settle cutoff, `settle_s` bound as parameter n, in the time column's type."""
        raise NotImplementedError

    def in_list(self, column: str, n: int, count: int) -> tuple[str, bool]:
        """`column` among the values from parameter n on; True if the values are one array."""
        raise NotImplementedError

    def settle_arg(self) -> float | int:
        raise NotImplementedError

    async def fetch(self, sql: str, args: Sequence[Any]) -> _Result:
        raise NotImplementedError

    async def execute(self, sql: str, args: Sequence[Any]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


def _pg_zone(offset: str | None) -> dict[str, str] | None:
    """A `+08:00` offset as PostgreSQL's TimeZone: a POSIX zone, whose sign is inverted."""
    if offset is None:
        return None
    inverted = "-" if offset[0] == "+" else "+"
    return {"TimeZone": f"<{offset[0]}{offset[1:3]}{offset[4:]}>{inverted}{offset[1:]}"}


class _Postgres(_Dialect):
    def __init__(self, options: DbOptions, password: str | None) -> None:
        super().__init__(options, password)
        self._pool: asyncpg.Pool | None = None
        self.time_type = "timestamptz"
        self.key_type = "text"

    def q(self, name: str) -> str:
        return '"' + name + '"'

    def p(self, n: int) -> str:
        return f"${n}"

    def cutoff(self, n: int) -> str:
        return f"CAST(statement_timestamp() - make_interval(secs => ${n}) AS {self.time_type})"

    def settle_arg(self) -> float:
        return float(self.options.settle_s)

    def in_list(self, column: str, n: int, count: int) -> tuple[str, bool]:
        return f"{column} = ANY(${n})", True

    async def _get(self) -> asyncpg.Pool:
        if self._pool is None:
            pool = await asyncpg.create_pool(
                self.options.dsn,
                password=self.password,
                min_size=1,
                max_size=self.options.pool_size,
                timeout=self.options.connect_timeout_s,
                command_timeout=120,
                server_settings=_pg_zone(self.options.time_zone),
            )
            assert pool is not None
            try:
                await self._describe(pool)
            except BaseException:
                pool.terminate()
                raise
            self._pool = pool
        return self._pool

    async def _describe(self, pool: asyncpg.Pool) -> None:
        """The time and key columns' types: the cutoff and the write-back's key array are
        cast to them, so the comparisons stay on the columns' index."""
        o = self.options
        async with pool.acquire() as conn:
            stmt = await conn.prepare(f"SELECT * FROM {self.table(o.table)} LIMIT 0")
            types = {a.name: a.type.name for a in stmt.get_attributes()}
        if o.time_column is not None:
            self.time_type = types.get(o.time_column, "timestamptz")
            if self.time_type not in _PG_TIME_TYPES:
                raise SourceError(f"time_column {o.time_column}: a {self.time_type}, not a time")
        key = o.key_column or o.sequence_column
        if key is not None:
            self.key_type = types.get(key, "text")

    async def fetch(self, sql: str, args: Sequence[Any]) -> _Result:
        pool = await self._get()
        async with pool.acquire() as conn:
            stmt = await conn.prepare(sql)
            rows = await stmt.fetch(*args)
            attrs = stmt.get_attributes()
        types = tuple(
            a.type.name if a.type.kind == "scalar" else f"{a.type.name} ({a.type.kind})"
            for a in attrs
        )
        unreadable = frozenset(i for i, a in enumerate(attrs) if a.type.name in _PG_UNREADABLE)
        text = frozenset(i for i, a in enumerate(attrs) if a.type.name in _PG_TEXT)
        return _Result(Columns(tuple(a.name for a in attrs), types, unreadable, text), rows)

    async def execute(self, sql: str, args: Sequence[Any]) -> None:
        pool = await self._get()
        await pool.execute(sql, *args)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), 10)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pool.terminate()


class _Mysql(_Dialect):
    def __init__(self, options: DbOptions, password: str | None) -> None:
        super().__init__(options, password)
        self._pool: aiomysql.Pool | None = None

    def q(self, name: str) -> str:
        return "`" + name + "`"

    def p(self, n: int) -> str:
        return "%s"

    def cutoff(self, n: int) -> str:
        return "NOW(6) - INTERVAL %s MICROSECOND"

    def settle_arg(self) -> int:
        return round(self.options.settle_s * 1_000_000)

    def in_list(self, column: str, n: int, count: int) -> tuple[str, bool]:
        return f"{column} IN ({', '.join(['%s'] * count)})", False

    async def _get(self) -> aiomysql.Pool:
        if self._pool is None:
            parts = urlsplit(self.options.dsn)
            self._pool = await aiomysql.create_pool(
                host=parts.hostname or "localhost",
                port=parts.port or 3306,
                user=unquote(parts.username or ""),
                password=self.password or unquote(parts.password or ""),
                db=unquote(parts.path.lstrip("/")) or None,
                charset="utf8mb4",
                autocommit=True,
                minsize=1,
                maxsize=self.options.pool_size,
                connect_timeout=self.options.connect_timeout_s,
                pool_recycle=600,
                init_command=(
                    f"SET time_zone = '{self.options.time_zone}'"  # checked: [+-]HH:MM
                    if self.options.time_zone
                    else None
                ),
            )
        return self._pool

    async def fetch(self, sql: str, args: Sequence[Any]) -> _Result:
        pool = await self._get()
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(sql, tuple(args))
            rows = await cur.fetchall()
            desc = cur.description or ()
        types = tuple(_MY_NAMES.get(d[1], _MY_TYPES.get(d[1], f"type {d[1]}")) for d in desc)
        unreadable = frozenset(i for i, d in enumerate(desc) if d[1] in _MY_UNREADABLE)
        # no text fast path: a VARBINARY shares its type code with a VARCHAR
        names = tuple(d[0] for d in desc)
        return _Result(Columns(names, types, unreadable, frozenset()), rows)

    async def execute(self, sql: str, args: Sequence[Any]) -> None:
        pool = await self._get()
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(sql, tuple(args))

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
            try:
                await asyncio.wait_for(pool.wait_closed(), 10)
            except (TimeoutError, OSError):
                pool.terminate()


# -- the source ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Handle:
    keys: dict[str, Any]
    """Record key text → the key column's own value (what the write-back matches on)."""


class DatabaseSource:
    """One feed's table or view, polled by its cursor; see the module docstring."""

    def __init__(self, config: FeedConfig, options: DbOptions) -> None:
        self.name = config.name
        self.options = options
        self.columns = options.columns()
        parts = urlsplit(options.dsn)
        self.where = f"{parts.hostname or 'localhost'}:{parts.port or ''}/{options.table}".replace(
            ":/", "/"
        )
        self._dialect: _Dialect | None = None
        self._password: str | None = None
        self._plans: dict[tuple[Any, ...], Any] = {}

    # connection and errors

    def _secret(self) -> str | None:
        o = self.options
        if o.password is not None:
            return o.password
        if o.password_env is not None:
            value = os.environ.get(o.password_env)
            if value is None:
                raise SourceError(
                    f"feed {self.name}: environment variable {o.password_env} is not set"
                )
            return value
        return urlsplit(o.dsn).password

    def _db(self) -> _Dialect:
        if self._dialect is None:
            self._password = self._secret()
            kind = _Postgres if isinstance(self.options, PostgresOptions) else _Mysql
            self._dialect = kind(self.options, self._password)
        return self._dialect

    async def _fail(self, exc: BaseException, doing: str) -> SourceError:
        """The error as the runner shows it: host and table, never the password; the pool
        is dropped, so a server that comes back is connected to afresh on the next call."""
        dialect, self._dialect = self._dialect, None
        if dialect is not None:
            with contextlib.suppress(Exception):  # a broken pool must not hide the cause
                await dialect.close()
        text = str(exc).splitlines()[0] if str(exc) else ""
        for secret in (self._password, urlsplit(self.options.dsn).password):
            if secret:
                text = text.replace(secret, "***")
        log.warning(
            "feed.db_error", feed=self.name, where=self.where, doing=doing, error=type(exc).__name__
        )
        return SourceError(
            f"feed {self.name}: {doing} {self.where}: {type(exc).__name__}: {text}"[:500]
        )

    async def _fetch(self, sql: str, args: Sequence[Any], doing: str) -> _Result:
        try:
            return await self._db().fetch(sql, args)
        except SourceError:
            raise
        except Exception as exc:  # any driver failure: cannot read now
            raise await self._fail(exc, doing) from None

    # cursor

    def _after(self, position: str | None) -> list[Any] | None:
        if position is None:
            return None
        try:
            data = msgspec.json.decode(position)
            return [_unpack(v) for v in data["after"]]
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            raise SourceError(f"feed {self.name}: stored position is not this source's") from None

    def _cursor_sql(
        self, db: _Dialect, after: list[Any] | None, first: int
    ) -> tuple[str, list[Any]]:
        """The WHERE condition strictly after the cursor, parameters numbered from `first`."""
        o = self.options
        if after is None:
            return "TRUE", []
        if o.sequence_column is not None:
            return f"{db.q(o.sequence_column)} > {db.p(first)}", [after[0]]
        assert o.time_column is not None and o.key_column is not None
        t, k = db.q(o.time_column), db.q(o.key_column)
        # `t >= a` first: a range on the (time, key) index, so a batch is an index scan
        # in order, not a sort of every row past the cursor
        if isinstance(db, _Postgres):
            a, b = f"${first}", f"${first + 1}"
            return f"{t} >= {a} AND ({t}, {k}) > ({a}, {b})", [after[0], after[1]]
        return f"{t} >= %s AND ({t} > %s OR {k} > %s)", [after[0], after[0], after[1]]

    # reading

    async def read(self, position: str | None, limit: int) -> SourceBatch | None:
        o = self.options
        after = self._after(position)
        try:
            db = self._db()
            if isinstance(db, _Postgres):
                await db._get()
        except SourceError:
            raise
        except Exception as exc:
            raise await self._fail(exc, "connecting to") from None
        table = db.table(o.table)
        if o.sequence_column is not None:
            seq = db.q(o.sequence_column)
            where, args = self._cursor_sql(db, after, 1)
            settled = ""
            if o.time_column is not None:
                n = len(args) + 1
                settled = (
                    f", CASE WHEN {db.q(o.time_column)} <= {db.cutoff(n)} THEN 1 ELSE 0 END"
                    f" AS {db.q(_SETTLED)}"
                )
                args.append(db.settle_arg())
            args.append(limit)
            sql = (
                f"SELECT *{settled} FROM {table} WHERE {where}"
                f" ORDER BY {seq} LIMIT {db.p(len(args))}"
            )
        else:
            assert o.time_column is not None and o.key_column is not None
            t, k = db.q(o.time_column), db.q(o.key_column)
            where, args = self._cursor_sql(db, after, 2)
            args = [db.settle_arg(), *args, limit]
            sql = (
                f"SELECT * FROM {table} WHERE {t} <= {db.cutoff(1)} AND {where}"
                f" ORDER BY {t}, {k} LIMIT {db.p(len(args))}"
            )
        result = await self._fetch(sql, args, "reading")
        rows = list(result.rows)
        names = result.names
        index = {n: i for i, n in enumerate(names)}
        if o.sequence_column is not None and o.time_column is not None:
            flag = index[_SETTLED]
            for n, row in enumerate(rows):
                if not row[flag]:
                    rows = rows[:n]
                    break
        if not rows:
            return None
        key_col = o.key_column or o.sequence_column
        assert key_col is not None
        ki = self._column(index, key_col)
        ti = self._column(index, o.time_column) if o.time_column is not None else None
        cursor_cols = [self._column(index, o.sequence_column)] if o.sequence_column else [ti, ki]
        children = await self._children(db, result, rows)
        records: list[SourceRecord] = []
        keys: dict[str, Any] = {}
        plan = self._main_plan(result) if o.document_column is None else None
        doc_i = self._column(index, o.document_column) if o.document_column is not None else None
        for row in rows:
            key = row[ki]
            text = _key_text(key)
            keys[text] = key
            when = _aware(row[ti]) if ti is not None else None
            if doc_i is not None:
                body = row[doc_i]
                if isinstance(body, str):
                    body = body.encode()
                records.append(
                    SourceRecord(key=text, document=bytes(body or b"null"), source_time=when)
                )
                continue
            assert plan is not None
            kids = [(cp, rows_by.get(row[pi], ())) for cp, pi, rows_by in children]
            document, problems = build_document(row, plan, kids, o.defaults)
            records.append(
                SourceRecord(key=text, document=document, problems=problems, source_time=when)
            )
        last = rows[-1]
        position_out = msgspec.json.encode(
            {"after": [_pack(last[i]) for i in cursor_cols if i is not None]}
        ).decode()
        times = [r.source_time for r in records if r.source_time is not None]
        return SourceBatch(
            records=tuple(records),
            position=position_out,
            oldest_at=min(times) if times else None,
            handle=_Handle(keys),
        )

    def _column(self, index: dict[str, int], name: str) -> int:
        i = index.get(name)
        if i is None:
            lowered = {k.lower(): v for k, v in index.items()}
            i = lowered.get(name.lower())
        if i is None:
            raise SourceError(f"feed {self.name}: {self.where} has no column {name}")
        return i

    def _main_plan(self, result: _Result) -> MainPlan:
        key = ("main", result.columns)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = main_plan(result.columns, self.columns)
        assert isinstance(plan, MainPlan)
        return plan

    async def _children(
        self, db: _Dialect, parent: _Result, rows: Sequence[Sequence[Any]]
    ) -> list[tuple[ChildPlan, int, dict[Any, ChildEntries]]]:
        """Each child table's entries of this batch by parent value, in ONE query per child
        table (never one per row)."""
        out: list[tuple[ChildPlan, int, dict[Any, ChildEntries]]] = []
        index = {n: i for i, n in enumerate(parent.names)}
        for node, child in self.options.children.items():
            pi = self._column(index, child.parent_column or child.join_column)
            values = list(dict.fromkeys(r[pi] for r in rows if r[pi] is not None))
            if not values:
                continue
            order = db.q(child.join_column)
            if child.order_column is not None:
                order += ", " + db.q(child.order_column)
            cond, as_array = db.in_list(db.q(child.join_column), 1, len(values))
            sql = f"SELECT * FROM {db.table(child.table)} WHERE {cond} ORDER BY {order}"
            result = await self._fetch(sql, [values] if as_array else values, "reading")
            key = ("child", node, result.columns)
            plan = self._plans.get(key)
            if plan is None:
                plan = self._plans[key] = child_plan(node, child, result.columns)
            assert isinstance(plan, ChildPlan)
            if plan.join < 0:
                raise SourceError(
                    f"feed {self.name}: {child.table} has no column {child.join_column}"
                )
            grouped: dict[Any, list[tuple[dict[str, str], Sequence[tuple[str, str]]]]] = {}
            for r in result.rows:
                grouped.setdefault(r[plan.join], []).append(plan.entry(r))
            out.append((plan, pi, dict(grouped)))
        return out

    # write-back

    def _message(self, result: ItemResult) -> str | None:
        if result.status != "rejected":
            return None
        parts: list[str] = []
        for e in result.errors or ():
            if isinstance(e, dict):
                parts.append(
                    " ".join(
                        str(e[k])
                        for k in ("rule", "field", "message")
                        if e.get(k) not in (None, "")
                    )
                )
            else:
                parts.append(str(e))
        text = "；".join(parts)
        cap = self.options.message_max
        return text if len(text) <= cap else text[: cap - 1] + "…"

    async def finish(self, batch: SourceBatch, results: Sequence[ItemResult]) -> None:
        o = self.options
        if o.status_column is None or not results:
            return
        handle = batch.handle
        assert isinstance(handle, _Handle)
        key_col = o.key_column or o.sequence_column
        assert key_col is not None
        updates: list[tuple[Any, str, str | None]] = []
        for r in results:
            if r.position not in handle.keys:
                continue
            value = o.failed_value if r.status == "rejected" else o.read_value
            updates.append((handle.keys[r.position], value, self._message(r)))
        try:
            db = self._db()
            for start in range(0, len(updates), 500):
                sql, args = self._update_sql(db, key_col, updates[start : start + 500])
                await db.execute(sql, args)
        except SourceError:
            raise
        except Exception as exc:
            raise await self._fail(exc, "writing status to") from None

    def _update_sql(
        self, db: _Dialect, key_col: str, updates: list[tuple[Any, str, str | None]]
    ) -> tuple[str, list[Any]]:
        """One statement per 500 rows, whatever their statuses and messages."""
        o = self.options
        assert o.status_column is not None
        k, s = db.q(key_col), db.q(o.status_column)
        m = db.q(o.message_column) if o.message_column is not None else None
        table = db.table(o.table)
        keys = [u[0] for u in updates]
        if isinstance(db, _Postgres):
            sets = f"{s} = v.s" + (f", {m} = v.m" if m else "")
            return (
                f"UPDATE {table} SET {sets} FROM unnest($1::{db.key_type}[], $2::text[],"
                f" $3::text[]) AS v(k, s, m) WHERE {table}.{k} = v.k",
                [keys, [u[1] for u in updates], [u[2] for u in updates]],
            )
        args: list[Any] = []
        status_case = " ".join("WHEN %s THEN %s" for _ in updates)
        for u in updates:
            args += [u[0], u[1]]
        sets = f"{s} = CASE {k} {status_case} END"
        if m is not None:
            sets += f", {m} = CASE {k} {status_case} END"
            for u in updates:
                args += [u[0], u[2]]
        if o.time_column is not None:  # keeps ON UPDATE CURRENT_TIMESTAMP from firing
            t = db.q(o.time_column)
            sets += f", {t} = {t}"
        args += keys
        return f"UPDATE {table} SET {sets} WHERE {k} IN ({', '.join(['%s'] * len(keys))})", args

    # backlog

    async def backlog(self, position: str | None) -> Backlog:
        o = self.options
        after = self._after(position)
        db = self._db()
        table = db.table(o.table)
        where, args = self._cursor_sql(db, after, 1)
        n = len(args) + 1
        count = await self._fetch(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM {table} WHERE {where} LIMIT {db.p(n)}) AS b",
            [*args, BACKLOG_CAP],
            "counting",
        )
        oldest: datetime | None = None
        if o.time_column is not None:
            order = (
                db.q(o.sequence_column)
                if o.sequence_column is not None
                else f"{db.q(o.time_column)}, {db.q(o.key_column or o.time_column)}"
            )
            first = await self._fetch(
                f"SELECT {db.q(o.time_column)} FROM {table} WHERE {where} ORDER BY {order} LIMIT 1",
                args,
                "counting",
            )
            oldest = _aware(first.rows[0][0]) if first.rows else None
        return Backlog(items=int(count.rows[0][0]), oldest_at=oldest)

    async def close(self) -> None:
        dialect, self._dialect = self._dialect, None
        if dialect is not None:
            await dialect.close()


def _build_pg(config: FeedConfig) -> DatabaseSource:
    return DatabaseSource(config, msgspec.convert(config.options, PostgresOptions))


def _build_mysql(config: FeedConfig) -> DatabaseSource:
    return DatabaseSource(config, msgspec.convert(config.options, MysqlOptions))


SOURCE_KINDS.register(
    SourceKind("postgres", PostgresOptions, _build_pg, secret_options=("password",))
)
SOURCE_KINDS.register(SourceKind("mysql", MysqlOptions, _build_mysql, secret_options=("password",)))


# -- demo tables (the bench, and integrators trying a feed) ---------------------------------

_DEMO_CHILDREN = ("diseinfo", "oprninfo", "icuinfo", "bldinfo")
_ENVELOPE_CLASH = {"fixmedins_code", "fixmedins_name"}


def demo_options(table: str) -> dict[str, Any]:
    """The options reading a table written by `write_demo_rows` (add `dsn`, `settle_s`)."""
    return {
        "table": table,
        "time_column": "upd_time",
        "key_column": "id",
        "status_column": "dip_status",
        "message_column": "dip_message",
        "mapping": {f"setl_{n}": f"setlinfo.{n}" for n in sorted(_ENVELOPE_CLASH)},
        "children": {
            node: {
                "table": f"{table}_{node}",
                "join_column": "main_id",
                "parent_column": "id",
                "order_column": "seq",
            }
            for node in _DEMO_CHILDREN
        },
    }


def _demo_columns() -> tuple[list[str], dict[str, str]]:
    """Main-table columns in the national names, and path → column."""
    paths: dict[str, str] = {}
    for spec in fields_of("envelope"):
        paths[spec.field] = spec.field
    for spec in fields_of("setlinfo"):
        column = f"setl_{spec.field}" if spec.field in _ENVELOPE_CLASH else spec.field
        paths[f"setlinfo.{spec.field}"] = column
    return list(paths.values()), paths


async def write_demo_rows(
    dsn: str, table: str, documents: Iterable[dict[str, Any]], *, password: str | None = None
) -> int:
    """Create (if absent) and fill a demo 中间库 table in PostgreSQL or MySQL from national
    documents: a main table in the national field names with `id`, `upd_time` and status
    columns, and child tables for the diagnoses, operations, ICU stays and
    transfusions. Returns the rows written."""
    columns, paths = _demo_columns()
    node_fields = {node: [s.field for s in fields_of(node)] for node in _DEMO_CHILDREN}
    main: list[tuple[Any, ...]] = []
    kids: dict[str, list[tuple[Any, ...]]] = {node: [] for node in _DEMO_CHILDREN}
    docs = list(documents)
    mysql = urlsplit(dsn).scheme in ("mysql", "mariadb")
    base = await (
        _demo_mysql_base(dsn, table, columns, node_fields, password)
        if mysql
        else _demo_pg_base(dsn, table, columns, node_fields, password)
    )
    for n, doc in enumerate(docs, start=base + 1):
        flat = document_to_row(doc)
        by_column = {paths[p]: v for p, v in flat.items() if p in paths}
        main.append((n, *(by_column.get(c) for c in columns)))
        body = doc.get("input") or {}
        for node in _DEMO_CHILDREN:
            for seq, entry in enumerate(body.get(node) or [], start=1):
                kids[node].append(
                    (
                        n,
                        seq,
                        *(
                            None if entry.get(f) is None else str(entry[f])
                            for f in node_fields[node]
                        ),
                    )
                )
    if mysql:
        await _demo_mysql_fill(dsn, table, columns, node_fields, main, kids, password)
    else:
        await _demo_pg_fill(dsn, table, columns, node_fields, main, kids, password)
    return len(docs)


def _demo_ddl(
    table: str, columns: list[str], node_fields: dict[str, list[str]], mysql: bool
) -> list[str]:
    mark = "`" if mysql else '"'

    def q(name: str) -> str:
        return f"{mark}{name}{mark}"

    time_col = (
        "DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6)"
        if mysql
        else "timestamptz NOT NULL DEFAULT clock_timestamp()"
    )
    text = "TEXT" if mysql else "text"
    cols = ", ".join(f"{q(c)} {text}" for c in columns)
    ddl = [
        f"CREATE TABLE IF NOT EXISTS {q(table)} (id BIGINT PRIMARY KEY, upd_time {time_col},"
        f" dip_status VARCHAR(20), dip_message VARCHAR(1000), {cols})",
        f"CREATE INDEX {q(table + '_cursor')} ON {q(table)} (upd_time, id)",
    ]
    for node, fields in node_fields.items():
        child = f"{table}_{node}"
        kcols = ", ".join(f"{q(f)} {text}" for f in fields)
        ddl.append(
            f"CREATE TABLE IF NOT EXISTS {q(child)} (main_id BIGINT NOT NULL, seq INT NOT NULL,"
            f" {kcols}, PRIMARY KEY (main_id, seq))"
        )
    return ddl


async def _demo_pg_base(
    dsn: str,
    table: str,
    columns: list[str],
    node_fields: dict[str, list[str]],
    password: str | None,
) -> int:
    conn = await asyncpg.connect(dsn, password=password)
    try:
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", f'"{table}"')
        if not exists:
            for sql in _demo_ddl(table, columns, node_fields, mysql=False):
                await conn.execute(sql)
        return int(await conn.fetchval(f'SELECT COALESCE(MAX(id), 0) FROM "{table}"'))
    finally:
        await conn.close()


async def _demo_pg_fill(
    dsn: str,
    table: str,
    columns: list[str],
    node_fields: dict[str, list[str]],
    main: list[tuple[Any, ...]],
    kids: dict[str, list[tuple[Any, ...]]],
    password: str | None,
) -> None:
    conn = await asyncpg.connect(dsn, password=password)
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(table, records=main, columns=["id", *columns])
            for node, rows in kids.items():
                await conn.copy_records_to_table(
                    f"{table}_{node}", records=rows, columns=["main_id", "seq", *node_fields[node]]
                )
    finally:
        await conn.close()


async def _my_connect(dsn: str, password: str | None) -> aiomysql.Connection:
    parts = urlsplit(dsn)
    return await aiomysql.connect(
        host=parts.hostname or "localhost",
        port=parts.port or 3306,
        user=unquote(parts.username or ""),
        password=password or unquote(parts.password or ""),
        db=unquote(parts.path.lstrip("/")),
        charset="utf8mb4",
        autocommit=False,
    )


async def _demo_mysql_base(
    dsn: str,
    table: str,
    columns: list[str],
    node_fields: dict[str, list[str]],
    password: str | None,
) -> int:
    conn = await _my_connect(dsn, password)
    try:
        async with conn.cursor() as cur:
            await cur.execute("SHOW TABLES LIKE %s", (table,))
            if not await cur.fetchall():
                for sql in _demo_ddl(table, columns, node_fields, mysql=True):
                    await cur.execute(sql)
            await cur.execute(f"SELECT COALESCE(MAX(id), 0) FROM `{table}`")
            (row,) = await cur.fetchall()
        await conn.commit()
        return int(row[0])
    finally:
        conn.close()


async def _demo_mysql_fill(
    dsn: str,
    table: str,
    columns: list[str],
    node_fields: dict[str, list[str]],
    main: list[tuple[Any, ...]],
    kids: dict[str, list[tuple[Any, ...]]],
    password: str | None,
) -> None:
    conn = await _my_connect(dsn, password)
    try:
        async with conn.cursor() as cur:
            targets = [(table, ["id", *columns], main)] + [
                (f"{table}_{node}", ["main_id", "seq", *node_fields[node]], kids[node])
                for node in _DEMO_CHILDREN
            ]
            for name, cols, rows in targets:
                sql = (
                    f"INSERT INTO `{name}` ({', '.join(f'`{c}`' for c in cols)})"
                    f" VALUES ({', '.join(['%s'] * len(cols))})"
                )
                for start in range(0, len(rows), 500):
                    await cur.executemany(sql, rows[start : start + 500])
        await conn.commit()
    finally:
        conn.close()
