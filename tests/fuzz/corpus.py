"""Hostile input, built small and deterministic: the values the fuzzers put into settlement
lists, the uploads they make of them (JSON, NDJSON, CSV, XLSX), and the bomb corpus that
tests/gateway/test_api_fuzz.py replays on every upload endpoint in every run.

Nothing here is random: the fuzzers (schemathesis hooks, Hypothesis) choose among these
pieces, and the corpus is a fixed list, so a failure names an input that can be rebuilt.
The XLSX bombs proper (zip and sheet limits) and JSON nested 100,000 deep come from
`tests.adapters.bombs`; this module adds what is hostile inside a list: huge and impossible
numbers, NUL and other control characters, bidi and zero-width text, lone surrogates,
invalid UTF-8, byte order marks, duplicate keys, truncation, and wrong types.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from contracts.samples import make_settlement

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

#: text that has broken parsers, logs, terminals or databases somewhere
HOSTILE_TEXTS: tuple[str, ...] = (
    "",
    " ",
    "\x00",
    "SETL\x00001",
    "\x00" * 64,
    "\x1b[31mred\x1b[0m",
    "\r\n",
    "\t",
    "\x7f",
    "\u202e",  # right-to-left override
    "SETL\u202e1000",
    "\u2066H44010000077\u2069",  # isolates
    "\u061c\u200e\u200f",  # Arabic letter mark, LRM, RLM
    "\u200b",  # zero-width space
    "\u200d\ufe0f",
    "\ufeff",  # byte order mark as text
    "\u2028\u2029",  # line and paragraph separators
    "\ud800",  # lone surrogates: JSON can carry them as escapes, UTF-8 cannot
    "\udfff",
    "\U0010ffff",
    "𠀀𠀁𪚥",  # outside the BMP
    "１２３４",  # full-width digits
    "٣٤٥",  # Arabic-Indic digits
    "²",
    "Ⅻ",
    "1e400",
    "-1e400",
    "1e-400",
    "NaN",
    "Infinity",
    "-0",
    "0x1F",
    "1_000",
    "9" * 400,
    "x" * 40_000,
    "张" * 5_000,
    "' OR '1'='1' --",
    "%00",
    "%s%s%s%n",
    "../../../../etc/passwd",
    "${jndi:ldap://x/a}",
    "<script>alert(1)</script>",
    "null",
    "true",
    "{}",
    "[]",
    "2026-02-30",
    "2026-11-24 25:61:61",
    "0000-00-00 00:00:00",
    "9999-12-31 23:59:59",
    "2026-11-24T09:30:00+14:00",
    "H44010000077\x00",
    "440100\u202e",
)

#: numbers as Python values (the JSON encoder writes them)
HOSTILE_NUMBERS: tuple[Any, ...] = (
    0,
    -1,
    2**31,
    2**63 - 1,
    2**63,
    2**64,
    -(2**63) - 1,
    10**30,
    -(10**30),
    1e308,
    -1e308,
    5e-324,
    0.1 + 0.2,
    float("inf"),
    float("-inf"),
    float("nan"),
    True,
    False,
)

#: number-like JSON that no Python value is written as: spliced in raw (see `encode`)
RAW_JSON: tuple[bytes, ...] = (
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"-0",
    b"1E+999999999",
    b"123456789012345678901234567890123456789",
    b"1" + b"0" * 5_000,  # past int()'s 4,300 digits
    b"0." + b"0" * 5_000 + b"1",
    b"[" * 2_000 + b"]" * 2_000,  # past the parser's recursion limit
    b'{"a":' * 2_000 + b"1" + b"}" * 2_000,
    b'"\\ud800"',
    b'"\\u0000"',
    b'"\\u202e"',
)

#: a structure where a scalar belongs (and the other way round)
HOSTILE_SHAPES: tuple[Any, ...] = (
    None,
    [],
    {},
    [None],
    [[[[[]]]]],
    {"": None},
    {"setl_id": "SETL1"},
    [1, "2", None, {}],
    {"\x00": "\u202e"},
)

_RAW = "@@RAW{}@@"


def raw_marker(index: int) -> str:
    """A string that `encode` replaces with `RAW_JSON[index]`."""
    return _RAW.format(index)


def encode(value: Any) -> bytes:
    """JSON bytes of `value` (NaN/Infinity and lone surrogates as Python's json writes them),
    with every `raw_marker` replaced by its raw JSON."""
    text = json.dumps(value, ensure_ascii=True, allow_nan=True).encode()
    for index, raw in enumerate(RAW_JSON):
        text = text.replace(json.dumps(raw_marker(index)).encode(), raw)
    return text


def settlement(
    seed: int, hospital: str, city: str, *, infno: str = "4101A", serial: int | None = None
) -> dict[str, Any]:
    """A settlement list that passes every default rule (contracts.samples), `seed` choosing
    its case and `serial` its setl_id, uploaded by `hospital` in `city`."""
    return make_settlement(
        random.Random(seed),
        infno=infno,
        fixmedins_code=hospital,
        mdtrtarea_admvs=city,
        serial=seed if serial is None else serial,
    )


def leaf_paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value in a document, containers included (not the root)."""
    if isinstance(node, dict):
        items: Iterator[tuple[Any, Any]] = iter(node.items())
    elif isinstance(node, list):
        items = iter(enumerate(node))
    else:
        return
    for key, child in items:
        yield (*prefix, key)
        yield from leaf_paths(child, (*prefix, key))


@dataclass(frozen=True)
class Mutation:
    """Set, delete or rename the value at `path` (a path of `leaf_paths`)."""

    path: tuple[Any, ...]
    action: str  # "set" | "delete" | "rename" | "add"
    value: Any = None


def mutate(document: Any, mutations: list[Mutation], *, in_place: bool = False) -> Any:
    """`document` (a deep copy, unless `in_place`) with `mutations` applied; a path that no
    longer exists (an earlier mutation removed it) is skipped."""
    out = document if in_place else copy.deepcopy(document)
    for m in mutations:
        parent: Any = out
        for key in m.path[:-1]:
            try:
                parent = parent[key]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        last = m.path[-1]
        if isinstance(parent, dict) and last in parent:
            if m.action == "delete":
                del parent[last]
            elif m.action == "rename":
                parent[str(m.value)] = parent.pop(last)
            elif m.action == "add":
                parent[str(m.value)] = parent[last]
            else:
                parent[last] = m.value
        elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            if m.action == "delete":
                del parent[last]
            elif m.action == "add":
                parent.append(m.value)
            else:
                parent[last] = m.value
    return out


# -- byte-level damage ---------------------------------------------------------------------

BYTE_DAMAGE = (
    "truncate",
    "nul",
    "bom",
    "bad utf-8",
    "utf-16",
    "duplicate key",
    "trailing garbage",
    "crlf",
    "flip",
)


def damage(body: bytes, kind: str, at: int) -> bytes:
    """`body` damaged in one way, at byte `at` (taken modulo the length)."""
    at = at % (len(body) + 1)
    if kind == "truncate":
        return body[:at]
    if kind == "nul":
        return body[:at] + b"\x00" + body[at:]
    if kind == "bom":
        return b"\xef\xbb\xbf" + body
    if kind == "bad utf-8":
        return body[:at] + b"\xc3\x28\xff\xfe\xed\xa0\x80" + body[at:]
    if kind == "utf-16":
        return body.decode("utf-8", "replace").encode("utf-16")
    if kind == "duplicate key":
        return body.replace(b'"setl_id":', b'"setl_id":"DUP","setl_id":', 1)
    if kind == "trailing garbage":
        return body + b"\x00}{]["
    if kind == "crlf":
        return body.replace(b"\n", b"\r\n").replace(b",", b",\r", 1)
    if kind == "flip" and body:
        i = at % len(body)
        return body[:i] + bytes([body[i] ^ 0x80]) + body[i + 1 :]
    return body


# -- flat files ----------------------------------------------------------------------------


def csv_bytes(header: list[str], rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode("utf-8", "surrogatepass")


def _cell_ref(row: int, column: int) -> str:
    letters = ""
    column += 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return f"{letters}{row}"


_XLSX_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>"
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>"
    ),
}


