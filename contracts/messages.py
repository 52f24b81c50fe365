"""The messages dipgw writes to Kafka: msgspec Structs, JSON on the wire.

Every message carries its provenance envelope (receipt, case key, revision, regions, contract
version), so a consumer never needs to look anything up to know where a record came from.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from contracts._errors import Problem

CONTRACT_VERSION = "4101A-2023.08+dipgw.1"


def case_key(fixmedins_code: str, setl_id: str) -> str:
    """The Kafka key of every message about one case: all revisions land in one partition."""
    return f"{fixmedins_code}:{setl_id}"


class CaseProvenance(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """Where every stage's message about a case comes from: its receipt and revision."""

    receipt_id: str
    case_key: str
    fixmedins_code: str
    setl_id: str
    revision: int
    received_at: datetime


class AcceptedSettlement(CaseProvenance, kw_only=True, forbid_unknown_fields=False):
    mdtrtarea_admvs: str
    insuplc_admdvs: str | None = None
    contract_version: str = CONTRACT_VERSION
    warnings: list[dict[str, str]] = msgspec.field(default_factory=list)
    document: msgspec.Raw = msgspec.Raw(b"{}")
    """The upload document as the hospital sent it (national envelope shape), verbatim JSON."""


class RejectedSettlement(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    """`dip.settlement.rejected.v1`: a list refused at the door, for quality and ops.

    `errors` are every rejecting finding (the one error shape); `document` is the list with
    its personal fields masked (`contracts.mask_personal`), verbatim JSON; `null` when the
    upload was not JSON."""

    fixmedins_code: str
    case_key: str | None = None
    position: str = "$"
    received_at: datetime
    errors: list[Problem] = msgspec.field(default_factory=list)
    document: msgspec.Raw = msgspec.Raw(b"null")


ENCODER = msgspec.json.Encoder()
ACCEPTED_DECODER = msgspec.json.Decoder(AcceptedSettlement)
REJECTED_DECODER = msgspec.json.Decoder(RejectedSettlement)
