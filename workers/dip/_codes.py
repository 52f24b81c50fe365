"""Code normalisation shared by grouping and catalog building (both must agree exactly)."""

from __future__ import annotations


def norm_diag(code: str) -> str:
    """Upper-case, trimmed, without the asterisk half of a dagger/asterisk pair."""
    code = code.strip().upper()
    plus = code.find("+")
    if plus > 0:
        code = code[:plus]
    return code.rstrip("*†")


def norm_oprn(code: str) -> str:
    """Trimmed, lower-case ``x`` extension (``54.5100x009``), as 医保版 tables print it."""
    return code.strip().lower()


TREATMENT_RANK: dict[str, int] = {
    "conservative": 0,
    "diagnostic": 1,
    "therapeutic": 2,
    "surgery": 3,
}
RANK_TREATMENT: tuple[str, ...] = ("conservative", "diagnostic", "therapeutic", "surgery")
