"""The national platform's transactions as dipgw answers them (docs/national.md): the
response envelope (`infcode`, `err_msg`, `output`, …), the inputs of 4102 (status change) and
4103 (query), the status rules of 4102 and the output shape of 4103.

Pure (no I/O): `gateway.routes_national` reads and writes. The errors only these
transactions give have their own small catalogue here (`NATIONAL_REASONS`, shown in
docs/national.md); every other error is `gateway.refusals`'.
"""

from __future__ import annotations

import itertools
import re
from datetime import datetime
from typing import Any, Final

import msgspec

from contracts import CST, Problem, Reason
from gateway.ingest import Receipt

UPLOADS: Final = ("4101", "4101A")
TRANSACTIONS: Final = (*UPLOADS, "4102", "4103")
"""The national transactions dipgw answers, on `/fsi/api/{infno}` and on `/fsi/api`."""

STATUS_INPUT: Final = ("psn_no", "setl_id", "stas_type")
"""4102 input, node `data.stastinfo` (spec 表196), one row or several."""
QUERY_INPUT: Final = ("psn_no", "setl_id")
"""4103 input, node `data` (spec 表197)."""
QUERY_NODES: Final = (
    "setlinfo",
    "payinfo",
    "opspdiseinfo",
    "diseinfo",
    "iteminfo",
    "oprninfo",
    "icuinfo",
    "bldinfo",
)
"""4103 output nodes (spec 表198–203; 4101A's `bldinfo` too, as stored)."""

SUBMITTED, WITHDRAWN, APPROVED, NOT_APPROVED = "1", "0", "2", "3"
STATUS_LABELS: Final = {
    WITHDRAWN: ("未提交", "not submitted (withdrawn)"),
    SUBMITTED: ("已提交", "submitted"),
    APPROVED: ("审核通过", "approved"),
    NOT_APPROVED: ("审核不通过", "not approved"),
}
"""Dictionary stas_type (4102 重点说明). A hospital may set 0 and 1 only."""

_ID_CHARS = 30  # psn_no and setl_id: 字符型 30


class NationalReason(Reason, frozen=True, kw_only=True):
    """An error of the national transactions 4102/4103 and of the service address; answered
    inside the national envelope (HTTP 200, infcode -1), as the national platform does."""

    severity: str = "reject"


NAT_INFNO: Final = NationalReason(
    rule="NAT_INFNO",
    field="infno",
    message="交易编号 {given} 不受支持，可用：{supported}",
    message_en="infno {given} is not a transaction of this address: use one of {supported}",
)
NAT_REQUIRED: Final = NationalReason(
    rule="NAT_REQUIRED",
    field="input",
    message="【{name}】未填写",
    message_en="{path} is required",
)
NAT_INPUT: Final = NationalReason(
    rule="NAT_INPUT",
    field="input",
    message="输入格式错误：{detail}",
    message_en="input is not of the transaction's shape: {detail}",
)
NAT_STATUS: Final = NationalReason(
    rule="NAT_STATUS",
    field="stas_type",
    message="结算清单 {setl_id} 状态为{current}，不可改为{target}：{why}",
    message_en="list {setl_id} is {current_en}; it cannot become {target_en}: {why_en}",
)
NAT_PSN: Final = NationalReason(
    rule="NAT_PSN",
    field="psn_no",
    message="人员编号与结算清单 {setl_id} 不符",
    message_en="psn_no does not match list {setl_id}",
)

NATIONAL_REASONS: Final[tuple[NationalReason, ...]] = (
    NAT_INFNO,
    NAT_REQUIRED,
    NAT_INPUT,
    NAT_STATUS,
    NAT_PSN,
)


def markdown_table() -> str:
    """The catalogue as docs/national.md shows it (a test keeps them equal)."""
    lines = ["| ID | field | message | 说明 |", "|---|---|---|---|"]
    for entry in NATIONAL_REASONS:
        lines.append(f"| `{entry.rule}` | `{entry.field}` | {entry.message_en} | {entry.message} |")
    return "\n".join(lines) + "\n"


# -- the response envelope ---------------------------------------------------------------

_SEQUENCE = itertools.count(1)


def _refmsgid(admdvs: str | None, at: datetime) -> str:
    """Receiver's message id: region (6) + yyyyMMddHHmmss (14) + serial (10), as the spec says."""
    return f"{(admdvs or '000000')[:6]}{at:%Y%m%d%H%M%S}{next(_SEQUENCE) % 10**10:010d}"


def _stamp(at: datetime) -> str:
    """yyyyMMddHHmmssSSS in China Standard Time, the spec's format (it has no offset)."""
    return f"{at:%Y%m%d%H%M%S}{at.microsecond // 1000:03d}"


