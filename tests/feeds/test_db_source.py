"""The intermediate-database source against real servers: the session's PostgreSQL and a
MariaDB started for this module (tests/feeds/_mariadb.py)."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from adapters import document_to_row
from adapters.feeds import SOURCE_KINDS, FeedConfig, ItemResult, SourceError, _db
from adapters.feeds._db import DatabaseSource
from contracts import CST
from tests.feeds._mariadb import MariaDB, running_mariadb

T0 = datetime(2025, 3, 1, 8, 0, 0)
"""Fixed row times, long settled whatever today is."""


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDB]:
    with running_mariadb() as server:
        yield server


@dataclass
class Target:
    kind: str
    dsn: str
    password: str | None
    pg_admin: str | None = None
    server: MariaDB | None = None
    database: str = ""

    @property
    def my(self) -> bool:
        return self.kind == "mysql"

    def t(self, pg: str, my: str) -> str:
        return my if self.my else pg

    async def run(self, *statements: str, args: tuple[Any, ...] = ()) -> None:
        if self.server is not None:
            conn = self.server.root(self.database)
            try:
                with conn.cursor() as cur:
                    for sql in statements:
                        cur.execute(sql, args or None)
            finally:
                conn.close()
            return
        conn2 = await asyncpg.connect(self.dsn)
        try:
            for sql in statements:
                await conn2.execute(sql, *args)
        finally:
            await conn2.close()

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        if self.server is not None:
            conn = self.server.root(self.database)
            try:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    return list(cur.fetchall())
            finally:
                conn.close()
        conn2 = await asyncpg.connect(self.dsn)
        try:
            return [tuple(r) for r in await conn2.fetch(sql)]
        finally:
            await conn2.close()

    def source(self, **options: Any) -> DatabaseSource:
        opts: dict[str, Any] = {"dsn": self.dsn, "settle_s": 0, **options}
        if self.password is not None and "password" not in opts:
            opts["password"] = self.password
        config = FeedConfig(name="his1", kind=self.kind, hospitals=["H1"], options=opts)
        assert SOURCE_KINDS.check(config) == []
        source = SOURCE_KINDS.build(config)
        assert isinstance(source, DatabaseSource)
        return source


@pytest.fixture(params=["postgres", "mysql"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    if request.param == "mysql":
        server: MariaDB = request.getfixturevalue("mariadb")
        server.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        dsn = server.dsn.rsplit("/", 1)[0] + f"/{name}"
        yield Target("mysql", dsn, server.password, server=server, database=name)
        server.execute(f"DROP DATABASE {name}")
        return
    services = request.getfixturevalue("services")
    admin = await asyncpg.connect(services.dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    parts = urllib.parse.urlsplit(services.dsn)
    dsn = urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    try:
        yield Target("postgres", dsn, None, pg_admin=services.dsn, database=name)
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


async def _settlements(t: Target, extra: str = "", on_update: bool = False) -> None:
    ts = t.t("timestamp", "DATETIME(6)")
    bump = " ON UPDATE CURRENT_TIMESTAMP(6)" if on_update else ""
    await t.run(
        f"CREATE TABLE setl (id BIGINT PRIMARY KEY, upd_time {ts} NOT NULL{bump},"
        " setl_id VARCHAR(30), psn_name VARCHAR(30), fixmedins_code VARCHAR(20),"
        f" dip_status VARCHAR(20), dip_message VARCHAR(600){extra})"
    )


async def _insert(t: Target, rows: list[tuple[int, datetime, str]]) -> None:
    for id_, when, setl in rows:
        p = t.t("$1, $2, $3", "%s, %s, %s")
        await t.run(
            f"INSERT INTO setl (id, upd_time, setl_id, fixmedins_code) VALUES ({p}, 'H1')",
            args=(id_, when, setl),
        )


def _docs(batch: Any) -> list[dict[str, Any]]:
    return [msgspec.json.decode(r.document) for r in batch.records]


def _options(**extra: Any) -> dict[str, Any]:
    return {"table": "setl", "time_column": "upd_time", "key_column": "id", **extra}


async def test_cursor_order_ties_and_resume(target: Target) -> None:
    """Rows sharing an update time across a batch boundary are each read exactly once, in
    (time, key) order, and a new source resumes from the stored position."""
    await _settlements(target)
    t1, t2, t3 = T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    await _insert(
        target, [(5, t3, "S5"), (4, t2, "S4"), (2, t2, "S2"), (3, t2, "S3"), (1, t1, "S1")]
    )
    src = target.source(**_options())
    try:
        b1 = await src.read(None, 2)
        assert b1 is not None
        assert [r.key for r in b1.records] == ["1", "2"]
        assert b1.oldest_at == t1.replace(tzinfo=CST)
        assert b1.records[1].source_time == t2.replace(tzinfo=CST)
    finally:
        await src.close()
    src = target.source(**_options())  # a restarted runner: only the position carries over
    try:
        b2 = await src.read(b1.position, 2)
        assert b2 is not None
        assert [r.key for r in b2.records] == ["3", "4"]
        b3 = await src.read(b2.position, 2)
        assert b3 is not None
        assert [r.key for r in b3.records] == ["5"]
        assert await src.read(b3.position, 2) is None
        assert _docs(b3)[0]["input"]["setlinfo"]["setl_id"] == "S5"
    finally:
        await src.close()


async def test_settle_window_holds_back_fresh_rows(target: Target) -> None:
    await _settlements(target)
    now = target.t("LOCALTIMESTAMP", "NOW(6)")
    await target.run(
        f"INSERT INTO setl (id, upd_time, setl_id) VALUES (1, {now} - INTERVAL '10' MINUTE, 'S1')"
    )
    src = target.source(**_options(settle_s=3600))
    try:
        assert await src.read(None, 10) is None
    finally:
        await src.close()
    src = target.source(**_options(settle_s=60))
    try:
        batch = await src.read(None, 10)
        assert batch is not None and [r.key for r in batch.records] == ["1"]
    finally:
        await src.close()


async def test_sequence_mode_stops_at_the_first_unsettled_row(target: Target) -> None:
    ts = target.t("timestamp", "DATETIME(6)")
    now = target.t("LOCALTIMESTAMP", "NOW(6)")
    await target.run(
        f"CREATE TABLE q (seq BIGINT PRIMARY KEY, created {ts}, setl_id VARCHAR(30))",
        f"INSERT INTO q VALUES (1, '2025-03-01 08:00:00', 'A'), (2, {now}, 'B'),"
        " (3, '2025-03-01 07:00:00', 'C')",
    )
    src = target.source(table="q", sequence_column="seq")
    try:
        batch = await src.read(None, 2)
        assert batch is not None and [r.key for r in batch.records] == ["1", "2"]
        rest = await src.read(batch.position, 2)
        assert rest is not None and [r.key for r in rest.records] == ["3"]
        assert await src.read(rest.position, 2) is None
    finally:
        await src.close()
    src = target.source(table="q", sequence_column="seq", time_column="created", settle_s=3600)
    try:
        batch = await src.read(None, 10)
        assert batch is not None and [r.key for r in batch.records] == ["1"]
        assert await src.read(batch.position, 10) is None  # seq 3 waits behind seq 2
    finally:
        await src.close()


async def test_default_national_mapping_and_value_text(target: Target) -> None:
    ts = target.t("timestamp", "DATETIME")
    tz = target.t("timestamptz", "TIMESTAMP")
    await target.run(
        f"CREATE TABLE setl (id INT PRIMARY KEY, upd_time {ts} NOT NULL, setl_id VARCHAR(30),"
        f" FIXMEDINS_CODE VARCHAR(20), dscg_time {ts}, adm_time {tz}, brdy DATE,"
        " age INT, medfee_sumamt DECIMAL(12, 2), psn_name VARCHAR(20), hi_no VARCHAR(20),"
        " vendor_only VARCHAR(20))",
    )
    tz_value = target.t("'2025-03-01 01:30:00+00'", "'2025-03-01 09:30:00'")
    await target.run(
        "INSERT INTO setl VALUES (7, '2025-03-01 08:00:00', 'S7', 'H1', '2025-03-02 10:11:12',"
        f" {tz_value}, '1980-05-06', 45, 12345.60, NULL, '', 'x')"
    )
    src = target.source(**_options(defaults={"mdtrtarea_admvs": "420100"}))
    try:
        batch = await src.read(None, 10)
    finally:
        await src.close()
    assert batch is not None
    (record,) = batch.records
    assert record.key == "7" and record.problems == ()
    doc = msgspec.json.decode(record.document or b"")
    assert doc["fixmedins_code"] == "H1" and doc["mdtrtarea_admvs"] == "420100"
    assert doc["infno"] == "4101A"
    assert doc["input"]["setlinfo"] == {
        "setl_id": "S7",
        "dscg_time": "2025-03-02 10:11:12",
        "adm_time": "2025-03-01 09:30:00",
        "brdy": "1980-05-06",
        "age": "45",
        "medfee_sumamt": "12345.60",
    }
    assert "vendor_only" not in str(doc) and "upd_time" not in doc


async def test_vendor_mapping_file(target: Target, tmp_path: Path) -> None:
    ts = target.t("timestamp", "DATETIME")
    await target.run(
        f"CREATE TABLE v_js (xh INT PRIMARY KEY, gxsj {ts} NOT NULL, zyh VARCHAR(30),"
        " jgbm VARCHAR(20), zd1 VARCHAR(20), zdmc1 VARCHAR(40), setl_id VARCHAR(9))",
        "INSERT INTO v_js VALUES (1, '2025-03-01 08:00:00', 'Z1', 'H1', 'K80.100', '胆囊结石',"
        " 'ignored')",
    )
    mapping = tmp_path / "vendor.toml"
    mapping.write_text(
        '[columns]\nzyh = "setlinfo.setl_id"\njgbm = "fixmedins_code"\n'
        'zd1 = "diseinfo[0].diag_code"\nzdmc1 = "diseinfo[0].diag_name"\n'
        'setl_id = "setlinfo.medcasno"\n',
        encoding="utf-8",
    )
    src = target.source(
        table="v_js", time_column="gxsj", key_column="xh", mapping_file=str(mapping)
    )
    try:
        batch = await src.read(None, 10)
    finally:
        await src.close()
    assert batch is not None
    (doc,) = _docs(batch)
    assert doc["fixmedins_code"] == "H1"
    assert doc["input"]["setlinfo"] == {"setl_id": "Z1", "medcasno": "ignored"}
    assert doc["input"]["diseinfo"] == [{"diag_code": "K80.100", "diag_name": "胆囊结石"}]


async def test_a_mapped_column_the_view_lacks_is_a_read_problem(target: Target) -> None:
    await _settlements(target)
    await _insert(target, [(1, T0, "S1")])
    src = target.source(**_options(mapping={"zyh": "setlinfo.setl_id"}))
    try:
        batch = await src.read(None, 10)
    finally:
        await src.close()
    assert batch is not None
    (record,) = batch.records
    assert record.document is None
    assert [(p.kind, p.field) for p in record.problems] == [("column_missing", "zyh")]


async def test_document_column(target: Target) -> None:
    ts = target.t("timestamp", "DATETIME")
    js = target.t("jsonb", "JSON")
    await target.run(f"CREATE TABLE docs (id INT PRIMARY KEY, t {ts} NOT NULL, body {js})")
    doc = {"infno": "4101A", "fixmedins_code": "H1", "input": {"setlinfo": {"setl_id": "S1"}}}
    p = target.t("$1", "%s")
    await target.run(
        f"INSERT INTO docs VALUES (1, '2025-03-01 08:00:00', {p})",
        args=(msgspec.json.encode(doc).decode(),),
    )
    await target.run("INSERT INTO docs VALUES (2, '2025-03-01 08:00:01', NULL)")
    src = target.source(table="docs", time_column="t", key_column="id", document_column="body")
    try:
        batch = await src.read(None, 10)
    finally:
        await src.close()
    assert batch is not None
    assert msgspec.json.decode(batch.records[0].document or b"") == doc
    assert batch.records[1].document == b"null"  # the checker refuses it as not a list


async def test_child_tables_in_order_one_query_each(target: Target) -> None:
    await _settlements(target)
    await _insert(target, [(1, T0, "S1"), (2, T0, "S2"), (3, T0, "S3")])
    await target.run(
        "CREATE TABLE dise (setl_id VARCHAR(30), seq INT, diag_code VARCHAR(20),"
        " zdmc VARCHAR(40), maindiag_flag CHAR(1), blob_free VARCHAR(3))",
        "INSERT INTO dise VALUES ('S1', 2, 'I10.x00', '高血压', '0', 'x'),"
        " ('S1', 1, 'K80.100', '胆囊结石', '1', 'x'), ('S2', 1, 'J18.900', '肺炎', '1', 'x')",
        "CREATE TABLE oprn (setl_id VARCHAR(30), seq INT, oprn_oprt_code VARCHAR(20))",
        "INSERT INTO oprn VALUES ('S1', 1, '51.2300')",
    )
    src = target.source(
        **_options(
            children={
                "diseinfo": {
                    "table": "dise",
                    "join_column": "setl_id",
                    "order_column": "seq",
                    "mapping": {"zdmc": "diag_name"},
                },
                "oprninfo": {"table": "oprn", "join_column": "setl_id", "order_column": "seq"},
            }
        )
    )
    queries: list[str] = []
    db = src._db()
    fetch = db.fetch

    async def counted(sql: str, args: Any) -> Any:
        queries.append(sql)
        return await fetch(sql, args)

    db.fetch = counted  # type: ignore[method-assign]
    try:
        batch = await src.read(None, 10)
    finally:
        await src.close()
    assert batch is not None
    assert len(queries) == 3  # the main table, then one query per child table
    d1, d2, d3 = _docs(batch)
    assert d1["input"]["diseinfo"] == [
        {"diag_code": "K80.100", "diag_name": "胆囊结石", "maindiag_flag": "1"},
        {"diag_code": "I10.x00", "diag_name": "高血压", "maindiag_flag": "0"},
    ]
    assert d1["input"]["oprninfo"] == [{"oprn_oprt_code": "51.2300"}]
    assert d2["input"]["diseinfo"] == [
        {"diag_code": "J18.900", "diag_name": "肺炎", "maindiag_flag": "1"}
    ]
    assert "diseinfo" not in d3["input"] and "oprninfo" not in d3["input"]


async def test_wrong_types_are_read_problems(target: Target) -> None:
    ts = target.t("timestamp", "DATETIME")
    # MariaDB's JSON is a LONGTEXT alias, indistinguishable on the wire: a BIT stands in
    blob, js = target.t("bytea", "BLOB"), target.t("jsonb", "BIT(8)")
    await target.run(
        f"CREATE TABLE setl (id INT PRIMARY KEY, upd_time {ts} NOT NULL, setl_id VARCHAR(9),"
        f" psn_name {blob}, hi_no {js}, medcasno DECIMAL(10, 0), raw_blob {blob})"
    )
    p1, p2 = target.t("$1", "%s"), target.t("$2", "%s")
    js_value = target.t("'{\"a\": 1}'", "b'101'")
    await target.run(
        f"INSERT INTO setl VALUES (1, '2025-03-01 08:00:00', 'S1', {p1}, {js_value}, 123, {p2})",
        args=(b"\x00\x01", b"\x02"),
    )
    await target.run(
        "INSERT INTO setl VALUES (2, '2025-03-01 08:00:01', 'S2', NULL, NULL, 9, NULL)"
    )
    src = target.source(**_options())
    try:
        batch = await src.read(None, 10)
    finally:
        await src.close()
    assert batch is not None
    bad, good = batch.records
    assert bad.document is None
    assert {(p.kind, p.field) for p in bad.problems} == {
        ("column_type", "setlinfo.psn_name"),
        ("column_type", "setlinfo.hi_no"),
    }
    assert all("cannot be read as text" in p.detail for p in bad.problems)
    assert good.problems == ()  # NULLs are absent; the numeric medcasno is plain text
    assert msgspec.json.decode(good.document or b"")["input"]["setlinfo"] == {
        "setl_id": "S2",
        "medcasno": "9",
    }


async def _trap(target: Target) -> None:
    """An update-time column the database bumps on every update (MySQL's ON UPDATE
    CURRENT_TIMESTAMP; in PostgreSQL the trigger of docs/feeds-database.md)."""
    await _settlements(target, on_update=target.my)
    if not target.my:
        await target.run(
            """CREATE FUNCTION his_touch() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF (to_jsonb(NEW) - 'dip_status' - 'dip_message' - 'upd_time')
                 IS DISTINCT FROM (to_jsonb(OLD) - 'dip_status' - 'dip_message' - 'upd_time')
              THEN NEW.upd_time := clock_timestamp();
              END IF;
              RETURN NEW;
            END $$""",
            "CREATE TRIGGER setl_touch BEFORE UPDATE ON setl FOR EACH ROW"
            " EXECUTE FUNCTION his_touch()",
        )


async def test_write_back_never_makes_a_row_new_and_a_changed_row_is_read_again(
    target: Target,
) -> None:
    await _trap(target)
    await _insert(target, [(1, T0, "S1"), (2, T0, "S2"), (3, T0 + timedelta(seconds=1), "S3")])
    src = target.source(
        **_options(status_column="dip_status", message_column="dip_message", message_max=60)
    )
    try:
        batch = await src.read(None, 10)
        assert batch is not None
        errors = [
            {"rule": "R001", "field": "setlinfo.psn_name", "message": "必填项缺失"},
            {
                "rule": "R002",
                "field": "diseinfo[0].diag_code",
                "message": "诊断代码不在医保版编码中" * 3,
            },
        ]
        await src.finish(
            batch,
            [
                ItemResult(position="1", status="accepted", receipt_id="r1"),
                ItemResult(position="2", status="rejected", errors=errors),
                ItemResult(position="3", status="duplicate"),
            ],
        )
        rows = await target.rows(
            "SELECT id, upd_time, dip_status, dip_message FROM setl ORDER BY id"
        )
        assert [(r[0], r[2]) for r in rows] == [(1, "已读取"), (2, "校验失败"), (3, "已读取")]
        assert rows[0][3] is None
        message = rows[1][3]
        assert message.startswith("R001 setlinfo.psn_name 必填项缺失；R002 diseinfo[0].diag_code")
        assert len(message) == 60 and message.endswith("…")
        assert [r[1] for r in rows] == [T0, T0, T0 + timedelta(seconds=1)]  # times untouched
        assert await src.read(batch.position, 10) is None
        await src.finish(batch, [ItemResult(position="1", status="accepted")])  # repeatable

        # the HIS corrects row 2: it gets a new time and is read again (the next revision)
        await target.run("UPDATE setl SET psn_name = '张三' WHERE id = 2")
        if target.my:
            await target.run("UPDATE setl SET upd_time = '2025-03-02 00:00:00' WHERE id = 2")
        again = await src.read(batch.position, 10)
        assert again is not None and [r.key for r in again.records] == ["2"]
        assert _docs(again)[0]["input"]["setlinfo"]["psn_name"] == "张三"
    finally:
        await src.close()


async def test_backlog_counts_beyond_the_cursor(
    target: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _settlements(target)
    await _insert(target, [(n, T0 + timedelta(minutes=n), f"S{n}") for n in range(1, 6)])
    src = target.source(**_options())
    try:
        assert await src.backlog(None) == _db.Backlog(
            5, T0.replace(tzinfo=CST) + timedelta(minutes=1)
        )
        batch = await src.read(None, 2)
        assert batch is not None
        backlog = await src.backlog(batch.position)
        assert backlog.items == 3
        assert backlog.oldest_at == (T0 + timedelta(minutes=3)).replace(tzinfo=CST)
        monkeypatch.setattr(_db, "BACKLOG_CAP", 2)
        assert (await src.backlog(None)).items == 2
    finally:
        await src.close()


async def test_outage_raises_source_error_then_recovers(target: Target) -> None:
    await _settlements(target)
    await _insert(target, [(1, T0, "S1")])
    src = target.source(**_options())
    try:
        assert await src.read(None, 10) is not None
        if target.server is not None:
            target.server.stop()
        else:
            assert target.pg_admin is not None
            admin = await asyncpg.connect(target.pg_admin)
            await admin.execute(f'ALTER DATABASE "{target.database}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                target.database,
            )
        try:
            with pytest.raises(SourceError) as raised:
                await src.read(None, 10)
            text = str(raised.value)
            assert "his1" in text and "setl" in text
            if target.password:
                assert target.password not in text
        finally:
            if target.server is not None:
                target.server.start()
            else:
                await admin.execute(f'ALTER DATABASE "{target.database}" ALLOW_CONNECTIONS true')
                await admin.close()
        batch = await src.read(None, 10)
        assert batch is not None and [r.key for r in batch.records] == ["1"]
    finally:
        await src.close()


async def test_password_never_in_errors_or_listings(mariadb: MariaDB) -> None:
    wrong = "Wr0ng-Secret-xyz"
    config = FeedConfig(
        name="his1",
        kind="mysql",
        hospitals=["H1"],
        options={"dsn": mariadb.dsn, "password": wrong, **_options()},
    )
    source = SOURCE_KINDS.build(config)
    try:
        with pytest.raises(SourceError) as raised:
            await source.read(None, 10)
    finally:
        await source.close()
    assert wrong not in str(raised.value) and "his1" in str(raised.value)
    shown = SOURCE_KINDS.shown_options(config)
    assert shown["password"] == "***" and wrong not in str(shown)
    in_dsn = FeedConfig(
        name="his2",
        kind="mysql",
        hospitals=["H1"],
        options={"dsn": f"mysql://u:{wrong}@127.0.0.1:{mariadb.port}/his", **_options()},
    )
    assert wrong not in str(SOURCE_KINDS.shown_options(in_dsn))
    source = SOURCE_KINDS.build(in_dsn)
    try:
        with pytest.raises(SourceError) as raised:
            await source.read(None, 10)
    finally:
        await source.close()
    assert wrong not in str(raised.value)


async def test_password_from_environment(mariadb: MariaDB, monkeypatch: pytest.MonkeyPatch) -> None:
    mariadb.execute("CREATE TABLE IF NOT EXISTS env_t (id INT PRIMARY KEY, t DATETIME NOT NULL)")
    options = {
        "dsn": mariadb.dsn,
        "password_env": "HIS1_DB_PASSWORD",
        "table": "env_t",
        "time_column": "t",
        "key_column": "id",
    }
    config = FeedConfig(name="his1", kind="mysql", hospitals=["H1"], options=options)
    source = SOURCE_KINDS.build(config)
    try:
        with pytest.raises(SourceError, match="HIS1_DB_PASSWORD is not set"):
            await source.read(None, 10)
        monkeypatch.setenv("HIS1_DB_PASSWORD", mariadb.password)
        assert await source.read(None, 10) is None
    finally:
        await source.close()


async def test_demo_rows_read_back_as_the_documents(target: Target) -> None:
    import random

    from contracts.samples import make_settlement

    rng = random.Random(3)
    docs = [
        make_settlement(
            rng,
            now=datetime(2025, 3, 1, 9),
            mdtrtarea_admvs="440100",
            fixmedins_code="H1",
            serial=n,
        )
        for n in range(1, 4)
    ]
    assert await _db.write_demo_rows(target.dsn, "demo", docs, password=target.password) == 3
    if target.my:
        await target.run("UPDATE demo SET upd_time = '2025-03-01 09:00:00'")
    src = target.source(**_db.demo_options("demo"))
    try:
        batch = await src.read(None, 10)
    finally:
        await src.close()
    assert batch is not None
    # the same cells, as text (the CSV adapter's reading; the checker takes numbers as text)
    for got, want in zip(_docs(batch), docs, strict=True):
        a, b = document_to_row(got), document_to_row(want)
        assert {k: (a.get(k), b.get(k)) for k in a.keys() | b.keys() if a.get(k) != b.get(k)} == {}


def test_identifiers_are_refused_unless_plain() -> None:
    base = {"dsn": "postgresql://u@h/db", "time_column": "t", "key_column": "id"}
    for bad in ('setl"; DROP TABLE x; --', "a.b.c", "setl;", "se tl", "`x`", "a-b"):
        problems = SOURCE_KINDS.check(
            FeedConfig(name="f", kind="postgres", hospitals=["H1"], options={**base, "table": bad})
        )
        assert problems and problems[0].startswith("options:"), bad
    for field in ("time_column", "key_column", "status_column"):
        opts = {**base, "table": "his.setl", field: 'x" OR 1=1'}
        if field == "status_column":
            opts["status_column"] = "s'; --"
        assert SOURCE_KINDS.check(
            FeedConfig(name="f", kind="postgres", hospitals=["H1"], options=opts)
        )
    opts = {**base, "table": "setl", "mapping": {"a;b": "setl_id"}}
    assert SOURCE_KINDS.check(FeedConfig(name="f", kind="postgres", hospitals=["H1"], options=opts))
    assert (
        SOURCE_KINDS.check(
            FeedConfig(
                name="f", kind="postgres", hospitals=["H1"], options={**base, "table": "his.setl"}
            )
        )
        == []
    )
    assert (
        SOURCE_KINDS.check(
            FeedConfig(name="f", kind="mysql", hospitals=["H1"], options={**base, "table": "setl"})
        )
        != []
    )  # a postgresql:// DSN for a mysql feed


async def test_time_zone_puts_the_cutoff_on_the_his_wall_clock(target: Target) -> None:
    """A HIS writing +08:00 wall time into zone-less columns of a server kept in UTC: with
    `time_zone`, a row written a minute ago is a minute old, not eight hours ahead."""
    ts = target.t("timestamp", "DATETIME(6)")
    cst_now = target.t(
        "(now() AT TIME ZONE INTERVAL '+08:00')", "(UTC_TIMESTAMP(6) + INTERVAL 8 HOUR)"
    )
    await target.run(
        f"CREATE TABLE setl (id INT PRIMARY KEY, upd_time {ts} NOT NULL, setl_id VARCHAR(9))",
        f"INSERT INTO setl VALUES (1, {cst_now} - INTERVAL '2' MINUTE, 'S1'),"
        f" (2, {cst_now} + INTERVAL '10' MINUTE, 'S2')",
    )
    src = target.source(**_options(time_zone="+08:00", settle_s=30))
    try:
        batch = await src.read(None, 10)
        assert batch is not None and [r.key for r in batch.records] == ["1"]
    finally:
        await src.close()
