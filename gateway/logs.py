"""structlog set-up: JSON lines off a terminal, readable on one; personal data masked.

Processors are pure functions over the event dict; the only I/O is the renderer's write at
the end of the chain. Request and case context ride in contextvars
(`structlog.contextvars.bind_contextvars`), so every line inside a request carries them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

# Keys whose values are personal data wherever they appear in a log event.
PERSONAL_KEYS = frozenset(
    {
        "psn_name",
        "certno",
        "coner_name",
        "coner_addr",
        "coner_tel",
        "curr_addr",
        "emp_tel",
        "emp_addr",
        "tel",
        "phone",
        "mob",
        "secret",
        "password",
        "authorization",
    }
)


def mask_value(key: str, value: Any) -> Any:
    """Mask one personal value: keep enough to recognise a record, never enough to identify."""
    if value is None or value == "":
        return value
    text = str(value)
    if key == "certno" and len(text) >= 8:
        return text[:6] + "*" * (len(text) - 10) + text[-4:] if len(text) > 10 else "*" * len(text)
    if key in ("psn_name", "coner_name"):
        return text[0] + "*" * max(1, len(text) - 1)
    if key in ("secret", "password", "authorization"):
        return "***"
    return "*" * min(len(text), 8)


def _mask(obj: Any, depth: int = 0) -> Any:
    if depth > 6:
        return obj
    if isinstance(obj, Mapping):
        return {
            k: (mask_value(k, v) if k in PERSONAL_KEYS else _mask(v, depth + 1))
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [_mask(v, depth + 1) for v in obj]
    return obj


def mask_mapping(obj: Any) -> Any:
    """A copy of a decoded document with every personal field masked."""
    return _mask(obj)


def mask_personal_data(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask personal fields at any depth of the event."""
    masked = _mask(event_dict)
    assert isinstance(masked, dict)
    return masked


def configure_logging(level: str = "info", fmt: str = "auto", stream: Any = None) -> None:
    stream = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            mask_personal_data,
            structlog.processors.format_exc_info if as_json else _identity,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Libraries log through the standard library; keep them quiet and on the same stream.
    logging.basicConfig(level=logging.WARNING, stream=stream, force=True)


def _identity(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    return event_dict


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
