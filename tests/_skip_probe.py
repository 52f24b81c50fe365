"""Run only by test_ci_guard.py: one test that skips, as a test that cannot run would."""

import pytest


def test_that_skips() -> None:
    pytest.skip("stands for a test whose dependency is missing")
