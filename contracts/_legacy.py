"""Legacy codes: a code that is not in the table in force but that the legacy -> 2.0 map
takes to a code that is, reported with the code to use (DIAG_LEGACY / OPRN_LEGACY).

A legacy code is an unknown code the province can say more about, so the refinement works
on the findings: each DIAG_UNKNOWN / OPRN_UNKNOWN is looked up in the maps and, for a
legacy code, replaced in place by the legacy rule (its own severity, `warn` by default)
naming the 2.0 code. Clean records never get here (no finding, no work); a legacy rule
switched off leaves the unknown-code finding as it was.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

from contracts._codes import CodeTables, DiagnosisCode, OperationCode
from contracts._errors import ValidationError
from contracts._model import Settlement
from contracts._rulebook import ConfiguredRules

__all__ = ["LEGACY_RULES", "refine_legacy"]

#: the unknown-code rule -> the legacy rule that replaces it for a legacy code
LEGACY_RULES: Final = {"DIAG_UNKNOWN": "DIAG_LEGACY", "OPRN_UNKNOWN": "OPRN_LEGACY"}
_PATH = re.compile(r"(?a:(\w+)(?:\[(\d+)\])?\.(\w+))\Z")


def _value(s: Settlement, path: str) -> str | None:
    """The text at a finding's path (`diseinfo[2].diag_code`, `setlinfo.wm_dise_code`)."""
    m = _PATH.match(path)
    if m is None:
        return None
    node, index, field = m.groups()
    obj: object = getattr(s, node, None)
    if index is not None:
        entries = obj if isinstance(obj, list) else []
        i = int(index)
        obj = entries[i] if i < len(entries) else None
    value = getattr(obj, field, None) if obj is not None else None
    return value if isinstance(value, str) else None


def refine_legacy(
    errors: list[ValidationError], s: Settlement, codes: CodeTables, policy: ConfiguredRules
) -> None:
    """Replace, in place, the unknown-code findings whose code is legacy (see module)."""
    day: date | None = None
    dscg = s.setlinfo.dscg_time
    if dscg is not None:
        day = dscg.date()
    for i, err in enumerate(errors):
        legacy_rule = LEGACY_RULES.get(err.rule)
        if legacy_rule is None:
            continue
        code = _value(s, err.field)
        if not code:
            continue
        target: DiagnosisCode | OperationCode | None
        if legacy_rule == "DIAG_LEGACY":
            target = codes.legacy_diagnosis(code, day)
        else:
            target = codes.legacy_operation(code, day)
        if target is None:
            continue
        found = policy.error(legacy_rule, err.field, code=target.code)
        if found is not None:
            errors[i] = found
