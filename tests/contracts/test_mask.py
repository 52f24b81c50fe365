"""Personal data never leaves the gateway in clear.

`redact_document` builds what the rejected topic carries: an allow-list of the field table's
fields, personal ones masked whatever their JSON type, unknown keys dropped (names kept).
`mask_personal` masks log events: personal keys (known, or named like one) whatever their type,
ID-like digit runs anywhere. Both are depth-safe."""

from __future__ import annotations

import re
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import Validator, field_specs, fields_of, mask_personal, mask_value, redact_document
from tests.builders import golden

CERTNO_RUN = re.compile(r"\d{17}[\dXx]")
CERTNOS = ["110105194912310029", "44010019700501001X", "440300198802290047"]
NAMES = ["司马懿", "诸葛孔明", "欧阳娜娜", "上官婉儿"]


def _text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def _leaks(value: Any) -> list[str]:
    text = _text(value)
    return CERTNO_RUN.findall(text) + [n for n in NAMES if n in text]


def _nested(depth: int, leaf: Any) -> Any:
    node = leaf
    for n in range(depth):
        node = {"k": node} if n % 2 else [node]
    return node


# -- mask_value ----------------------------------------------------------------------------


def test_examples_from_the_architecture() -> None:
    assert mask_value("certno", "11010519491231002X") == "110105********002X"
    assert mask_value("name", "张三") == "张*"
    assert mask_value("name", "欧阳娜娜") == "欧***"
    assert mask_value("phone", "13812345678") == "138****5678"


def test_a_birth_date_keeps_its_year_only() -> None:
    assert mask_value("date", "1970-05-01") == "1970-**-**"
    assert mask_value("date", "1970-05-01 08:00:00") == "1970-**-** **:**:**"
    assert mask_value("date", "司马懿") == "***"


# -- the field table ------------------------------------------------------------------------


def test_every_identity_field_of_the_reference_tables_is_personal() -> None:
    """Patient, contact person, employer and the staff named on a list (national 4101/4101A)."""
    personal = {f.path: f.personal for f in field_specs() if f.personal}
    expected = {
        "opter": "id",
        "opter_name": "name",
        "setlinfo.psn_no": "id",
        "setlinfo.hi_no": "id",
        "setlinfo.medcasno": "id",
        "setlinfo.psn_name": "name",
        "setlinfo.brdy": "date",
        "setlinfo.certno": "certno",
        "setlinfo.curr_addr": "text",
        "setlinfo.emp_name": "text",
        "setlinfo.emp_addr": "text",
        "setlinfo.emp_tel": "phone",
        "setlinfo.poscode": "id",
        "setlinfo.coner_name": "name",
        "setlinfo.coner_addr": "text",
        "setlinfo.coner_tel": "phone",
        "setlinfo.chfpdr_name": "name",
        "setlinfo.chfpdr_code": "id",
        "setlinfo.resp_nurs_code": "id",
        "setlinfo.medins_fill_psn": "name",
        "setlinfo.hsorg_opter": "name",
        "oprninfo.oper_dr_name": "name",
        "oprninfo.oper_dr_code": "id",
        "oprninfo.anst_dr_name": "name",
        "oprninfo.anst_dr_code": "id",
    }
    assert personal == expected


# -- redact_document: the rejected topic's document -----------------------------------------


def test_redacted_golden_keeps_what_quality_and_ops_read() -> None:
    doc = golden()
    out = redact_document(doc)
    sl = out["input"]["setlinfo"]
    assert (out["fixmedins_code"], out["mdtrtarea_admvs"]) == ("H44010000001", "440100")
    assert (sl["setl_id"], sl["dscg_time"], sl["medfee_sumamt"]) == (
        "SETL000000000001",
        "2026-11-20 10:00:00",
        "20000.00",
    )
    assert out["input"]["diseinfo"][0]["diag_code"] == "K80.100"
    assert out["input"]["oprninfo"][0]["oprn_oprt_code"] == "51.2300"
    assert out["input"]["opspdiseinfo"] == []
    assert sl["psn_name"] == "张*" and sl["coner_name"] == "李*"
    assert sl["certno"] == "440100********0013"
    assert sl["coner_tel"] == "138****5678" and "体育西路" not in sl["curr_addr"]
    assert "_dropped" not in out and "_dropped" not in sl
    assert doc == golden()  # the input is untouched


