"""The one error shape used by the validator, the HTTP API, the rejected topic and the CLI."""

from __future__ import annotations

from typing import Final, Literal

import msgspec

__all__ = [
    "COMPLETENESS",
    "DIMENSIONS",
    "REASONABLENESS",
    "REJECT",
    "STANDARDISATION",
    "TIMELINESS",
    "WARN",
    "ContractError",
    "Dimension",
    "Severity",
    "ValidationError",
]

Dimension = Literal["及时性", "完整性", "规范性", "合理性"]
Severity = Literal["reject", "warn"]

TIMELINESS: Final = "及时性"
COMPLETENESS: Final = "完整性"
STANDARDISATION: Final = "规范性"
REASONABLENESS: Final = "合理性"
DIMENSIONS: Final[tuple[Dimension, ...]] = (
    TIMELINESS,
    COMPLETENESS,
    STANDARDISATION,
    REASONABLENESS,
)
REJECT: Final = "reject"
WARN: Final = "warn"


class ContractError(Exception):
    """Base of the errors the contract raises on purpose (a code table, a rule config, …).

    Findings about a record are not exceptions: they are `ValidationError`s, returned.
    """


class ValidationError(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One finding about one field of one record.

    `field` is a path relative to the envelope: envelope fields bare (`fixmedins_code`),
    settlement fields under their node (`setlinfo.certno`), list entries with a 0-based index
    (`diseinfo[2].diag_code`). Messages name the field and the rule, never personal values.
    """

    rule: str
    field: str
    dimension: Dimension
    severity: Severity
    message: str
    message_en: str


class Problem(msgspec.Struct, kw_only=True):
    """The error shape on the wire for what is not a finding about a record's data: a
    request refused (authentication, limits, format) or a stage's reason a case is unscored.
    Same fields as `ValidationError`; `dimension` is empty when no quality dimension applies."""

    rule: str
    field: str
    dimension: str
    severity: str
    message: str
    message_en: str
