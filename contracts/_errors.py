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
    "Problem",
    "Reason",
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


class ValidationError(msgspec.Struct, frozen=True, kw_only=True, gc=False, omit_defaults=True):
    """One finding about one field of one record.

    `field` is a path relative to the envelope: envelope fields bare (`fixmedins_code`),
    settlement fields under their node (`setlinfo.certno`), list entries with a 0-based index
    (`diseinfo[2].diag_code`). Messages name the field and the rule, never personal values.
    `caused_by` names the field whose value most likely makes this finding follow (a wrong
    discharge time puts correct operation times outside the stay): fix that one first. Empty
    (and left out on the wire) for a finding of its own; a string, never null, because
    warnings travel as `dict[str, str]` on the accepted topic.
    """

    rule: str
    field: str
    dimension: Dimension
    severity: Severity
    message: str
    message_en: str
    caused_by: str = ""


class Problem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The error shape on the wire for what is not a finding about a record's data: a
    request refused (authentication, limits, format) or a stage's reason a case is unscored.
    Same fields as `ValidationError`; `dimension` is empty when no quality dimension applies,
    `caused_by` is empty (left out) but for a finding that follows from another field."""

    rule: str
    field: str
    dimension: str
    severity: str
    message: str
    message_en: str
    caused_by: str = ""


class Reason(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of an error catalogue: an ID that never changes, and its message templates.

    The DIP stages' reasons (`workers.dip`) and the gateway's refusals (`gateway.refusals`)
    are catalogues of these; `problem` fills in the templates (``str.format``) and gives the
    one error shape on the wire. Values passed in must never be personal data."""

    rule: str
    field: str
    """The field at fault unless the occasion says otherwise (`problem(field=…)`)."""
    message: str
    message_en: str
    dimension: str = ""  # "" where no quality dimension applies (a request, a stage)
    severity: str = "warn"

    def problem(self, field: str | None = None, **values: object) -> Problem:
        return Problem(
            rule=self.rule,
            field=self.field if field is None else field,
            dimension=self.dimension,
            severity=self.severity,
            message=self.message.format(**values),
            message_en=self.message_en.format(**values),
        )
