from __future__ import annotations

import asyncpg
import pytest
from aiokafka.errors import KafkaTimeoutError

from adapters.runtime.errors import describe_error, is_dependency_failure


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


@pytest.mark.parametrize(
    ("exc", "described"),
    [
        (
            asyncpg.exceptions.UniqueViolationError("Key (certno)=(110105199001010023) exists"),
            "UniqueViolationError (SQLSTATE 23505)",
        ),
        (ValueError("张三 110105199001010023"), "ValueError"),
        (KeyError("110105199001010023"), "KeyError"),
        (
            ConnectionRefusedError(111, "Connection refused"),
            "ConnectionRefusedError: [Errno 111] Connection refused",
        ),
        (KafkaTimeoutError(), "KafkaTimeoutError: KafkaTimeoutError"),
        (None, ""),
    ],
)
def test_a_logged_error_names_what_failed_never_the_data(
    exc: BaseException | None, described: str
) -> None:
    assert describe_error(exc) == described
