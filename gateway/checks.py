"""From request bytes to checked uploads: the adapters decode, the contract validates.

Pure (no I/O): the handlers call it and hand the good uploads to the ingestor. Every record
is checked on its own, so one bad record never sinks the rest of a batch or file.

Hostile input ends in a refusal, never an exception out of here: JSON nested too deeply to
read is JSON_TOO_DEEP (the whole request, or the one NDJSON line), a spreadsheet past its
`adapters.InputLimits` is SHEET_LIMIT or FILE_TOO_LARGE naming the limit. Parsing a file is
CPU work the event loop must not do: the gateway runs `check_many` of the file endpoint in
its file workers (`gateway.offload`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec

from adapters import (
    FORMATS,
    InputLimits,
    JsonTooDeep,
    LimitExceeded,
    read_records,
    split_batch,
)
from adapters.runtime.errors import DipgwError
from contracts import (
    CST,
    Envelope,
    ValidationError,
    Validator,
    fields_by_node,
    is_rejected,
    redact_document,
)
from contracts.messages import ENCODER, case_key
from gateway import refusals
from gateway.ingest import Upload


@dataclass
class Checked:
    position: str
    upload: Upload
    discharged_at: datetime | None = None


@dataclass
class Rejected(DipgwError):
    position: str
    errors: list[Any]
    case_key: str | None = None
    masked_document: Any = field(default=None, repr=False)
    # what the record claims, so a hospital sending another's lists is refused (403) first
    fixmedins_code: str | None = None
    mdtrtarea_admvs: str | None = None


# msgspec refuses lone surrogates itself; NUL (valid JSON, refused by PostgreSQL) only
# arrives as an escape, so only bodies holding one are searched.
_ESCAPES = re.compile(rb"\\u0000")


def _suspicious(body: bytes) -> bool:
    return _ESCAPES.search(body) is not None


def _bad_text(root: Any) -> tuple[Any, ...] | None:
    """Path (keys and indexes) of the first string PostgreSQL cannot store (NUL, lone
    surrogate), if any.

    Walks with a stack of its own, not by recursion: the document may nest as deep as the
    parser reads (hundreds of levels), deeper than the interpreter's recursion limit allows
    a recursive walk from a request handler."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                return path
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return path
        elif isinstance(node, dict):
            children: list[tuple[Any, tuple[Any, ...]]] = []
            for key, value in node.items():
                children += ((key, path), (value, (*path, key)))
            stack += reversed(children)
        elif isinstance(node, list):
            stack += reversed([(value, (*path, i)) for i, value in enumerate(node)])
    return None


def _known_part(path: tuple[Any, ...]) -> str:
    """The contract's name for as much of `path` as the contract knows (`setlinfo.certno`,
    `diseinfo[2]`, `$`): a key it does not know is the sender's own text — an ID number
    sent as a key name, say — and is never echoed."""
    if not path:
        return "$"
    head, *rest = path
    if head != "input":
        return head if head in _FIELDS["envelope"] else "$"
    if not rest or rest[0] not in _FIELDS:
        return "$"
    node, *rest = rest
    shown = node
    if node != "setlinfo":
        if not rest or not isinstance(rest[0], int):
            return shown
        shown, rest = f"{node}[{rest[0]}]", rest[1:]
    if rest and rest[0] in _FIELDS[node]:
        return f"{shown}.{rest[0]}"
    return shown


_FIELDS = fields_by_node()


def too_deep(position: str = "$") -> Rejected:
    """JSON_TOO_DEEP: a document nested deeper than the parser reads (`JSON_MAX_DEPTH`)."""
    return Rejected(position, [refusals.JSON_TOO_DEEP.problem(maximum=JsonTooDeep().maximum)])


def over_limit(exc: LimitExceeded) -> Rejected:
    """FILE_TOO_LARGE (the package: zip, inflated bytes, memory) or SHEET_LIMIT (its rows,
    columns, cells, text), naming the limit and its maximum; what was found (values of the
    upload's own) stays out of the answer."""
    refusal = refusals.FILE_TOO_LARGE if exc.of_file else refusals.SHEET_LIMIT
    return Rejected(
        "$", [refusal.problem(limit=exc.limit, limit_cn=exc.limit_cn, maximum=exc.maximum)]
    )


def _unstorable(raw: bytes, position: str) -> Rejected | None:
    """FMT004 for a record holding text PostgreSQL cannot store: refused at the door, because
    a record answered 'accepted' must be storable by the sink."""
    if not _suspicious(raw):
        return None
    try:
        where = _bad_text(msgspec.json.decode(raw))
    except msgspec.DecodeError:
        return None
    if where is None:
        return None
    field = _known_part(where)
    return Rejected(
        position,
        [refusals.FMT004.problem(field, path=field)],
        None,
        _masked(raw),
    )


