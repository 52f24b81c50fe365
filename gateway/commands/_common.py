"""What every command needs first: settings (with a clear message when bad) and logging."""

from __future__ import annotations

import argparse
import sys

from gateway.logs import configure_logging
from gateway.settings import Settings, SettingsError, load_settings


class UsageError(Exception):
    """Bad usage or unreadable input: the command exits 2 with this message."""


def settings_from(args: argparse.Namespace) -> Settings:
    try:
        settings = load_settings(getattr(args, "config", None))
    except SettingsError as exc:
        raise UsageError(str(exc)) from None
    configure_logging(settings.log.level, settings.log.format)
    return settings


def fail(message: str, code: int = 2) -> int:
    print(f"dipgw: {message}", file=sys.stderr)
    return code