def xlsx_bytes(
    header: list[str], rows: list[list[str]], *, raw_sheet: bytes | None = None
) -> bytes:
    """A minimal workbook (inline strings, no styles: what openpyxl reads), written in well
    under a millisecond where openpyxl takes 40; `raw_sheet` replaces the sheet's XML."""
    if raw_sheet is None:
        lines = ['<?xml version="1.0" encoding="UTF-8"?>']
        lines.append(
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            "<sheetData>"
        )
        for r, cells in enumerate([header, *rows], start=1):
            lines.append(f'<row r="{r}">')
            for c, text in enumerate(cells):
                lines.append(
                    f'<c r="{_cell_ref(r, c)}" t="inlineStr"><is><t>{escape(text)}</t></is></c>'
                )
            lines.append("</row>")
        lines.append("</sheetData></worksheet>")
        raw_sheet = "".join(lines).encode("utf-8", "surrogatepass")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in _XLSX_PARTS.items():
            z.writestr(name, text)
        z.writestr("xl/worksheets/sheet1.xml", raw_sheet)
    return out.getvalue()


def flat(documents: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Documents as a header of document paths and one row of text each."""
    from adapters import document_to_row

    rows = [document_to_row(d) for d in documents]
    header = sorted(set().union(*rows)) if rows else []
    return header, [[row.get(h, "") for h in header] for row in rows]


# -- the bomb corpus -----------------------------------------------------------------------


@dataclass(frozen=True)
class Bomb:
    """One hostile upload: where it goes, as what, and what the gateway may answer."""

    name: str
    path: str
    content_type: str
    body: bytes
    statuses: frozenset[int]


_LIST = frozenset({202, 422})  # one list: accepted (the hostile part is ignorable) or refused
_MANY = frozenset({200, 413, 422})  # a result per record, or the upload refused as a whole
_NATIONAL = frozenset({200, 422})  # infcode -1 inside a 200, or the request refused
_OWNER = frozenset({403})  # the list names another hospital or region than the signer's


def bombs(hospital: str, city: str) -> list[Bomb]:
    """The corpus for `hospital` of `city`: every entry is small enough to build each run."""
    from tests.adapters import bombs as xlsx_bombs

    base = settlement(1, hospital, city)
    out: list[Bomb] = []

    def lists(name: str, doc: Any, raw: bytes | None = None, *, owner: bool = False) -> None:
        """The list alone, in the national call, in a batch and in an NDJSON file; `owner`:
        the hostile part names the hospital or its city, so 403 is a right answer too."""
        body = raw if raw is not None else encode(doc)
        extra = _OWNER if owner else frozenset()
        out.append(
            Bomb(f"{name} (single)", "/v1/settlements", "application/json", body, _LIST | extra)
        )
        out.append(
            Bomb(
                f"{name} (national)",
                "/fsi/api/4101"
                if isinstance(doc, dict) and doc.get("infno") == "4101"
                else "/fsi/api/4101A",
                "application/json",
                body,
                _NATIONAL | extra,
            )
        )
        batch = b'{"records":[' + body + b"," + encode(base) + b"]}"
        out.append(
            Bomb(
                f"{name} (batch)", "/v1/settlements/batch", "application/json", batch, _MANY | extra
            )
        )
        ndjson = encode(base) + b"\n" + body.replace(b"\n", b" ") + b"\n"
        out.append(
            Bomb(
                f"{name} (ndjson)",
                "/v1/settlements/file",
                "application/x-ndjson",
                ndjson,
                _MANY | extra,
            )
        )

    serial = iter(range(900_000, 1_000_000))

    def fresh() -> dict[str, Any]:
        return settlement(2, hospital, city, serial=next(serial))

    # huge and impossible numbers, in a field that is a number and in one that is text
    for i, _raw in enumerate(RAW_JSON[:8]):
        doc = fresh()
        doc["input"]["setlinfo"]["medfee_sumamt"] = raw_marker(i)
        doc["input"]["setlinfo"]["age"] = raw_marker(i)
        lists(f"raw number {i}", doc)
    # the legacy 4101 flavour sums its fee and fund lines
    doc = settlement(3, hospital, city, infno="4101", serial=next(serial))
    doc["input"]["iteminfo"][0]["amt"] = raw_marker(4)
    lists("4101 item amount 1E+999999999", doc)
    doc = settlement(3, hospital, city, infno="4101", serial=next(serial))
    doc["input"]["payinfo"][0]["fund_payamt"] = raw_marker(4)
    lists("4101 fund amount 1E+999999999", doc)
    for i, number in enumerate(HOSTILE_NUMBERS):
        doc = fresh()
        doc["input"]["setlinfo"]["medfee_sumamt"] = number
        doc["input"]["setlinfo"]["psn_name"] = number
        lists(f"number {i}", doc)
    # deep nesting inside a list, and as the whole body
    doc = fresh()
    doc["input"]["setlinfo"]["extra"] = raw_marker(8)
    lists("deep array in a field", doc)
    doc = fresh()
    doc["input"]["diseinfo"] = raw_marker(9)
    lists("deep object as diseinfo", doc)
    lists("deep array as the body", None, xlsx_bombs.deep_array(100_000))
    lists("deep object as the body", None, xlsx_bombs.deep_object(100_000))
    # NUL, bidi, zero-width, separators, surrogates in identifiers, names and codes
    for i, text in enumerate(HOSTILE_TEXTS):
        if len(text) > 1_000:
            continue
        doc = fresh()
        setlinfo = doc["input"]["setlinfo"]
        setlinfo["setl_id"] = setlinfo["setl_id"] + text
        setlinfo["psn_name"] = text
        setlinfo["mdtrt_id"] = text
        doc["input"]["diseinfo"][0]["diag_code"] = text
        lists(f"text {i} {text[:12]!r}", doc)
    # the envelope's own fields hostile
    for field in ("fixmedins_code", "mdtrtarea_admvs", "infno", "insuplc_admdvs"):
        for text in ("\x00", "\u202e440100", "４４０１００", "\ud800", ""):
            doc = fresh()
            doc[field] = text
            lists(f"{field}={text!r}", doc, owner=True)
    # shapes: a structure where a scalar belongs, nodes of the wrong type
    for i, shape in enumerate(HOSTILE_SHAPES):
        doc = fresh()
        doc["input"]["setlinfo"]["setl_id"] = shape
        doc["input"]["oprninfo"] = shape
        lists(f"shape {i}", doc)
    # byte-level damage of a good list
    good = encode(fresh())
    for kind in BYTE_DAMAGE:
        lists(f"damage {kind}", None, damage(good, kind, len(good) // 2))
    # a huge string (well under the body limit) and a huge number of keys
    doc = fresh()
    doc["input"]["setlinfo"]["psn_name"] = "张" * 500_000
    lists("three megabytes of one name", doc)
    doc = fresh()
    doc["input"]["setlinfo"].update({f"k{i}": i for i in range(100_000)})
    lists("a hundred thousand keys", doc)

    # files: CSV and XLSX of hostile cells, and the XLSX bombs
    header, rows = flat([fresh(), fresh()])
    for i, text in enumerate(HOSTILE_TEXTS):
        cells = [list(r) for r in rows]
        cells[0] = [text] * len(header)
        out.append(
            Bomb(
                f"csv cells {i}",
                "/v1/settlements/file",
                "text/csv",
                csv_bytes(header, cells),
                _MANY | _OWNER,  # the first row's hospital code is hostile too
            )
        )
        out.append(
            Bomb(
                f"xlsx cells {i}",
                "/v1/settlements/file",
                XLSX,
                xlsx_bytes(header, cells),
                _MANY | _OWNER,
            )
        )
    out.append(
        Bomb(
            "csv hostile header",
            "/v1/settlements/file",
            "text/csv",
            csv_bytes(list(HOSTILE_TEXTS[:30]), rows),
            _MANY,
        )
    )
    out.append(Bomb("csv NUL bytes", "/v1/settlements/file", "text/csv", b"\x00" * 4096, _MANY))
    out.append(
        Bomb(
            "csv one huge field",
            "/v1/settlements/file",
            "text/csv",
            b'"' + b"x" * 4_000_000 + b'"\n',
            _MANY,
        )
    )
    out.append(
        Bomb("csv unclosed quote", "/v1/settlements/file", "text/csv", b'setl_id\n"abc\n', _MANY)
    )
    out.append(
        Bomb(
            "csv utf-16",
            "/v1/settlements/file",
            "text/csv",
            damage(csv_bytes(header, rows), "utf-16", 0),
            _MANY,
        )
    )
    out.append(
        Bomb("xlsx not a zip", "/v1/settlements/file", XLSX, b"PK\x03\x04" + b"\x00" * 100, _MANY)
    )
    out.append(
        Bomb("xlsx truncated", "/v1/settlements/file", XLSX, xlsx_bytes(header, rows)[:300], _MANY)
    )
    out.append(
        Bomb(
            "xlsx sheet with NUL",
            "/v1/settlements/file",
            XLSX,
            xlsx_bytes(header, rows, raw_sheet=b"<worksheet>\x00</worksheet>"),
            _MANY,
        )
    )
    out.append(
        Bomb(
            "xlsx sheet not XML",
            "/v1/settlements/file",
            XLSX,
            xlsx_bytes(header, rows, raw_sheet=b"\xff\xfe not xml"),
            _MANY,
        )
    )
    out.append(
        Bomb(
            "xlsx entity expansion",
            "/v1/settlements/file",
            XLSX,
            xlsx_bombs.doctype(),
            _MANY,
        )
    )
    for name, (build, _limit) in xlsx_bombs.XLSX_BOMBS.items():
        out.append(Bomb(f"xlsx bomb {name}", "/v1/settlements/file", XLSX, build(), _MANY))
    return out
