"""structlog set-up: JSON lines off a terminal, readable on one; personal data masked.

Processors are pure functions over the event dict; the only I/O is the renderer's write at
the end of the chain. Request and case context ride in contextvars
(`structlog.contextvars.bind_contextvars`), so every line inside a request carries them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from contracts import mask_personal

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