# Routing needs these whatever a city's rule configuration says: they are the case key and
# the treating region. (The contract's own REQ rules report them too, with their rule IDs.)
_ROUTING = (
    ("fixmedins_code", "定点医药机构编号"),
    ("mdtrtarea_admvs", "就医地医保区划"),
    ("setlinfo.setl_id", "结算ID"),
)


def _masked(raw: bytes) -> Any:
    try:
        return redact_document(msgspec.json.decode(raw))
    except msgspec.DecodeError:
        return None


class Checker:
    """Decode + validate with one `contracts.Validator` (a city's rule configuration);
    spreadsheets are read within `limits`."""

    def __init__(
        self, validator: Validator | None = None, *, limits: InputLimits | None = None
    ) -> None:
        self._validator = validator or Validator()
        self.limits = limits or InputLimits()

    # -- one record --------------------------------------------------------------------

    def check_raw(
        self, raw: bytes, position: str, received_at: datetime, *, infno: str | None = None
    ) -> Checked | Rejected:
        """One JSON record; nested too deeply to read, it is rejected (JSON_TOO_DEEP)."""
        try:
            return self._check_raw(raw, position, received_at, infno)
        except RecursionError:  # msgspec's parser, at the interpreter's recursion limit
            return too_deep(position)

    def _check_raw(
        self, raw: bytes, position: str, received_at: datetime, infno: str | None
    ) -> Checked | Rejected:
        # an escaped NUL needs a backslash: most bodies hold none (one memchr, not a search)
        if b"\\" in raw and (unstorable := _unstorable(raw, position)) is not None:
            return unstorable
        envelope, errors = self._validator.validate_json(raw, received_at=received_at)
        return self._verdict(envelope, errors, position, raw, infno)

    def check_envelope(
        self,
        envelope: Envelope | None,
        decode_errors: list[ValidationError],
        position: str,
        received_at: datetime,
    ) -> Checked | Rejected:
        """A record an adapter already decoded (CSV/XLSX row): validate, then judge."""
        errors = list(decode_errors)
        if envelope is not None:
            # A cell may hold what JSON cannot carry into PostgreSQL just as a JSON body can.
            if (unstorable := _unstorable(ENCODER.encode(envelope), position)) is not None:
                return unstorable
            errors = self._validator.validate_decoded(envelope, errors, received_at=received_at)
        return self._verdict(envelope, errors, position, None, None)

    def _verdict(
        self,
        envelope: Envelope | None,
        errors: list[ValidationError],
        position: str,
        raw: bytes | None,
        infno: str | None,
    ) -> Checked | Rejected:
        problems: list[Any] = list(errors)
        key = None
        if envelope is not None:
            setl = envelope.input.setlinfo.setl_id
            if envelope.fixmedins_code and setl:
                key = case_key(envelope.fixmedins_code, setl)
            if infno is not None and envelope.infno not in (None, infno):
                problems.append(refusals.ENV_INFNO.problem(given=repr(envelope.infno), infno=infno))
            if not (envelope.fixmedins_code and envelope.mdtrtarea_admvs and setl):
                reported = {e.field for e in errors}
                values = {
                    "fixmedins_code": envelope.fixmedins_code,
                    "mdtrtarea_admvs": envelope.mdtrtarea_admvs,
                    "setlinfo.setl_id": setl,
                }
                for path, name in _ROUTING:
                    if not values[path] and path not in reported:
                        problems.append(refusals.REQ_ROUTING.problem(path, name=name, path=path))
        if envelope is None or is_rejected(errors) or len(problems) > len(errors):
            rejects = [p for p in problems if p.severity == "reject"] or problems
            document = (
                _masked(raw)
                if raw is not None
                else (
                    redact_document(msgspec.to_builtins(envelope)) if envelope is not None else None
                )
            )
            return Rejected(
                position,
                rejects,
                key,
                document,
                envelope.fixmedins_code if envelope else None,
                envelope.mdtrtarea_admvs if envelope else None,
            )
        assert envelope.fixmedins_code and envelope.mdtrtarea_admvs and key
        setlinfo = envelope.input.setlinfo
        # the record encoded once, spliced into both the identity and the document (the
        # same bytes as encoding each whole)
        record = msgspec.Raw(ENCODER.encode(envelope.input))
        identity = ENCODER.encode(
            (
                envelope.fixmedins_code,
                envelope.mdtrtarea_admvs,
                envelope.insuplc_admdvs,
                record,
            )
        )
        upload = Upload(
            fixmedins_code=envelope.fixmedins_code,
            setl_id=str(setlinfo.setl_id),
            mdtrtarea_admvs=envelope.mdtrtarea_admvs,
            insuplc_admdvs=envelope.insuplc_admdvs or None,
            # The canonical, normalised record: msgid/inf_time/signature change on every
            # resend, so identity is the content that matters.
            content_sha256=hashlib.sha256(identity).digest(),
            document=ENCODER.encode(msgspec.structs.replace(envelope, input=record)),
            warnings=tuple(problems),
        )
        discharged = setlinfo.dscg_time
        if discharged is not None and discharged.tzinfo is None:
            discharged = discharged.replace(tzinfo=CST)  # hospital data is China Standard Time
        return Checked(position, upload, discharged)

    # -- requests ----------------------------------------------------------------------

    def check_one(
        self, body: bytes, received_at: datetime, *, infno: str | None = None
    ) -> Checked | Rejected:
        """One list (the single and national endpoints). Raises `Rejected` (JSON_TOO_DEEP)
        for a body nested too deeply to read: a refusal of the request, like a body too
        large, not a verdict on a list."""
        try:
            return self._check_raw(body, "$", received_at, infno)
        except RecursionError:
            raise too_deep() from None

    def check_many(
        self, body: bytes, kind: str, received_at: datetime, *, max_records: int
    ) -> list[Checked | Rejected]:
        """Every record of a batch (`kind` "batch": the batch endpoint's JSON) or of an upload
        in a registered feed format (`adapters.FORMATS`, by name).

        Raises `Rejected` for the upload as a whole: unreadable, too many or no records,
        nested too deeply (JSON_TOO_DEEP), past an input limit (SHEET_LIMIT, FILE_TOO_LARGE).
        `MemoryError` and `TimeoutError` pass through (the file workers answer them)."""
        if kind == "batch" or ((fmt := FORMATS.get(kind)) is not None and fmt.split is not None):
            # JSON records: validated from their bytes (the hot path)
            parts = self.split(body, kind, max_records)
            return [self.check_raw(raw, pos, received_at) for pos, raw in parts]
        if fmt is None:
            raise Rejected("$", [refusals.FMT_UNSUPPORTED.problem(kind=kind)])
        out = []
        try:
            records = read_records(fmt, body, validator=self._validator, limits=self.limits)
            for record in _bounded(records, max_records):
                out.append(
                    self.check_envelope(
                        record.envelope, record.errors, record.position, received_at
                    )
                )
        except LimitExceeded as exc:
            raise over_limit(exc) from None
        except (MemoryError, TimeoutError):
            raise
        except RecursionError:
            raise too_deep() from None
        except Exception as exc:
            raise Rejected(
                "$",
                [refusals.DEC_FILE.problem(kind=kind, detail=exc)],
            ) from None
        self._check_size(len(out), max_records)
        return out

    def split(self, body: bytes, kind: str, max_records: int) -> list[tuple[str, bytes]]:
        """The (position, bytes) of each record of a JSON batch (`kind` "batch") or of a JSON
        feed format, each for `check_raw`: a caller on an event loop checks them a slice at a
        time. Raises `Rejected` for the upload as a whole, as `check_many` does."""
        split: Callable[[bytes], Iterable[tuple[str, bytes]]] = split_batch
        if kind != "batch":
            fmt = FORMATS.get(kind)
            if fmt is None or fmt.split is None:
                raise Rejected("$", [refusals.FMT_UNSUPPORTED.problem(kind=kind)])
            split = fmt.split
        try:
            parts = list(split(body))
        except (JsonTooDeep, RecursionError):
            raise too_deep() from None
        except msgspec.ValidationError:  # (a subclass of DecodeError: test it first)
            raise Rejected(
                "$",
                [refusals.DEC_SHAPE.problem()],
            ) from None
        except msgspec.DecodeError as exc:
            raise Rejected("$", [refusals.DEC_JSON.problem(detail=exc)]) from None
        except Exception as exc:
            raise Rejected(
                "$",
                [refusals.DEC_FILE.problem(kind=kind, detail=exc)],
            ) from None
        self._check_size(len(parts), max_records)
        return parts

    @staticmethod
    def _check_size(count: int, max_records: int) -> None:
        if count > max_records:
            raise Rejected(
                "$",
                [refusals.BATCH_TOO_LARGE.problem(count=count, limit=max_records)],
            )
        if count == 0:
            raise Rejected("$", [refusals.BATCH_EMPTY.problem()])


def _bounded(records: Iterable[Any], limit: int) -> Iterator[Any]:
    """Stop reading a file one record past the limit (the size check then refuses it)."""
    for count, record in enumerate(records, start=1):
        yield record
        if count > limit:
            return