def test_psn_no_medcasno_brdy_emp_name_are_masked() -> None:
    doc = golden()
    doc["input"]["setlinfo"].update(emp_name="广州市天河区某某科技有限公司", medcasno="BA20260001")
    for masked in (redact_document(doc), mask_personal(doc)):
        sl = masked["input"]["setlinfo"]
        assert sl["psn_no"] == "4401**************01"
        assert sl["medcasno"] == "BA20****01"
        assert sl["brdy"] == "1970-**-**"
        assert sl["emp_name"] == "广州市天河区****"


def test_a_list_or_object_under_a_personal_key_is_masked_whole() -> None:
    doc = golden()
    sl = doc["input"]["setlinfo"]
    sl.update(
        psn_name=["司马懿", "诸葛孔明"],
        certno={"no": CERTNOS[0], "type": "01"},
        coner_tel=13812345678,
        brdy=[[["1970-05-01"]]],
        psn_no=440100197005010015,
    )
    for masked in (redact_document(doc), mask_personal(doc)):
        out = masked["input"]["setlinfo"]
        assert out["psn_name"] == "[masked array]"
        assert out["certno"] == "[masked object]"
        assert out["brdy"] == "[masked array]"
        assert out["coner_tel"] == "138****5678"  # a number is masked as its text
        assert out["psn_no"] == "4401************15"
        assert _leaks(masked) == []


def test_unknown_keys_are_dropped_and_named() -> None:
    doc = golden()
    doc["patient"] = {"name": NAMES[0], "idcard": CERTNOS[0]}
    doc["input"]["extra"] = [CERTNOS[1]]
    doc["input"]["setlinfo"].update(
        idcard=CERTNOS[1], CertNo=CERTNOS[2], patient_name=NAMES[1], 证件号码=CERTNOS[0]
    )
    doc["input"]["diseinfo"][1]["patient"] = NAMES[2]
    out = redact_document(doc)
    assert out["_dropped"] == ["patient"]
    assert out["input"]["_dropped"] == ["extra"]
    assert out["input"]["setlinfo"]["_dropped"] == ["idcard", "CertNo", "patient_name", "证件号码"]
    assert out["input"]["diseinfo"][1]["_dropped"] == ["patient"]
    assert "_dropped" not in out["input"]["diseinfo"][0]
    for name in ("patient", "extra", "idcard", "CertNo", "patient_name"):
        assert name not in out and name not in out["input"]["setlinfo"]
    assert _leaks(out) == []


def test_dropped_key_names_are_bounded_and_carry_no_data() -> None:
    sl = {f"k{n:03d}": n for n in range(200)}
    sl[NAMES[0]] = 1  # attacker-controlled key names: a name, an ID number, a long one
    sl[CERTNOS[0]] = 1
    sl["x" * 10_000] = 1
    out = redact_document({"input": {"setlinfo": sl}})
    dropped = out["input"]["setlinfo"]["_dropped"]
    assert len(dropped) <= 21 and dropped[-1] == "+183 more"
    assert all(len(name) <= 40 for name in dropped)
    out = redact_document({"input": {"setlinfo": {NAMES[0]: 1, CERTNOS[0]: 2, "y" * 99: 3}}})
    dropped = out["input"]["setlinfo"]["_dropped"]
    assert dropped[0] == "???" and dropped[1].startswith("1101") and len(dropped[2]) <= 40
    assert _leaks(out) == []