def national_response(
    received_at: datetime,
    *,
    admdvs: str | None,
    receipt: Receipt | None = None,
    output: dict[str, Any] | None = None,
    errors: list[Any] | None = None,
    warnings: list[Any] | None = None,
    responded_at: datetime | None = None,
) -> dict[str, Any]:
    """The answer: infcode 0 with `output` (an upload's receipt, or a transaction's output),
    or -1 with every error in `err_msg` and under `output.errors`.

    Times are China Standard Time whatever zone the clock reads (the format has no offset,
    the spec defines it as local time)."""
    received = received_at.astimezone(CST)
    now = (responded_at or datetime.now(CST)).astimezone(CST)
    ok = not errors and (receipt is not None or output is not None)
    body: dict[str, Any] = {
        "infcode": 0 if ok else -1,
        "inf_refmsgid": _refmsgid(admdvs, received),
        "refmsg_time": _stamp(received),
        "respond_time": _stamp(now),
        "err_msg": "",
        "warn_msg": "",
        "output": output,
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


# -- 4102 and 4103 inputs ----------------------------------------------------------------


class _Head(msgspec.Struct, forbid_unknown_fields=False):
    infno: str | None = None


class _Row(msgspec.Struct, forbid_unknown_fields=False):
    psn_no: str | None = None
    setl_id: str | None = None
    stas_type: str | int | None = None  # a HIS may send the code as a number


class _StatusData(msgspec.Struct, forbid_unknown_fields=False):
    stastinfo: list[_Row] | _Row | None = None


class _StatusInput(msgspec.Struct, forbid_unknown_fields=False):
    data: _StatusData | None = None


class _QueryInput(msgspec.Struct, forbid_unknown_fields=False):
    data: _Row | None = None


class _Envelope(msgspec.Struct, forbid_unknown_fields=False):
    infno: str | None = None
    fixmedins_code: str | None = None


class StatusRequest(_Envelope, forbid_unknown_fields=False):
    input: _StatusInput | None = None


class QueryRequest(_Envelope, forbid_unknown_fields=False):
    input: _QueryInput | None = None


class StatusChange(msgspec.Struct, frozen=True):
    """One checked 4102 row."""

    psn_no: str
    setl_id: str
    stas_type: str


def infno_of(body: bytes) -> str | None:
    """The body's `infno` (the service address dispatches on it). Raises msgspec errors
    and RecursionError as decoding does."""
    return msgspec.json.decode(body, type=_Head).infno


def _text(value: str | int | None, path: str, name: str, problems: list[Problem]) -> str:
    text = "" if value is None else str(value).strip()
    if not text:
        problems.append(NAT_REQUIRED.problem(path, name=name, path=path))
    elif len(text) > _ID_CHARS:
        problems.append(
            NAT_INPUT.problem(path, detail=f"{path} longer than {_ID_CHARS} characters")
        )
    elif not text.isprintable():  # NUL and the like: no list has them (PostgreSQL refuses NUL)
        problems.append(NAT_INPUT.problem(path, detail=f"{path} holds control characters"))
    return text


def status_rows(request: StatusRequest, max_rows: int) -> tuple[list[StatusChange], list[Problem]]:
    """4102's rows, each checked on its own (required, length, 0 or 1, no list twice)."""
    stastinfo = request.input.data.stastinfo if request.input and request.input.data else None
    if stastinfo is None:
        path = "input.data.stastinfo"
        return [], [NAT_REQUIRED.problem(path, name="状态修改信息", path=path)]
    rows = stastinfo if isinstance(stastinfo, list) else [stastinfo]
    if not rows or len(rows) > max_rows:
        detail = f"input.data.stastinfo holds {len(rows)} rows: 1 to {max_rows}"
        return [], [NAT_INPUT.problem("input.data.stastinfo", detail=detail)]
    problems: list[Problem] = []
    out, seen = [], set()
    for i, row in enumerate(rows):
        at = f"input.data.stastinfo[{i}]"
        psn_no = _text(row.psn_no, f"{at}.psn_no", "人员编号", problems)
        setl_id = _text(row.setl_id, f"{at}.setl_id", "结算ID", problems)
        stas = _text(row.stas_type, f"{at}.stas_type", "审核状态", problems)
        if stas and stas not in (WITHDRAWN, SUBMITTED):
            problems.append(
                NAT_INPUT.problem(
                    f"{at}.stas_type",
                    detail=f"{at}.stas_type must be 0 or 1 (dictionary stas_type)",
                )
            )
        if setl_id in seen:
            problems.append(NAT_INPUT.problem(f"{at}.setl_id", detail=f"{at}.setl_id repeated"))
        seen.add(setl_id)
        out.append(StatusChange(psn_no, setl_id, stas))
    return out, problems


def query_row(request: QueryRequest) -> tuple[StatusChange | None, list[Problem]]:
    """4103's one row (psn_no, setl_id); `stas_type` unused."""
    data = request.input.data if request.input else None
    if data is None:
        return None, [NAT_REQUIRED.problem("input.data", name="查询条件", path="input.data")]
    problems: list[Problem] = []
    psn_no = _text(data.psn_no, "input.data.psn_no", "人员编号", problems)
    setl_id = _text(data.setl_id, "input.data.setl_id", "结算ID", problems)
    return (None if problems else StatusChange(psn_no, setl_id, "")), problems


# -- the status rules --------------------------------------------------------------------


def status_of(record: dict[str, Any]) -> str:
    """A stored list's status: its `setlinfo.stas_type`, submitted when absent (an upload
    is a submission: dipgw checks, groups and scores it at once)."""
    setlinfo = (record.get("input") or {}).get("setlinfo") or {}
    return str(setlinfo.get("stas_type") or SUBMITTED)


def refused_change(setl_id: str, current: str, target: str, field: str) -> Problem | None:
    """Why the change 4102's 重点说明 does not allow (None: allowed): a hospital sets 0 or 1;
    submitted may not be submitted again, nor withdrawn made withdrawn; an approved list is
    not the hospital's to change; 'not approved' may go either way."""
    if current == APPROVED:
        why = ("审核通过的清单不可修改", "an approved list cannot be changed")
    elif current == target:
        why = ("状态相同，不可重复更新", "it already is")
    else:
        return None
    (current_cn, current_en) = STATUS_LABELS.get(current, (current, current))
    (target_cn, target_en) = STATUS_LABELS[target]
    return NAT_STATUS.problem(
        field,
        setl_id=setl_id,
        current=current_cn,
        current_en=current_en,
        target=target_cn,
        target_en=target_en,
        why=why[0],
        why_en=why[1],
    )


def with_status(record: dict[str, Any], target: str) -> dict[str, Any]:
    """The stored list, its `setlinfo.stas_type` set: the document of the status revision."""
    document = dict(record)
    document["input"] = dict(record.get("input") or {})
    document["input"]["setlinfo"] = {
        **(document["input"].get("setlinfo") or {}),
        "stas_type": target,
    }
    return document


# -- the 4103 output ---------------------------------------------------------------------

_DURATIONS: Final = {
    "vent_used_dura": ("vent_used_days", "vent_used_hcnt", "vent_used_mcnt"),
    "pwcry_bfadm_coma_dura": ("bfadm_coma_days", "bfadm_coma_h_cnt", "bfadm_coma_m_cnt"),
    "pwcry_afadm_coma_dura": ("afadm_coma_days", "afadm_coma_h_cnt", "afadm_coma_m_cnt"),
}
_RENAMED: Final = {"nwb_bir_wt": "nwbbirwt", "nwb_adm_wt": "nwbadmwt", "insuplc": "insu_admdvs"}
_STORED_TIME = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})$")
_DURATION = re.compile(r"^(\d{1,4})/(\d{1,2})/(\d{1,2})$")


