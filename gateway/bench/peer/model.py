"""The peer's pydantic v2 models of a national 4101A settlement list.

What a competent team writes first: a model per node, generated from the contract's own field
table (`contracts.fields_of`) so that both sides know the same fields — types (dates and
times parsed, decimals with their digits and scale, integers in range), required fields
non-empty, lengths, every 1901 dictionary a 4101A field names as an enum, code formats as
regular expressions (regions, the institution, ICD-10 and ICD-9-CM-3 codes) and the obvious
cross-field checks (admission before discharge, one main diagnosis, an 18-character resident
ID). No code tables, no rulebook: that is where dipgw does far more.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from contracts import Dictionaries, FieldSpec, fields_of

__all__ = ["Envelope", "Setlinfo", "validate_json"]

_ADMDVS = r"^[0-9]{6}$"
_ICD10 = r"^[A-Z][0-9]{2}(\.[0-9A-Za-z]{1,8})?(\+[A-Z][0-9]{2}(\.[0-9A-Za-z]{1,8})?\*)?$"
# Code formats by field name: what the national code books look like, not whether a code is in
# them (that needs the code tables, which the obvious peer does not load).
PATTERNS = {
    "infno": r"^4101A$",
    "fixmedins_code": r"^[A-Z][0-9]{11}$",
    "mdtrtarea_admvs": _ADMDVS,
    "insuplc_admdvs": _ADMDVS,
    "insuplc": _ADMDVS,
    "diag_code": _ICD10,
    "wm_dise_code": _ICD10,
    "oprn_oprt_code": r"^[0-9]{2}(\.[0-9A-Za-z]{1,8})?$",
    "poscode": r"^[0-9]{6}$",
}
_DURATION = r"^[0-9]{1,4}/[0-9]{1,2}/[0-9]{1,2}$"  # days/hours/minutes

_CONFIG = ConfigDict(extra="ignore", frozen=True)


@cache
def _dictionaries() -> Dictionaries:
    return Dictionaries.load_bundled()


def _annotation(spec: FieldSpec) -> Any:
    """The pydantic type of one field, with its constraints."""
    required = spec.req_A == "Y"
    if spec.type == "date":
        return date
    if spec.type == "datetime":
        return datetime
    if spec.type == "decimal":
        scale = spec.scale or 0
        return Annotated[
            Decimal, Field(max_digits=spec.length, decimal_places=scale, ge=0, allow_inf_nan=False)
        ]
    if spec.type == "int":
        return Annotated[int, Field(ge=0, lt=10 ** (spec.length or 9))]
    if spec.type == "duration":
        return Annotated[str, Field(pattern=_DURATION, max_length=spec.length)]
    if spec.dict:
        values = tuple(sorted(_dictionaries().values(spec.dict)))
        return Literal[values]
    return Annotated[
        str,
        Field(
            min_length=1 if required else 0,
            max_length=spec.length,
            pattern=PATTERNS.get(spec.field),
        ),
    ]


def _fields(node: str) -> dict[str, Any]:
    """Every field of `node` in the table; those a 4101A list requires without a default."""
    out: dict[str, Any] = {}
    for spec in fields_of(node):
        kind = _annotation(spec)
        out[spec.field] = (kind, ...) if spec.req_A == "Y" else (kind | None, None)
    return out


def _model(name: str, node: str, base: type[BaseModel]) -> Any:
    return create_model(name, __base__=base, **_fields(node))


class _Node(BaseModel):
    model_config = _CONFIG


class _SetlinfoChecks(_Node):
    @model_validator(mode="after")
    def _in_order(self) -> Any:
        values = self.__dict__
        adm, dscg = values.get("adm_time"), values.get("dscg_time")
        if adm is not None and dscg is not None and adm > dscg:
            raise ValueError("adm_time is after dscg_time")
        begin, end = values.get("setl_begn_date"), values.get("setl_end_date")
        if begin is not None and end is not None and begin > end:
            raise ValueError("setl_begn_date is after setl_end_date")
        certno, kind = values.get("certno"), values.get("patn_cert_type")
        if kind == "01" and certno and len(certno) != 18:
            raise ValueError("a resident ID (patn_cert_type 01) has 18 characters")
        return self


Setlinfo: Any = _model("Setlinfo", "setlinfo", _SetlinfoChecks)
Diseinfo: Any = _model("Diseinfo", "diseinfo", _Node)
Oprninfo: Any = _model("Oprninfo", "oprninfo", _Node)
Icuinfo: Any = _model("Icuinfo", "icuinfo", _Node)
Bldinfo: Any = _model("Bldinfo", "bldinfo", _Node)
Opspdiseinfo: Any = _model("Opspdiseinfo", "opspdiseinfo", _Node)


class _InputChecks(_Node):
    @model_validator(mode="after")
    def _one_main_diagnosis(self) -> Any:
        main = sum(1 for d in self.__dict__["diseinfo"] if d.maindiag_flag == "1")
        if main != 1:
            raise ValueError(f"{main} main diagnoses (maindiag_flag 1); exactly one is required")
        return self


Input: Any = create_model(
    "Input",
    __base__=_InputChecks,
    setlinfo=(Setlinfo, ...),
    diseinfo=(Annotated[list[Diseinfo], Field(min_length=1, max_length=50)], ...),
    oprninfo=(Annotated[list[Oprninfo], Field(max_length=50)], []),
    icuinfo=(Annotated[list[Icuinfo], Field(max_length=50)], []),
    bldinfo=(Annotated[list[Bldinfo], Field(max_length=50)], []),
    opspdiseinfo=(Annotated[list[Opspdiseinfo], Field(max_length=50)], []),
)

Envelope: Any = create_model("Envelope", __base__=_Node, input=(Input, ...), **_fields("envelope"))


def validate_json(document: bytes) -> Any:
    """Decode + validate one list (raises pydantic.ValidationError)."""
    return Envelope.model_validate_json(document)
