"""National code tables (ICD-10 医保版 2.0 diagnoses, ICD-9-CM-3 医保版 2.0 operations).

Each table is versioned and effective-dated; a record is checked against the version in force
on its discharge date. Lookups are one dict access after picking the version (bisect on a
handful of dates). The full 2.0 tables are bundled (data/codes, gzip-compressed CSV), with
the legacy -> 2.0 maps that let the validator name the code to use instead of a legacy one.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import io
import re
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date
from functools import cache
from importlib import resources
from typing import Any, Final, Generic, Literal, TypeVar

import msgspec

from contracts._errors import ContractError

__all__ = [
    "OPRN_CLASSES",
    "OPRN_CLASS_CN",
    "CodeImportError",
    "CodeTable",
    "CodeTables",
    "DiagnosisCode",
    "OperationCode",
    "OprnClass",
    "import_nhsa_rows",
    "is_diagnosis_format",
    "is_operation_format",
    "maps_from_manifest",
    "normalise_code",
    "tables_from_manifest",
]

OprnClass = Literal["surgery", "intervention", "therapeutic", "diagnostic"]
OPRN_CLASSES: Final[tuple[OprnClass, ...]] = (
    "surgery",
    "intervention",
    "therapeutic",
    "diagnostic",
)
#: NHSA's 类别 column -> `oprn_class`
OPRN_CLASS_CN: Final[Mapping[str, OprnClass]] = {
    "手术": "surgery",
    "介入治疗": "intervention",
    "治疗性操作": "therapeutic",
    "诊断性操作": "diagnostic",
}

# A01 / A01.0 / A01.000 / K35.800x002 / N40.x00, optional dagger/asterisk mark; morphology M8140/3
# ASCII digits only (`\d` takes any script's), and the whole text (`$` takes a final newline)
_DIAG_RE = re.compile(r"(?a:(?:[A-Z]\d{2}(?:\.[0-9x]{1,3}(?:x\d{3})?)?[*†]?|M\d{4,5}/\d))\Z")
# 47.0100 / 47.0901 / 74.1x00 / 54.5100x009; the 2.0 table also has five digits after the
# point or a letter fourth (17.91100, 17.912A0) and a few four-digit extensions
_OPRN_RE = re.compile(r"(?a:\d{2}\.(?:[0-9x]{1,4}|\d{3}[0-9A-Z]\d)(?:x\d{3,4})?)\Z")


def normalise_code(code: str) -> str:
    """Trim, upper-case the leading letter and lower-case the `x` of extensions."""
    code = code.strip()
    if not code:
        return code
    return code[0].upper() + code[1:].replace("X", "x")


def is_diagnosis_format(code: str) -> bool:
    """Format of one diagnosis code (a dagger/asterisk pair is checked part by part)."""
    return all(_DIAG_RE.match(part) is not None for part in code.split("+"))


def is_operation_format(code: str) -> bool:
    return _OPRN_RE.match(code) is not None


class DiagnosisCode(msgspec.Struct, frozen=True, gc=False):
    """One ICD-10 医保版 code; `category` is its 3-character category (`K35`)."""

    code: str
    name: str
    category: str


class OperationCode(msgspec.Struct, frozen=True, gc=False):
    """One ICD-9-CM-3 医保版 code with NHSA's class (手术/介入治疗/治疗性操作/诊断性操作).

    `oprn_class` is None where the source does not publish it (the bundled 2.0 table has no
    类别 column): a record states its own operation type (`oprn_oprt_type`), and a user that
    needs the class must say what it assumes without one.
    """

    code: str
    name: str
    oprn_class: OprnClass | None = None


E = TypeVar("E", DiagnosisCode, OperationCode)
Kind = Literal["diagnosis", "operation"]


class CodeTable(Generic[E]):
    """One version of one table."""

    __slots__ = ("effective", "entries", "kind", "source", "version")

    def __init__(
        self,
        kind: Kind,
        version: str,
        effective: date,
        entries: Iterable[E],
        source: str = "",
    ) -> None:
        self.kind = kind
        self.version = version
        self.effective = effective
        self.source = source
        self.entries: dict[str, E] = {e.code: e for e in entries}

    def get(self, code: str) -> E | None:
        """O(1) lookup; `code` may be in any case / with surrounding blanks."""
        hit = self.entries.get(code)
        if hit is None:
            hit = self.entries.get(normalise_code(code))
        return hit

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and self.get(code) is not None

    def __repr__(self) -> str:
        return f"<CodeTable {self.kind} {self.version} from {self.effective} ({len(self)} codes)>"


class _Versions(Generic[E]):
    __slots__ = ("_starts", "_tables")

    def __init__(self, tables: Iterable[CodeTable[E]]) -> None:
        self._tables: list[CodeTable[E]] = sorted(tables, key=lambda t: t.effective)
        self._starts: list[date] = [t.effective for t in self._tables]

    def on(self, day: date | None) -> CodeTable[E] | None:
        if not self._tables:
            return None
        if day is None:
            return self._tables[-1]
        i = bisect.bisect_right(self._starts, day)
        return self._tables[i - 1] if i else None

    def all(self) -> tuple[CodeTable[E], ...]:
        return tuple(self._tables)


class CodeTables:
    """All versions of both tables, and the legacy -> 2.0 maps; picks the version in force
    on a date."""

    __slots__ = ("_diag", "_diag_map", "_oprn", "_oprn_map")

    def __init__(
        self,
        diagnosis: Iterable[CodeTable[DiagnosisCode]] = (),
        operation: Iterable[CodeTable[OperationCode]] = (),
        *,
        diagnosis_map: Mapping[str, str] | None = None,
        operation_map: Mapping[str, str] | None = None,
    ) -> None:
        self._diag = _Versions(diagnosis)
        self._oprn = _Versions(operation)
        self._diag_map: Mapping[str, str] = diagnosis_map or {}
        self._oprn_map: Mapping[str, str] = operation_map or {}

    @classmethod
    def load_bundled(cls) -> CodeTables:
        """The full 医保版 2.0 tables and maps shipped in contracts/data/codes."""
        return _bundled()

    def with_tables(
        self,
        diagnosis: Iterable[CodeTable[DiagnosisCode]] = (),
        operation: Iterable[CodeTable[OperationCode]] = (),
    ) -> CodeTables:
        """A copy with more versions (e.g. imported NHSA tables) added; same maps."""
        return CodeTables(
            [*self._diag.all(), *diagnosis],
            [*self._oprn.all(), *operation],
            diagnosis_map=self._diag_map,
            operation_map=self._oprn_map,
        )

    def diagnosis(self, code: str, on: date | None = None) -> DiagnosisCode | None:
        """The diagnosis code in force on `on` (default: the latest version)."""
        table = self._diag.on(on)
        return None if table is None else table.get(code)

    def operation(self, code: str, on: date | None = None) -> OperationCode | None:
        """The operation code in force on `on` (default: the latest version)."""
        table = self._oprn.on(on)
        return None if table is None else table.get(code)

    def legacy_diagnosis(self, code: str, on: date | None = None) -> DiagnosisCode | None:
        """The code to use instead of a legacy one: `code` is not in the table in force on
        `on` but the legacy map takes it to a code that is. None otherwise."""
        return _legacy(self._diag.on(on), self._diag_map, code)

    def legacy_operation(self, code: str, on: date | None = None) -> OperationCode | None:
        """As `legacy_diagnosis`, for operation codes."""
        return _legacy(self._oprn.on(on), self._oprn_map, code)

    def diagnosis_table(self, on: date | None = None) -> CodeTable[DiagnosisCode] | None:
        return self._diag.on(on)

    def operation_table(self, on: date | None = None) -> CodeTable[OperationCode] | None:
        return self._oprn.on(on)

    def is_latest(self, day: date | None) -> bool:
        """Whether the latest version of both tables is the one in force on `day`."""
        return self._diag.on(day) is self._diag.on(None) and self._oprn.on(day) is self._oprn.on(
            None
        )

    def versions(self) -> list[tuple[str, str, date, int]]:
        """(kind, version, effective, size) of every loaded table version."""
        out: list[tuple[str, str, date, int]] = []
        out.extend((t.kind, t.version, t.effective, len(t)) for t in self._diag.all())
        out.extend((t.kind, t.version, t.effective, len(t)) for t in self._oprn.all())
        return out

    def map_sizes(self) -> tuple[int, int]:
        """Rows of the diagnosis and operation legacy maps."""
        return len(self._diag_map), len(self._oprn_map)


def _legacy(table: CodeTable[E] | None, mapping: Mapping[str, str], code: str) -> E | None:
    if table is None or not mapping or table.get(code) is not None:
        return None
    target = mapping.get(code)
    if target is None:
        target = mapping.get(normalise_code(code))
    return None if target is None else table.get(target)


def _rows(text: str) -> Iterator[list[str]]:
    """The data rows of a normalised CSV (header skipped)."""
    rows = csv.reader(io.StringIO(text))
    next(rows, None)
    return rows


def diagnosis_table_from_csv(
    text: str, *, version: str, effective: date, source: str = ""
) -> CodeTable[DiagnosisCode]:
    """A table from the normalised CSV layout (`code,name`)."""
    categories: dict[str, str] = {}  # one string per category, not one slice per code
    entries = (
        DiagnosisCode(code, name, categories.setdefault(code[:3], code[:3]))
        for code, name, *_ in _rows(text)
    )
    return CodeTable("diagnosis", version, effective, entries, source)


def operation_table_from_csv(
    text: str,
    *,
    version: str,
    effective: date,
    source: str = "",
    classes: Mapping[str, OprnClass] | None = None,
) -> CodeTable[OperationCode]:
    """A table from the normalised CSV layout (`code,name[,class]`, NHSA's Chinese class or
    empty); `classes` gives the class of codes whose row has none."""
    extra = classes or {}
    entries = (
        OperationCode(
            row[0], row[1], _oprn_class(row[2]) if len(row) > 2 and row[2] else extra.get(row[0])
        )
        for row in _rows(text)
    )
    return CodeTable("operation", version, effective, entries, source)


def _oprn_class(text: str) -> OprnClass:
    text = text.strip()
    if text in OPRN_CLASS_CN:
        return OPRN_CLASS_CN[text]
    for known in OPRN_CLASSES:
        if text == known:
            return known
    raise CodeImportError(f"unknown operation class {text!r}")


def _text(data: bytes | str, name: str) -> str:
    """A listed file's text; `*.gz` files are gzip-compressed UTF-8."""
    if isinstance(data, str):
        return data
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    return data.decode("utf-8")


