"""From request bytes to checked uploads: decoding, the contract's rules, the door checks.

Pure (no I/O): the handlers call it and then hand the good uploads to the ingestor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

from gateway.errors import Problem
from gateway.ingest import Upload, UploadRejected, upload_from_document
from gateway.logs import mask_mapping

CST = ZoneInfo("Asia/Shanghai")


@dataclass
class Checked:
    position: str
    upload: Upload
    discharged_at: datetime | None = None


@dataclass
class Rejected(Exception):
    position: str
    errors: list[Any]
    case_key: str | None = None
    masked_document: Any = field(default=None, repr=False)


def _problem(rule: str, message: str, message_en: str, field: str = "$") -> Problem:
    return Problem(
        rule=rule,
        field=field,
        dimension="规范性",
        severity="reject",
        message=message,
        message_en=message_en,
    )


def _discharged_at(doc: dict[str, Any]) -> datetime | None:
    text = ((doc.get("input") or {}).get("setlinfo") or {}).get("dscg_time")
    if not isinstance(text, str):
        return None
    try:
        return datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CST)
    except ValueError:
        return None


_ESCAPES = re.compile(rb"\\u(0000|[dD][89a-fA-F])")


def _suspicious(body: bytes) -> bool:
    """Only an escape can put NUL or a lone surrogate into decoded JSON text: look for one."""
    return _ESCAPES.search(body) is not None


def _bad_text(node: Any, path: str = "$") -> str | None:
    """Path of the first string PostgreSQL cannot store (NUL, lone surrogate), if any."""
    if isinstance(node, str):
        if "\x00" in node:
            return path
        try:
            node.encode("utf-8")
        except UnicodeEncodeError:
            return path
        return None
    if isinstance(node, dict):
        for key, value in node.items():
            found = _bad_text(key, path) or _bad_text(value, f"{path}.{key}")
            if found:
                return found
    if isinstance(node, list):
        for index, value in enumerate(node):
            found = _bad_text(value, f"{path}[{index}]")
            if found:
                return found
    return None


class Checker:
    def check_document(
        self,
        doc: Any,
        position: str,
        *,
        infno: str | None = None,
        body: bytes | None = None,
        suspicious: bool = False,
    ) -> Checked | Rejected:
        if suspicious and (where := _bad_text(doc)) is not None:
            return Rejected(
                position,
                [
                    _problem(
                        "FMT004",
                        f"文本含有不可存储的字符（\\u0000 或孤立代理项）：{where}",
                        f"text holds an unstorable character (NUL, lone surrogate): {where}",
                        where.removeprefix("$."),
                    )
                ],
            )
        if infno is not None and isinstance(doc, dict) and doc.get("infno") not in (None, infno):
            return Rejected(
                position,
                [
                    _problem(
                        "ENV_INFNO",
                        f"交易编号 {doc.get('infno')!r} 与接口 {infno} 不符",
                        f"infno {doc.get('infno')!r} does not match the endpoint {infno}",
                        "infno",
                    )
                ],
            )
        try:
            upload = upload_from_document(doc, body)
        except UploadRejected as rejected:
            case = None
            if isinstance(doc, dict):
                setl = ((doc.get("input") or {}).get("setlinfo") or {}).get("setl_id")
                if isinstance(doc.get("fixmedins_code"), str) and isinstance(setl, str):
                    case = f"{doc['fixmedins_code']}:{setl}"
            return Rejected(position, list(rejected.problems), case, mask_mapping(doc))
        return Checked(position, upload, _discharged_at(doc))

    def check_one(
        self, body: bytes, received_at: datetime, *, infno: str | None = None
    ) -> Checked | Rejected:
        try:
            doc = msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            return Rejected(
                "$", [_problem("FMT001", f"JSON 格式错误：{exc}", f"malformed JSON: {exc}")]
            )
        return self.check_document(doc, "$", infno=infno, body=body, suspicious=_suspicious(body))

    def check_many(
        self, body: bytes, kind: str, received_at: datetime, *, max_records: int
    ) -> list[Checked | Rejected]:
        """Each record checked on its own: one bad record never sinks the rest."""
        if kind == "batch":
            try:
                doc = msgspec.json.decode(body)
            except msgspec.DecodeError as exc:
                raise Rejected(
                    "$", [_problem("FMT001", f"JSON 格式错误：{exc}", f"malformed JSON: {exc}")]
                ) from None
            records = doc.get("records") if isinstance(doc, dict) else None
            if not isinstance(records, list):
                raise Rejected(
                    "$",
                    [
                        _problem(
                            "FMT003",
                            '批量报文须为 {"records": [...]}',
                            'a batch is {"records": [...]}',
                            "records",
                        )
                    ],
                )
            self._check_size(len(records), max_records)
            suspicious = _suspicious(body)
            return [
                self.check_document(r, f"records[{i}]", suspicious=suspicious)
                for i, r in enumerate(records)
            ]
        if kind == "ndjson":
            lines = [(n, line) for n, line in enumerate(body.splitlines(), 1) if line.strip()]
            self._check_size(len(lines), max_records)
            out: list[Checked | Rejected] = []
            for n, line in lines:
                try:
                    out.append(
                        self.check_document(msgspec.json.decode(line), f"line {n}", body=line)
                    )
                except msgspec.DecodeError as exc:
                    out.append(
                        Rejected(
                            f"line {n}",
                            [
                                _problem(
                                    "FMT001",
                                    f"第 {n} 行 JSON 格式错误：{exc}",
                                    f"line {n}: malformed JSON: {exc}",
                                )
                            ],
                        )
                    )
            return out
        raise Rejected(
            "$", [_problem("HTTP415", f"暂不支持 {kind}", f"{kind} is not supported yet")]
        )

    @staticmethod
    def _check_size(count: int, max_records: int) -> None:
        if count > max_records:
            raise Rejected(
                "$",
                [
                    _problem(
                        "BATCH_TOO_LARGE",
                        f"单批记录数 {count} 超过上限 {max_records}",
                        f"{count} records exceed the batch limit of {max_records}",
                        "records",
                    )
                ],
            )
        if count == 0:
            raise Rejected(
                "$", [_problem("BATCH_EMPTY", "批量报文没有记录", "the batch is empty", "records")]
            )
