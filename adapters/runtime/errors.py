"""What counts as a dependency (Kafka, PostgreSQL) being away, for every process.

One answer everywhere: the gateway answers 503 and a worker retries its batch for these;
anything else is a bug or bad data, never retried for ever.
"""

from __future__ import annotations


class DipgwError(Exception):
    """Base of the errors dipgw raises on purpose (not the libraries' own)."""


# SQLSTATE classes that mean "the server is away or refusing", not "this data is wrong":
# 08 connection exception, 53 insufficient resources, 57 operator intervention (shutdown,
# terminated), 58 system error; 55000 is "database is not accepting connections".
_UNAVAILABLE_SQLSTATE = ("08", "53", "57", "58")


def is_dependency_failure(exc: BaseException) -> bool:
    """PostgreSQL or Kafka away (a connection-level error of their clients, or the network).

    Retryable, answered with 503. A data or integrity error of PostgreSQL is not one: that is
    a bug or bad data, must not be retried forever, and is reported as such.
    """
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True
    module = type(exc).__module__
    if module.startswith("aiokafka"):
        return True
    if module.startswith("asyncpg"):
        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate is None:  # client-side: connection lost, pool closing, …
            return True
        return str(sqlstate).startswith(_UNAVAILABLE_SQLSTATE) or sqlstate == "55000"
    return False


def describe_error(exc: BaseException | None) -> str:
    """What failed, for a log line: the class, a database error's SQLSTATE, and the text only
    of a network error. Other errors' text can quote the offending value (a constraint's
    detail, a bad row), and the value may be personal data (a name, an ID number)."""
    if exc is None:
        return ""
    described = type(exc).__name__
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate:
        return f"{described} (SQLSTATE {sqlstate})"
    if isinstance(exc, OSError | ConnectionError) or type(exc).__module__.startswith("aiokafka"):
        text = str(exc)[:200]
        return f"{described}: {text}" if text else described
    return described