def tables_from_manifest(
    manifest_text: str, read: Callable[[str], bytes | str]
) -> tuple[list[CodeTable[DiagnosisCode]], list[CodeTable[OperationCode]]]:
    """Tables listed by a manifest.toml; `read(name)` returns a listed file's bytes (text
    accepted too; `*.gz` names are decompressed)."""
    manifest: dict[str, Any] = tomllib.loads(manifest_text)
    diag: list[CodeTable[DiagnosisCode]] = []
    oprn: list[CodeTable[OperationCode]] = []
    for entry in manifest.get("table", []):
        kw: dict[str, Any] = {
            "version": str(entry["version"]),
            "effective": date.fromisoformat(str(entry["effective"])),
            "source": str(entry.get("source", "")),
        }
        name = str(entry["file"])
        text = _text(read(name), name)
        if entry["kind"] == "diagnosis":
            diag.append(diagnosis_table_from_csv(text, **kw))
        elif entry["kind"] == "operation":
            if "classes" in entry:
                name = str(entry["classes"])
                rows = _rows(_text(read(name), name))
                kw["classes"] = {code: _oprn_class(cls) for code, cls, *_ in rows}
            oprn.append(operation_table_from_csv(text, **kw))
        else:
            raise CodeImportError(f"unknown table kind {entry['kind']!r}")
    return diag, oprn


