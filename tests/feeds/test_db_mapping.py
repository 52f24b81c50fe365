"""Database rows → national documents, and the database options' checks (no server)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from adapters.feeds import SOURCE_KINDS, FeedConfig
from adapters.feeds._dbmap import (
    ChildOptions,
    Columns,
    build_document,
    child_plan,
    main_plan,
    text_of,
)


def _check(kind: str = "postgres", **options: Any) -> list[str]:
    base: dict[str, Any] = {
        "dsn": "postgresql://reader@his-db:5432/his" if kind == "postgres" else "mysql://r@h/his",
        "table": "setl",
        "time_column": "upd_time",
        "key_column": "id",
    }
    return SOURCE_KINDS.check(
        FeedConfig(name="f", kind=kind, hospitals=["H1"], options={**base, **options})
    )


def test_values_become_document_text() -> None:
    assert text_of("张三") == "张三"
    assert text_of(45) == "45"
    assert text_of(True) == "1"
    assert text_of(Decimal("12345.60")) == "12345.60"
    assert text_of(Decimal("1E+3")) == "1000"
    assert text_of(0.1) == "0.1"
    assert text_of(1e20) == "100000000000000000000"
    assert text_of(datetime(2025, 3, 1, 8, 0, 5, 123456)) == "2025-03-01 08:00:05"
    # aware values are shown on the +08:00 wall clock the lists are written in
    assert text_of(datetime(2025, 3, 1, 0, 30, tzinfo=UTC)) == "2025-03-01 08:30:00"
    tz9 = timezone(timedelta(hours=9))
    assert text_of(datetime(2025, 3, 1, 9, 30, tzinfo=tz9)) == "2025-03-01 08:30:00"
    assert text_of(date(1980, 5, 6)) == "1980-05-06"
    assert text_of(time(7, 5)) == "07:05:00"
    for unreadable in (b"\x00", bytearray(b"x"), memoryview(b"x"), [1], {"a": 1}, float("nan")):
        assert text_of(unreadable) is None


def test_options_are_checked_whole() -> None:
    assert _check() == []
    assert _check(kind="mysql") == []
    assert _check(sequence_column="seq", time_column=None, key_column=None) == []
    assert "time_column and key_column" in _check(key_column=None)[0]
    assert "password_env" in _check(password="x", password_env="HIS_PW")[0]
    assert "dsn" in _check(kind="mysql", dsn="postgresql://r@h/his")[0]
    assert "not a document path" in _check(mapping={"zyh": "setlinfo.nope"})[0]
    assert "no field" in _check(mapping={"zd1": "diseinfo[0].nope"})[0]
    assert _check(mapping={"zyh": "setl_id", "zd1": "diseinfo[0].diag_code"}) == []
    assert "list node" in _check(children={"diags": {"table": "d", "join_column": "s"}})[0]
    assert (
        "no field"
        in _check(
            children={"diseinfo": {"table": "d", "join_column": "s", "mapping": {"zd": "x"}}}
        )[0]
    )
    assert "envelope field" in _check(defaults={"setl_id": "1"})[0]
    assert _check(defaults={"mdtrtarea_admvs": "420100"}) == []
    assert "document_column" in _check(document_column="body", mapping={"a": "setl_id"})[0]
    assert "message_column needs status_column" in _check(message_column="m")[0]
    assert _check(unknown_option=1) != []  # forbid_unknown_fields


def test_quotes_and_semicolons_never_pass_as_names() -> None:
    for bad in ('setl"; DROP TABLE x; --', "a.b.c", "setl;", "se tl", "`x`", "x'", "a-b", ""):
        assert _check(table=bad), bad
        assert _check(key_column=bad), bad
        assert _check(children={"diseinfo": {"table": "d", "join_column": bad}}), bad
    assert _check(table="his.v_settlement") == []
    assert _check(table="结算清单视图", time_column="更新时间") == []


def test_mapping_file(tmp_path: Path) -> None:
    good = tmp_path / "vendor.toml"
    good.write_text('[columns]\nzyh = "setlinfo.setl_id"\n', encoding="utf-8")
    assert _check(mapping_file=str(good)) == []
    flat = tmp_path / "flat.toml"
    flat.write_text('zyh = "setl_id"\n', encoding="utf-8")
    assert _check(mapping_file=str(flat)) == []
    broken = tmp_path / "broken.toml"
    broken.write_text("zyh = = 1\n", encoding="utf-8")
    assert "cannot be read" in _check(mapping_file=str(broken))[0]
    assert "cannot be read" in _check(mapping_file=str(tmp_path / "absent.toml"))[0]
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('zyh = "setlinfo.nope"\n', encoding="utf-8")
    assert "not a document path" in _check(mapping_file=str(wrong))[0]


def _columns(names: list[str], types: list[str] | None = None, **kw: Any) -> Columns:
    return Columns(
        names=tuple(names),
        types=tuple(types or ["text"] * len(names)),
        unreadable=frozenset(kw.get("unreadable", ())),
        text=frozenset(kw.get("text", ())),
    )


def test_national_names_match_without_a_mapping_and_other_columns_stay_out() -> None:
    plan = main_plan(
        _columns(["ID", "SETL_ID", "upd_time", "fixmedins_code", "zyh", "dip_status"]), {}
    )
    doc, problems = build_document(
        (1, "S1", datetime(2025, 3, 1), "H1", "Z9", "已读取"), plan, [], {}
    )
    assert problems == ()
    assert msgspec.json.decode(doc or b"") == {
        "infno": "4101A",
        "fixmedins_code": "H1",
        "input": {"setlinfo": {"setl_id": "S1"}},
    }


def test_children_follow_the_main_row_and_problems_name_the_entry() -> None:
    plan = main_plan(_columns(["setl_id"], text=[0]), {})
    child = ChildOptions(table="d", join_column="setl_id", order_column="seq")
    dise = child_plan(
        "diseinfo",
        child,
        _columns(["setl_id", "seq", "diag_code", "diag_name"], ["text", "int4", "text", "bytea"]),
    )
    entries = [dise.entry(("S1", 1, "K80.100", None)), dise.entry(("S1", 2, "I10", b"\x00"))]
    doc, problems = build_document(("S1",), plan, [(dise, entries)], {})
    assert doc is None
    assert [(p.kind, p.field, p.detail) for p in problems] == [
        ("column_type", "diseinfo[1].diag_name", "bytea cannot be read as text")
    ]
    doc, problems = build_document(("S1",), plan, [(dise, entries[:1])], {"infno": "4101A"})
    assert msgspec.json.decode(doc or b"")["input"]["diseinfo"] == [{"diag_code": "K80.100"}]


def test_a_json_column_is_a_problem_even_when_it_arrives_as_text() -> None:
    plan = main_plan(_columns(["setl_id", "hi_no"], ["text", "jsonb"], unreadable=[1]), {})
    doc, problems = build_document(("S1", '{"a": 1}'), plan, [], {})
    assert doc is None and [p.field for p in problems] == ["setlinfo.hi_no"]
    doc, problems = build_document(("S1", None), plan, [], {})  # NULL: simply absent
    assert problems == () and doc is not None


@pytest.mark.parametrize("empty", ["", None])
def test_empty_cells_are_absent(empty: str | None) -> None:
    plan = main_plan(_columns(["setl_id", "psn_name"], text=[0, 1]), {})
    doc, _ = build_document(("S1", empty), plan, [], {})
    assert msgspec.json.decode(doc or b"")["input"]["setlinfo"] == {"setl_id": "S1"}
