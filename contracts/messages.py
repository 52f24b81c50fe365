"""The messages dipgw writes to Kafka: msgspec Structs, JSON on the wire.

Every message carries its provenance envelope (receipt, case key, revision, regions, contract
version), so a consumer never needs to look anything up to know where a record came from.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

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


ENCODER = msgspec.json.Encoder()
ACCEPTED_DECODER = msgspec.json.Decoder(AcceptedSettlement)
