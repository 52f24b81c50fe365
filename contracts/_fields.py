"""The canonical field table (data/fields.csv): one row per national field.

It drives the field-level rules (required, length, dictionary, number format), the fast-path
decoder types, personal-data masking and the default flat-file column mapping, so that all of
them agree by construction.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources
from typing import Literal

import msgspec

__all__ = [
    "LIST_NODES",
    "NODES",
    "FieldSpec",
    "field_specs",
    "fields_by_node",
    "fields_of",
    "spec_of",
]

FieldType = Literal["str", "date", "datetime", "duration", "decimal", "int"]
NODES: tuple[str, ...] = (
    "envelope",
    "setlinfo",
    "diseinfo",
    "oprninfo",
    "icuinfo",
    "bldinfo",
    "opspdiseinfo",
    "payinfo",
    "iteminfo",
)
LIST_NODES: tuple[str, ...] = NODES[2:]


class FieldSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One field: national name, type, length, dictionary and when it is required.

    `req_A` / `req_L` say whether a 4101A / 4101 upload must fill it: Y required, C by a
    condition (own rule), N optional. `personal` names the masking style for personal data.
    """

    node: str
    field: str
    name_cn: str
    type: FieldType
    length: int | None
    scale: int | None
    dict: str | None
    in4101A: str
    in4101: str
    req_A: str
    req_L: str
    personal: str | None

    @property
    def path(self) -> str:
        """Path template without index: `setlinfo.certno`, `diseinfo.diag_code`, `infno`."""
        return self.field if self.node == "envelope" else f"{self.node}.{self.field}"


def _opt_int(text: str) -> int | None:
    return int(text) if text else None


@cache
def field_specs() -> tuple[FieldSpec, ...]:
    """All rows of data/fields.csv, in file order."""
    text = resources.files("contracts").joinpath("data/fields.csv").read_text(encoding="utf-8")
    out: list[FieldSpec] = []
    for row in csv.DictReader(io.StringIO(text)):
        out.append(
            FieldSpec(
                node=row["node"],
                field=row["field"],
                name_cn=row["name_cn"],
                type=msgspec.convert(row["type"], FieldType),
                length=_opt_int(row["length"]),
                scale=_opt_int(row["scale"]),
                dict=row["dict"] or None,
                in4101A=row["in4101A"],
                in4101=row["in4101"],
                req_A=row["req_A"],
                req_L=row["req_L"],
                personal=row["personal"] or None,
            )
        )
    return tuple(out)


@cache
def fields_of(node: str) -> tuple[FieldSpec, ...]:
    """The fields of one node, in table order."""
    return tuple(f for f in field_specs() if f.node == node)


@cache
def fields_by_node() -> dict[str, dict[str, FieldSpec]]:
    """Every node (`NODES`) and its fields by name: what the contract knows of a document's
    shape, for whoever must tell the contract's names from a sender's (redaction, error
    paths). Callers must not change it."""
    return {node: {f.field: f for f in fields_of(node)} for node in NODES}


@cache
def _index() -> dict[str, FieldSpec]:
    return {f.path: f for f in field_specs()}


def spec_of(path: str) -> FieldSpec | None:
    """The field behind an index-free path such as `diseinfo.diag_code`."""
    return _index().get(path)