def maps_from_manifest(
    manifest_text: str, read: Callable[[str], bytes | str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The legacy -> 2.0 maps ([[map]], CSV `source_code,yb2_code`) of a manifest.toml."""
    manifest: dict[str, Any] = tomllib.loads(manifest_text)
    maps: dict[str, dict[str, str]] = {"diagnosis": {}, "operation": {}}
    for entry in manifest.get("map", []):
        if entry["kind"] not in maps:
            raise CodeImportError(f"unknown map kind {entry['kind']!r}")
        name = str(entry["file"])
        target = maps[entry["kind"]]
        for source, code, *_ in _rows(_text(read(name), name)):
            if source != code:
                target[source] = code
    return maps["diagnosis"], maps["operation"]


@cache
def _bundled() -> CodeTables:
    base = resources.files("contracts").joinpath("data/codes")

    def read(name: str) -> bytes:
        return base.joinpath(name).read_bytes()

    manifest = base.joinpath("manifest.toml").read_text(encoding="utf-8")
    diag, oprn = tables_from_manifest(manifest, read)
    diag_map, oprn_map = maps_from_manifest(manifest, read)
    return CodeTables(diag, oprn, diagnosis_map=diag_map, operation_map=oprn_map)


# --- import of the NHSA spreadsheet / CSV layouts -----------------------------------------


class CodeImportError(ContractError, ValueError):
    """The rows do not look like an NHSA code table."""


_CODE_HEADERS: Final = {
    "diagnosis": ("诊断代码", "疾病代码", "医保版代码", "代码", "code"),
    "operation": ("手术操作代码", "手术代码", "医保版代码", "代码", "code"),
}
_NAME_HEADERS: Final = {
    "diagnosis": ("诊断名称", "疾病名称", "医保版名称", "名称", "name"),
    "operation": ("手术操作名称", "手术名称", "医保版名称", "名称", "name"),
}
_CLASS_HEADERS: Final = ("手术操作类别", "操作类别", "类别", "class", "oprn_class")


def _find(header: Sequence[str], names: Sequence[str]) -> int | None:
    cells = [h.strip().lower() for h in header]
    for name in names:
        if name.lower() in cells:
            return cells.index(name.lower())
    return None


def import_nhsa_rows(
    kind: Kind, rows: Iterable[Sequence[Any]]
) -> Iterator[DiagnosisCode | OperationCode]:
    """Entries from the rows of an NHSA sheet (title rows allowed before the header row).

    NHSA publishes each table as a sheet with a hierarchy of columns (章, 节, 类目, 亚目 …)
    ending in the code and its name (诊断代码/诊断名称; 手术操作代码/手术操作名称 and, in
    some releases, a 类别 column for operations). Only the code, the name and the class are
    kept; rows whose code cell is empty (section headings) are skipped, a malformed code or
    an unknown class is an error. Without a 类别 column (or with an empty cell) the class is
    None: not published.
    """
    it = iter(rows)
    code_i = name_i = class_i = None
    for scanned, row in enumerate(it):
        header = ["" if c is None else str(c) for c in row]
        code_i = _find(header, _CODE_HEADERS[kind])
        name_i = _find(header, _NAME_HEADERS[kind])
        class_i = _find(header, _CLASS_HEADERS) if kind == "operation" else None
        if code_i is not None and name_i is not None:
            break
        if scanned >= 20:
            break
    if code_i is None or name_i is None:
        raise CodeImportError(f"no header row with a {kind} code and name column found")
    check = is_diagnosis_format if kind == "diagnosis" else is_operation_format
    for line, row in enumerate(it, start=2):
        cells = ["" if c is None else str(c).strip() for c in row]
        if len(cells) <= max(code_i, name_i) or not cells[code_i]:
            continue
        code = normalise_code(cells[code_i])
        if not check(code):
            raise CodeImportError(f"data row {line}: malformed {kind} code")
        if kind == "diagnosis":
            yield DiagnosisCode(code, cells[name_i], code[:3])
        else:
            text = cells[class_i] if class_i is not None and class_i < len(cells) else ""
            yield OperationCode(code, cells[name_i], _oprn_class(text) if text else None)
