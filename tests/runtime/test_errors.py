from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import KafkaTimeoutError

from adapters.runtime.errors import is_dependency_failure


@pytest.mark.parametrize(
    ("exc", "retryable"),
    [
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        (KafkaTimeoutError(), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("gone"), True),
        (asyncpg.exceptions.CannotConnectNowError("starting"), True),
        (asyncpg.exceptions.AdminShutdownError("terminated"), True),
        (asyncpg.exceptions.TooManyConnectionsError("full"), True),
        (asyncpg.exceptions.ObjectNotInPrerequisiteStateError("not accepting"), True),
        (asyncpg.exceptions.UntranslatableCharacterError("\\u0000"), False),
        (asyncpg.exceptions.UniqueViolationError("dup"), False),
        (asyncpg.exceptions.DataError("bad"), False),
        (ValueError("bug"), False),
        (AttributeError("bug"), False),
    ],
)
def test_only_unavailability_is_retryable(exc: BaseException, retryable: bool) -> None:
    assert is_dependency_failure(exc) is retryable