def test_a_scalar_field_sent_as_a_structure_keeps_no_contents() -> None:
    doc = golden()
    doc["input"]["setlinfo"]["setl_id"] = {"certno": CERTNOS[0], "name": NAMES[0]}
    doc["input"]["diseinfo"][0]["diag_name"] = [NAMES[1]]
    doc["msgid"] = [[CERTNOS[1]]]
    out = redact_document(doc)
    assert out["input"]["setlinfo"]["setl_id"] == "[object]"
    assert out["input"]["diseinfo"][0]["diag_name"] == "[array]"
    assert out["msgid"] == "[array]"
    assert _leaks(out) == []


def test_id_like_digit_runs_in_kept_fields_are_masked() -> None:
    doc = golden()
    doc["input"]["setlinfo"]["bill_no"] = CERTNOS[0]
    doc["input"]["setlinfo"]["mdtrt_id"] = int(CERTNOS[0])
    doc["input"]["diseinfo"][0]["diag_name"] = f"胆囊炎{CERTNOS[1]}"
    out = redact_document(doc)
    assert out["msgid"] == "H440100" + "*" * 19 + "0001"
    assert out["input"]["setlinfo"]["bill_no"] == "110105********0029"
    assert out["input"]["setlinfo"]["mdtrt_id"] == "110105********0029"
    assert out["input"]["diseinfo"][0]["diag_name"] == "胆囊炎440100*******1001X"
    assert _leaks(out) == []
    tiny = 0.00041920796139999894  # as JSON: 18 digits in a row
    assert redact_document({"input": {"setlinfo": {"age": tiny}}})["input"]["setlinfo"] == {
        "age": "0.000419**********9894"
    }
    assert mask_personal({"x": tiny, "y": 0.5}) == {"x": "0.000419**********9894", "y": 0.5}


def test_nodes_of_the_wrong_shape() -> None:
    out = redact_document(
        {
            "input": {
                "setlinfo": [{"psn_name": NAMES[0], "setl_id": "S1"}, CERTNOS[0]],
                "diseinfo": {"diag_code": "K80.100", "x": NAMES[1]},
                "oprninfo": CERTNOS[1],
                "icuinfo": None,
            }
        }
    )
    inp = out["input"]
    assert inp["setlinfo"] == [{"psn_name": "司**", "setl_id": "S1"}, "[string]"]
    assert inp["diseinfo"] == {"diag_code": "K80.100", "_dropped": ["x"]}
    assert inp["oprninfo"] == "[string]" and inp["icuinfo"] is None
    assert redact_document({"input": [CERTNOS[0]]})["input"] == "[array]"


def test_a_document_that_is_not_an_object() -> None:
    doc = golden()
    doc["input"]["setlinfo"]["idcard"] = CERTNOS[0]
    out = redact_document([doc, CERTNOS[1], 7, None, [NAMES[0]]])
    assert out[0]["input"]["setlinfo"]["_dropped"] == ["idcard"]
    assert out[0]["input"]["setlinfo"]["psn_name"] == "张*"
    assert out[1:] == ["[string]", "[number]", None, "[array]"]
    for scalar in (CERTNOS[0], NAMES[0], 440100197005010015, 1.5, True, None):
        assert redact_document(scalar) is None
    assert _leaks(out) == []


def test_a_struct_is_redacted_too() -> None:
    env, _ = Validator().validate_json(msgspec.json.encode(golden()))
    out = redact_document(env)
    sl = out["input"]["setlinfo"]
    assert sl["psn_name"] == "张*" and sl["setl_id"] == "SETL000000000001"
    assert "张三" not in _text(out) and golden()["input"]["setlinfo"]["certno"] not in _text(out)


def test_ten_thousand_levels_of_nesting_do_not_recurse() -> None:
    deep = _nested(10_000, CERTNOS[0])
    doc = golden()
    doc["input"]["setlinfo"]["idcard"] = deep
    doc["input"]["setlinfo"]["psn_name"] = deep
    doc["input"]["setlinfo"]["setl_id"] = deep
    doc["deep"] = deep
    for value in (doc, deep, [deep], {"input": deep}, {"input": {"setlinfo": deep}}):
        out = redact_document(value)
        assert _leaks(out) == []
        masked = mask_personal(value)
        assert _leaks(masked) == []  # encodable: deep structure is cut


