"""The one registry of feed source kinds: checking a feed whole, and never showing a secret."""

from __future__ import annotations

import msgspec
import pytest

from adapters.feeds import FeedConfig, SourceKind, SourceKindRegistry, UnknownSourceKind


class _Options(msgspec.Struct, forbid_unknown_fields=True):
    dsn: str
    password: str = ""


def _registry() -> SourceKindRegistry:
    registry = SourceKindRegistry()
    registry.register(
        SourceKind(name="db", options=_Options, build=lambda c: None, secret_options=("password",))  # type: ignore[arg-type,return-value]
    )
    return registry


def test_every_problem_of_a_feed_is_named_at_once() -> None:
    problems = _registry().check(
        FeedConfig(
            name="bad name!",
            kind="db",
            hospitals=[],
            options={"dns": "x"},
            poll_interval_s=0,
            batch_size=0,
        )
    )
    assert [p.split(":")[0] for p in problems] == [
        "name",
        "hospitals",
        "poll_interval_s",
        "batch_size",
        "options",
    ]
    assert "dns" in problems[-1] or "dsn" in problems[-1]


def test_an_unknown_kind_names_the_known_ones() -> None:
    (problem,) = _registry().check(FeedConfig(name="a", kind="oracle", hospitals=["H1"]))
    assert problem == "kind: unknown feed kind 'oracle' (known: db)"
    with pytest.raises(UnknownSourceKind):
        _registry().get("oracle")


def test_a_kind_is_registered_once() -> None:
    registry = _registry()
    with pytest.raises(ValueError, match="already registered"):
        registry.register(SourceKind(name="db", options=_Options, build=lambda c: None))  # type: ignore[arg-type,return-value]


def test_secrets_and_url_passwords_are_never_shown() -> None:
    shown = _registry().shown_options(
        FeedConfig(
            name="a",
            kind="db",
            hospitals=["H1"],
            options={
                "dsn": "mysql://dip:S3cret!@his-db.example:3306/his",
                "password": "S3cret!",
                "table": "t",
            },
        )
    )
    assert shown == {
        "dsn": "mysql://dip:***@his-db.example:3306/his",
        "password": "***",
        "table": "t",
    }
    assert "S3cret" not in repr(shown)
