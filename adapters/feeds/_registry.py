"""The one registry of source kinds: a new kind of feed is added here and nowhere else."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import msgspec

from adapters.feeds._source import FeedConfig, FeedSource, SourceKind
from adapters.runtime.errors import DipgwError

__all__ = ["SOURCE_KINDS", "SourceKindRegistry", "UnknownSourceKind"]


class UnknownSourceKind(DipgwError, LookupError):
    pass


class SourceKindRegistry:
    def __init__(self) -> None:
        self._kinds: dict[str, SourceKind] = {}

    def register(self, kind: SourceKind) -> SourceKind:
        if kind.name in self._kinds:
            raise ValueError(f"source kind {kind.name!r} is already registered")
        self._kinds[kind.name] = kind
        return kind

    def __iter__(self) -> Iterator[SourceKind]:
        return iter(self._kinds.values())

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def get(self, name: str) -> SourceKind:
        try:
            return self._kinds[name]
        except KeyError:
            known = ", ".join(sorted(self._kinds))
            raise UnknownSourceKind(f"unknown feed kind {name!r} (known: {known})") from None

    def check(self, config: FeedConfig) -> list[str]:
        """Every problem of a feed's configuration, each naming its field (empty: fine)."""
        problems: list[str] = []
        if not config.name or not config.name.replace("-", "").replace("_", "").isalnum():
            problems.append("name: letters, digits, '-' and '_' only")
        if not config.hospitals:
            problems.append("hospitals: at least one institution code")
        if config.poll_interval_s <= 0:
            problems.append("poll_interval_s: must be > 0")
        if not 1 <= config.batch_size <= 5000:
            problems.append("batch_size: 1 to 5000")
        try:
            kind = self.get(config.kind)
        except UnknownSourceKind as exc:
            return [*problems, f"kind: {exc}"]
        try:
            msgspec.convert(config.options, kind.options)
        except msgspec.ValidationError as exc:
            problems.append(f"options: {exc}")
        return problems

    def build(self, config: FeedConfig) -> FeedSource:
        return self.get(config.kind).build(config)

    def shown_options(self, config: FeedConfig) -> dict[str, object]:
        """The options with every secret masked, for listings and logs: the kind's secret
        options, and the password of any URL (a DSN written with one)."""
        secret = set(self.get(config.kind).secret_options) if config.kind in self._kinds else set()
        return {
            k: ("***" if k in secret and v else _without_password(v))
            for k, v in config.options.items()
        }


def _without_password(value: object) -> object:
    if not isinstance(value, str) or "://" not in value:
        return value
    parts = urlsplit(value)
    if parts.password is None:
        return value
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


SOURCE_KINDS = SourceKindRegistry()
