"""The national platform's response envelope (`infcode`, `err_msg`, `output`, …)."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from gateway.ingest import Receipt

_SEQUENCE = itertools.count(1)


def _refmsgid(admdvs: str | None, at: datetime) -> str:
    """Receiver's message id: region (6) + yyyyMMddHHmmss (14) + serial (10), as the spec says."""
    return f"{(admdvs or '000000')[:6]}{at:%Y%m%d%H%M%S}{next(_SEQUENCE) % 10**10:010d}"


def national_response(
    received_at: datetime,
    *,
    admdvs: str | None,
    receipt: Receipt | None = None,
    errors: list[Any] | None = None,
    warnings: list[Any] | None = None,
    responded_at: datetime | None = None,
) -> dict[str, Any]:
    now = responded_at or datetime.now(received_at.tzinfo)
    body: dict[str, Any] = {
        "infcode": 0 if receipt is not None else -1,
        "inf_refmsgid": _refmsgid(admdvs, received_at),
        "refmsg_time": f"{received_at:%Y%m%d%H%M%S}{received_at.microsecond // 1000:03d}",
        "respond_time": f"{now:%Y%m%d%H%M%S}{now.microsecond // 1000:03d}",
        "err_msg": "",
        "warn_msg": "",
        "output": None,
    }
    if receipt is not None:
        body["output"] = {
            "data": {
                "setl_list_id": str(receipt.receipt_id),
                "receipt_id": str(receipt.receipt_id),
                "revision": receipt.revision,
                "duplicate": receipt.duplicate,
            }
        }
    if errors:
        body["err_msg"] = "；".join(
            e if isinstance(e, str) else f"[{e.rule}] {e.field}: {e.message}" for e in errors
        )
        body["output"] = {"errors": [e for e in errors if not isinstance(e, str)]}
    if warnings:
        body["warn_msg"] = "；".join(f"[{w.rule}] {w.field}: {w.message}" for w in warnings)
    return body