# -- mask_personal: log events ---------------------------------------------------------------


def test_mask_a_document_everywhere() -> None:
    doc = golden()
    masked = mask_personal(doc)
    sl = masked["input"]["setlinfo"]
    assert sl["psn_name"] == "张*"
    assert sl["certno"].startswith("440100") and "*" in sl["certno"]
    assert sl["certno"] != doc["input"]["setlinfo"]["certno"]
    assert sl["coner_name"] == "李*"
    assert sl["coner_tel"] == "138****5678"
    assert "体育西路" not in sl["curr_addr"]
    assert sl["setl_id"] == doc["input"]["setlinfo"]["setl_id"]  # not personal
    assert doc["input"]["setlinfo"]["psn_name"] == "张三"  # a copy, the input is untouched


def test_mask_a_struct() -> None:
    env, _ = Validator().validate_json(msgspec.json.encode(golden()))
    masked = mask_personal(env)
    assert masked["input"]["setlinfo"]["psn_name"] == "张*"
    text = msgspec.json.encode(masked).decode()
    assert "张三" not in text and golden()["input"]["setlinfo"]["certno"] not in text


def test_non_string_and_empty_values() -> None:
    assert mask_personal({"certno": None, "psn_name": ""}) == {"certno": None, "psn_name": ""}
    assert mask_personal({"coner_tel": 13812345678})["coner_tel"] == "138****5678"
    assert mask_personal([{"psn_name": "王五"}]) == [{"psn_name": "王*"}]
    assert mask_personal(({"psn_name": "王五"},)) == [{"psn_name": "王*"}]


def test_logs_mask_keys_that_look_personal() -> None:
    event = {
        "event": "x",
        "idcard": CERTNOS[0],
        "CertNo": CERTNOS[1],
        "patient_name": NAMES[0],
        "mobilePhone": "13812345678",
        "homeAddress": "广东省广州市天河区体育西路1号",
        "家庭住址": "广东省广州市天河区体育西路1号",
        "联系人": NAMES[1],
        "IDCard": {"no": CERTNOS[2]},
        "date_of_birth": "1970-05-01",
        "fixmedins_name": "广州市第一人民医院",  # known fields that are not personal
        "diag_name": "胆囊结石",
        "hotel": "kept",
        "worker": "sink",
    }
    masked = mask_personal(event)
    assert masked["idcard"] == "110105********0029"
    assert masked["CertNo"] == "440100********001X"
    assert masked["patient_name"] == "司**"
    assert masked["mobilePhone"] == "138****5678"
    assert masked["homeAddress"] == masked["家庭住址"] == "广东省广州市****"
    assert masked["联系人"] == "诸***"
    assert masked["IDCard"] == "[masked object]"
    assert masked["date_of_birth"] == "1970-**-**"
    for kept in ("fixmedins_name", "diag_name", "hotel", "worker", "event"):
        assert masked[kept] == event[kept]


def test_logs_mask_id_like_digit_runs_in_any_text() -> None:
    masked = mask_personal(
        {"event": f"lookup {CERTNOS[0]} failed", "error": f"key ({CERTNOS[2]}) exists"}
    )
    assert masked["event"] == "lookup 110105********0029 failed"
    assert _leaks(masked) == []


# -- the property ------------------------------------------------------------------------------

