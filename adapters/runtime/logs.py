"""structlog set-up: JSON lines off a terminal, readable on one; personal data masked.

Processors are pure functions over the event dict; the only I/O is the renderer's write at
the end of the chain. Request and case context ride in contextvars
(`structlog.contextvars.bind_contextvars`), so every line inside a request carries them.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import structlog

from contracts import mask_personal, shown

# Credentials are the gateway's own secrets; personal data is defined by the contract.
_SECRET_KEYS = frozenset({"secret", "password", "authorization", "token"})


def _mask_secrets(obj: Any, depth: int = 0) -> Any:
    if depth > 6:
        return obj
    if isinstance(obj, dict):
        return {
            k: ("***" if k in _SECRET_KEYS and v else _mask_secrets(v, depth + 1))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [_mask_secrets(v, depth + 1) for v in obj]
    return obj


def mask_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: personal fields (as the contract names them) and secrets masked."""
    masked = _mask_secrets(mask_personal(dict(event_dict)))
    assert isinstance(masked, dict)
    return masked


def _timestamp(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: when, as every time dipgw shows people (+08:00, its offset
    written: one clock for the province's operators, `contracts.shown`)."""
    event_dict["timestamp"] = shown(datetime.now(UTC), "milliseconds")
    return event_dict


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    """Our lines and the libraries' (aiokafka, asyncio, aiohttp: stdlib `logging`) through one
    structlog chain onto one stream: JSON lines off a terminal, each with level, logger, event
    and timestamp, personal data and secrets masked, so a log shipper reads every line alike."""
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    # The traceback becomes text first, so that masking reaches it too.
    tail = [structlog.processors.format_exc_info, mask_personal_data, renderer]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            _timestamp,
            *tail,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the standard library: their records run the same chain (the
    # logger's name added), quiet below warnings. A client retrying an absent broker repeats
    # one line many times a second: let one through every few seconds per line, saying how
    # many were held back.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                _timestamp,
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    handler.addFilter(RepeatFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


class Throttle:
    """At most one event per key every `interval_s`; counts what it held back.

    For faults that repeat on every request or retry (a broker away): the first occurrence
    is logged at once, then one line per interval carries the count of those suppressed.
    """

    def __init__(
        self, interval_s: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._last: dict[Any, float] = {}
        self._held: dict[Any, int] = {}

    def admit(self, key: Any) -> int | None:
        """None to hold this one back; else how many were held back since the last one."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        if len(self._last) > 10_000:  # keys are few in practice; never grow without bound
            self._last.clear()
            self._held.clear()
        self._last[key] = now
        return self._held.pop(key, 0)


class RepeatFilter(logging.Filter):
    """A stdlib logging filter passing each (logger, message template) once per interval."""

    def __init__(self, interval_s: float = 10.0) -> None:
        super().__init__()
        self._throttle = Throttle(interval_s)

    def filter(self, record: logging.LogRecord) -> bool:
        held = self._throttle.admit((record.name, record.levelno, str(record.msg)))
        if held is None:
            return False
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last interval]"
        return True


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
