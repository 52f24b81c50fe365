"""The base of the errors the DIP core raises on purpose (rules, history, case files).

`_scoring.ScoreError` does not derive from it yet: that module is being edited elsewhere;
tests/test_exceptions.py lists it as the one known exception.
"""

from __future__ import annotations

__all__ = ["DipError"]


class DipError(Exception):
    """Base of the DIP core's own errors (the libraries' own are not wrapped)."""
