"""GB 11643 citizen identity numbers."""

from __future__ import annotations

from datetime import date

__all__ = [
    "certno_birth_date",
    "certno_check_char",
    "certno_matches",
    "is_valid_certno",
    "valid_certno_birth",
]

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
# per position: digit character -> digit * weight (a dict lookup beats int() * w)
_TERMS = tuple({str(d): d * w for d in range(10)} for w in _WEIGHTS)


def certno_check_char(first17: str) -> str:
    """The check character of the first 17 digits."""
    if len(first17) != 17:
        raise ValueError("need the first 17 digits")
    total = sum(map(dict.__getitem__, _TERMS, first17))
    return _CHECK[total % 11]


def _check_char(body: str) -> str:
    """`certno_check_char` of 17 ASCII digits, in one C call.

    The weights are 2**(17 - i) mod 11; 13 = 2 (mod 11), so the digits read in base 13
    give the weighted sum divided by 2 (mod 11). Only for ASCII digits: `int(_, 13)` would
    also take a, b, c, `_` and spaces.
    """
    return _CHECK[2 * int(body, 13) % 11]


def certno_birth_date(certno: str) -> date | None:
    """The birth date inside an 18-character number, or None if it is not a date."""
    try:
        return date(int(certno[6:10]), int(certno[10:12]), int(certno[12:14]))
    except ValueError:
        return None


def is_valid_certno(certno: str) -> bool:
    """18 characters, 17 digits, a real birth date and the right check character."""
    return valid_certno_birth(certno) is not None


def valid_certno_birth(certno: str) -> date | None:
    """The birth date of a valid number (one pass for the validator), None if invalid."""
    if len(certno) != 18:
        return None
    body = certno[:17]
    if not (body.isdigit() and body.isascii()):
        return None
    birth = certno_birth_date(certno)
    if birth is None:
        return None
    check = _check_char(body)
    last = certno[17]
    if last != check and last.upper() != check:
        return None
    return birth


#: "YYYYMMDD" -> that date (None: not a date); calendar facts only, at most ~50,000 in use
_DATES: dict[str, date | None] = {}


def certno_matches(certno: str, birth: date) -> bool:
    """`valid_certno_birth(certno) == birth`, with the encoded date looked up (the hot path)."""
    if len(certno) != 18:
        return False
    body = certno[:17]
    if not (body.isdigit() and body.isascii()):
        return False
    digits = certno[6:14]
    try:
        encoded = _DATES[digits]
    except KeyError:
        encoded = certno_birth_date(certno)
        if len(_DATES) < 100_000:
            _DATES[digits] = encoded
    if encoded != birth:
        return False
    check = _CHECK[2 * int(body, 13) % 11]  # = _check_char(body), inlined
    last = certno[17]
    return last == check or last.upper() == check