_PERSONAL = sorted({f.field for f in field_specs() if f.personal})
_KEPT = sorted({f.field for f in field_specs() if not f.personal} | {"input"})
_ALL = {*_PERSONAL, *_KEPT, *(f.node for f in field_specs())}
_NODES = ["setlinfo", "diseinfo", "oprninfo", "icuinfo", "bldinfo", "opspdiseinfo", "payinfo"]
_UNKNOWN = st.one_of(
    st.sampled_from(["idcard", "CertNo", "patient_name", "sfzh", "姓名", "x", "_dropped"]),
    st.text(st.characters(codec="ascii", categories=["L", "Nd", "Pc"]), max_size=10),
).filter(lambda key: key not in _ALL)
_PLAIN = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="ascii", exclude_categories=["Cc", "Cs"]), max_size=8),
)
_CERT = st.one_of(
    st.sampled_from(CERTNOS),
    st.sampled_from([int(c) for c in CERTNOS if c.isdigit()]),
    st.sampled_from(CERTNOS).map(lambda c: f"证件{c}号"),
    st.sampled_from(CERTNOS).map(lambda c: c + c),
)
_NAME = st.sampled_from(NAMES)


def _json(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Lists and objects of `inner`; an object's keys are personal, unknown, node names or
    other known fields. A bare name never sits under a kept field: free text (a diagnosis
    name, say) cannot be told from a name, so that is the one case a pattern cannot catch."""
    personal_or_unknown = st.tuples(
        st.one_of(st.sampled_from(_PERSONAL), _UNKNOWN, st.sampled_from(_NODES)), inner
    )
    kept = st.tuples(
        st.sampled_from(_KEPT),
        st.one_of(_PLAIN, _CERT, st.lists(inner, max_size=3), st.dictionaries(_UNKNOWN, inner)),
    )
    return st.one_of(
        st.lists(inner, max_size=4),
        st.lists(st.one_of(personal_or_unknown, kept), max_size=6).map(dict),
    )


_DOCS = st.recursive(st.one_of(_PLAIN, _CERT, _NAME), _json, max_leaves=40)


@st.composite
def _hostile(draw: st.DrawFn) -> Any:
    """An arbitrary document, or the golden list with arbitrary values put anywhere in it."""
    if draw(st.booleans()):
        return draw(_DOCS)
    doc = golden()
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.sampled_from(["top", "input", *_NODES]))
        key = draw(st.one_of(st.sampled_from(_PERSONAL), _UNKNOWN, st.sampled_from(_NODES)))
        value = draw(_DOCS)
        if where == "top":
            doc[key] = value
        elif where == "input":
            doc["input"][key] = value
        elif isinstance(doc["input"].get(where), dict):
            doc["input"][where][key] = value
        elif (
            isinstance(entries := doc["input"].get(where), list)
            and entries
            and isinstance(entries[0], dict)
        ):
            entries[0][key] = value
    setlinfo = doc["input"]["setlinfo"]
    for field in draw(st.lists(st.sampled_from(_KEPT), max_size=3)):  # kept fields: ID numbers
        if isinstance(setlinfo, dict):
            setlinfo[field] = draw(_CERT)
    return doc


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_hostile())
def test_no_certificate_number_or_name_survives_redaction(doc: Any) -> None:
    out = redact_document(doc)
    assert _leaks(out) == [], _text(out)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_DOCS)
def test_no_certificate_number_survives_log_masking(doc: Any) -> None:
    assert CERTNO_RUN.findall(_text(mask_personal(doc))) == []


def test_the_property_uses_the_tables_nodes() -> None:
    assert set(_NODES) <= {f.node for f in field_specs()}
    assert fields_of("iteminfo")  # (iteminfo, too, is a node: covered by the walk)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(),
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=300),
        st.text(st.sampled_from("0123456789.-eE"), min_size=10, max_size=40),
    ),
    st.sampled_from([f for f in fields_of("setlinfo") if not f.personal]),
)
def test_the_shortcuts_for_common_values_keep_what_the_rule_keeps(value: Any, spec: Any) -> None:
    """`_redact_node` passes short text, small integers and short floats through untouched:
    the same as the general rule (`_keep_any`) gives for them, and for everything else."""
    from contracts._mask import _keep_any, _plan

    (_, limit) = _plan("setlinfo")[spec.field]
    got = redact_document({"input": {"setlinfo": {spec.field: value}}})["input"]["setlinfo"]
    assert got == {spec.field: _keep_any(value, limit)}
