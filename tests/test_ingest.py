"""The gateway's door checks and content identity (pure: no broker, no database)."""

from __future__ import annotations

import msgspec
import pytest

from gateway.ingest import UploadRejected, parse_upload


def _doc(**over: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "infno": "4101A",
        "msgid": "H440100000012026112409300001",
        "fixmedins_code": "H44010000001",
        "mdtrtarea_admvs": "440100",
        "insuplc_admdvs": "440300",
        "input": {"setlinfo": {"setl_id": "S1", "psn_name": "张三"}, "diseinfo": []},
    }
    doc.update(over)
    return doc


def test_routing_keys_are_read() -> None:
    upload = parse_upload(msgspec.json.encode(_doc()))
    assert upload.case_key == "H44010000001:S1"
    assert (upload.mdtrtarea_admvs, upload.insuplc_admdvs) == ("440100", "440300")


def test_content_identity_ignores_envelope_meta_and_key_order() -> None:
    a = parse_upload(msgspec.json.encode(_doc()))
    b = parse_upload(
        b'{"input": {"diseinfo": [], "setlinfo": {"psn_name": "\\u5f20\\u4e09",'
        b' "setl_id": "S1"}}, "mdtrtarea_admvs": "440100", "insuplc_admdvs": "440300",'
        b' "fixmedins_code": "H44010000001", "msgid": "other", "inf_time": "x"}'
    )
    assert a.content_sha256 == b.content_sha256


def test_content_identity_changes_with_the_list() -> None:
    a = parse_upload(msgspec.json.encode(_doc()))
    changed = _doc(input={"setlinfo": {"setl_id": "S1", "psn_name": "张四"}, "diseinfo": []})
    assert parse_upload(msgspec.json.encode(changed)).content_sha256 != a.content_sha256


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", {("FMT001", "$")}),
        (b'{"a":', {("FMT001", "$")}),
        (b'"text"', {("FMT002", "$")}),
        (
            b"{}",
            {
                ("REQ001", "fixmedins_code"),
                ("REQ001", "mdtrtarea_admvs"),
                ("REQ001", "input.setlinfo.setl_id"),
            },
        ),
        (
            b'{"fixmedins_code": " ", "mdtrtarea_admvs": 440100, "input": {"setlinfo": []}}',
            {
                ("REQ001", "fixmedins_code"),
                ("REQ001", "mdtrtarea_admvs"),
                ("REQ001", "input.setlinfo.setl_id"),
            },
        ),
    ],
)
def test_bad_documents_name_every_rule_and_field(
    body: bytes, expected: set[tuple[str, str]]
) -> None:
    with pytest.raises(UploadRejected) as caught:
        parse_upload(body)
    assert {(p.rule, p.field) for p in caught.value.problems} == expected
    for problem in caught.value.problems:
        assert problem.message and problem.message_en and problem.severity == "reject"