def _national_times(value: Any) -> Any:
    """Stored times (ISO, China Standard Time) in the spec's `yyyy-MM-dd HH:mm:ss`."""
    if isinstance(value, str) and (match := _STORED_TIME.match(value)):
        return f"{match[1]} {match[2]}"
    return value


def _row(row: Any) -> Any:
    return {k: _national_times(v) for k, v in row.items()} if isinstance(row, dict) else row


def query_output(record: dict[str, Any]) -> dict[str, Any]:
    """4103's output for a stored list: its nodes as stored (national names), times in the
    national format, the status, and the 4103 names where 4103 spells a field otherwise
    (nwbbirwt, insu_admdvs, durations split into days/hours/minutes)."""
    nodes = record.get("input") or {}
    setlinfo = _row(dict(nodes.get("setlinfo") or {}))
    for key in ("fixmedins_code", "fixmedins_name"):
        if not setlinfo.get(key) and record.get(key):
            setlinfo[key] = record[key]
    setlinfo["stas_type"] = status_of(record)
    for old, new in _RENAMED.items():
        if old in setlinfo and new not in setlinfo:
            setlinfo[new] = setlinfo[old]
    for name, parts in _DURATIONS.items():
        value = setlinfo.get(name)
        if isinstance(value, str) and (match := _DURATION.match(value)):
            setlinfo.update(zip(parts, (int(match[1]), int(match[2]), int(match[3])), strict=True))
    out: dict[str, Any] = {"setlinfo": setlinfo}
    for node in QUERY_NODES[1:]:
        out[node] = [_row(row) for row in nodes.get(node) or []]
    return out
