"""A DICT_VALUE error names the values its dictionary allows (issue 14, point 3)."""

from __future__ import annotations

from contracts import Dictionaries
from contracts._dicts import ALLOWED_IN_FULL
from tests.builders import check, golden, mutate


def _dict_error(doc: dict[str, object], field: str) -> tuple[str, str]:
    (hit,) = [e for e in check(doc) if e.rule == "DICT_VALUE" and e.field == field]
    return hit.message, hit.message_en


def test_a_small_dictionary_is_listed_whole_with_its_labels() -> None:
    message, message_en = _dict_error(mutate(golden(), input__setlinfo__gend="7"), "setlinfo.gend")
    assert (
        message == "性别不在字典gend的值域范围内（允许值：0 未知的性别、1 男、2 女、9 未说明性别）"
    )
    assert message_en == "setlinfo.gend is not a value of dictionary gend (allowed: 0, 1, 2, 9)"


def test_a_list_field_names_its_dictionary_values_on_both_paths() -> None:
    # `check` asserts the fast path (strict decoder refusing the value) and the full engine agree
    doc = mutate(golden(), input__diseinfo__2__adm_cond_type="8")
    _, message_en = _dict_error(doc, "diseinfo[2].adm_cond_type")
    assert message_en.endswith("(allowed: 1, 2, 3, 4)")


def test_a_large_dictionary_gives_a_few_values_and_where_to_read_them_all() -> None:
    doc = mutate(golden(), input__setlinfo__dscg_caty="Z99")
    message, message_en = _dict_error(doc, "setlinfo.dscg_caty")
    count = len(Dictionaries.load_bundled().values("dept"))
    assert count > ALLOWED_IN_FULL
    assert f"允许值共{count}个" in message and "A01 预防保健科" in message
    assert "GET /v1/dictionaries/dept" in message
    assert message_en.endswith(
        f"({count} allowed values, e.g. A01, A02, A03, A03.01, A03.02, A03.03, A03.04, "
        "A03.05; all of them: GET /v1/dictionaries/dept)"
    )
    assert "Z99" not in message + message_en  # never what the record sent


def test_a_multi_valued_field_names_its_dictionary_too() -> None:
    doc = mutate(golden(), input__setlinfo__refldept_dept="A03→Z99")
    _, message_en = _dict_error(doc, "setlinfo.refldept_dept")
    assert "GET /v1/dictionaries/dept" in message_en


def test_entries_keep_the_source_order_and_labels() -> None:
    d = Dictionaries.load_bundled()
    assert d.entries("dscg_way")[0] == ("1", d.label("dscg_way", "1"))
    assert {value for value, _ in d.entries("dscg_way")} == d.values("dscg_way")
    assert d.entries("no_such_dictionary") == ()
    assert d.allowed("ipt_med_type")[1] == "allowed: 1, 2"
