"""The accepted record's stored bytes: the document and the content identity are those of
encoding the envelope and (routing keys, record) whole, though the record is encoded once;
an escaped NUL is still refused (FMT004) though only bodies with a backslash are searched."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime

import msgspec

from contracts import CST
from contracts.messages import ENCODER
from contracts.samples import make_envelope_bytes, make_settlement
from gateway.checks import Checked, Checker, Rejected

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=CST)
CHECKER = Checker()


def test_document_and_identity_are_the_whole_encodings() -> None:
    rng = random.Random(5)
    validator = Checker()._validator
    for _ in range(50):
        raw = make_envelope_bytes(rng, now=NOW.replace(tzinfo=None))
        checked = CHECKER.check_one(raw, NOW)
        assert isinstance(checked, Checked)
        envelope, _errors = validator.validate_json(raw, received_at=NOW)
        assert envelope is not None
        identity = ENCODER.encode(
            (
                envelope.fixmedins_code,
                envelope.mdtrtarea_admvs,
                envelope.insuplc_admdvs,
                envelope.input,
            )
        )
        assert checked.upload.content_sha256 == hashlib.sha256(identity).digest()
        assert checked.upload.document == ENCODER.encode(envelope)


def test_escaped_nul_is_refused_with_or_without_other_backslashes() -> None:
    doc = make_settlement(random.Random(6), now=NOW.replace(tzinfo=None))
    doc["input"]["setlinfo"]["psn_name"] = "王\x00英"
    plain = msgspec.json.encode(doc)
    assert b"\\u0000" in plain
    escaped = plain.replace("英".encode(), b"\\u82f1")
    for raw in (plain, escaped):
        refused = CHECKER.check_one(raw, NOW)
        assert isinstance(refused, Rejected)
        assert [p.rule for p in refused.errors] == ["FMT004"]
    doc["input"]["setlinfo"]["psn_name"] = "王\\英"  # a backslash, no NUL: not refused for it
    other = CHECKER.check_one(msgspec.json.encode(doc), NOW)
    assert not isinstance(other, Rejected) or "FMT004" not in [p.rule for p in other.errors]
