"""Rule metadata (data/rules.toml) and per-city overrides (RuleConfig)."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any, Literal

import msgspec

from contracts._errors import Dimension, Severity, ValidationError
from contracts._fields import spec_of

__all__ = ["ConfiguredRules", "Override", "RuleConfig", "RuleMeta", "rulebook"]

Override = Literal["off", "reject", "warn"]
_INDEX = re.compile(r"\[\d*\]")


class RuleMeta(msgspec.Struct, frozen=True, kw_only=True):
    """One rule as declared in data/rules.toml."""

    id: str
    dimension: Dimension
    severity: Severity
    field: str
    message: str
    message_en: str
    params: dict[str, Any] = msgspec.field(default_factory=dict)


class _Book(msgspec.Struct, frozen=True):
    rule: dict[str, dict[str, Any]]
    field_default: dict[str, Override] = msgspec.field(default_factory=dict)


@cache
def _load() -> tuple[dict[str, RuleMeta], dict[str, Override]]:
    text = resources.files("contracts").joinpath("data/rules.toml").read_text(encoding="utf-8")
    book = msgspec.convert(tomllib.loads(text), _Book)
    rules = {rid: msgspec.convert({"id": rid, **body}, RuleMeta) for rid, body in book.rule.items()}
    return rules, dict(book.field_default)


def rulebook() -> dict[str, RuleMeta]:
    """All rules by ID (a copy: callers may not change the book)."""
    return dict(_load()[0])


class RuleConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A city's overrides of the rule book.

    `rules` maps a rule ID (`LAG_UPLOAD`) or a rule on one field (`REQ_FIELD@setlinfo.prfs`,
    list paths without index: `DICT_VALUE@diseinfo.adm_cond_type`) to "off", "warn" or
    "reject". `params` overrides a rule's parameters (`{"LAG_UPLOAD": {"days": 10}}`).
    `upload_lag_days` is the timeliness threshold, kept as a named knob because every city
    sets it.
    """

    rules: dict[str, Override] = msgspec.field(default_factory=dict)
    params: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    upload_lag_days: int | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> RuleConfig:
        """From a parsed TOML table such as `[rules]` of the gateway settings.

        Unknown rule IDs are an error: a misspelt override must not silently do nothing.
        """
        cfg = msgspec.convert(dict(data), cls)
        known = _load()[0]
        for key in cfg.rules:
            rid = key.split("@", 1)[0]
            if rid not in known:
                raise ValueError(f"unknown rule {rid!r} in rule configuration")
        for rid in cfg.params:
            if rid not in known:
                raise ValueError(f"unknown rule {rid!r} in rule parameters")
        return cfg

    @classmethod
    def from_toml(cls, text: str) -> RuleConfig:
        """From TOML text; the overrides may sit at top level or under a `[rules]` table."""
        data = tomllib.loads(text)
        return cls.from_mapping(data)


class ConfiguredRules:
    """The rule book with one RuleConfig applied: decides and formats each emitted error."""

    __slots__ = ("_cache", "_errors", "_overrides", "_params", "rules")

    def __init__(self, config: RuleConfig | None = None) -> None:
        config = config or RuleConfig()
        rules, defaults = _load()
        self.rules = rules
        overrides: dict[str, Override] = {**defaults, **config.rules}
        self._overrides = overrides
        params = {rid: dict(meta.params) for rid, meta in rules.items()}
        for rid, extra in config.params.items():
            params.setdefault(rid, {}).update(extra)
        if config.upload_lag_days is not None:
            params["LAG_UPLOAD"]["days"] = config.upload_lag_days
        self._params = params
        self._cache: dict[tuple[str, str], Severity | None] = {}
        #: formatted errors by (rule, path): a record with findings formats each once
        self._errors: dict[tuple[str, str], ValidationError] = {}

    def param(self, rule: str, name: str) -> Any:
        return self._params[rule][name]

    def severity(self, rule: str, path: str = "") -> Severity | None:
        """Severity of `rule` reported on `path` (indexes ignored); None when switched off."""
        key = (rule, path)
        hit = self._cache.get(key, "?")
        if hit != "?":
            return hit  # type: ignore[return-value]
        template = _INDEX.sub("", path)
        choice = self._overrides.get(f"{rule}@{template}") or self._overrides.get(rule)
        result: Severity | None
        if choice == "off":
            result = None
        elif choice in ("reject", "warn"):
            result = choice
        else:
            result = self.rules[rule].severity
        self._cache[key] = result
        return result

    def enabled(self, rule: str, path: str = "") -> bool:
        return self.severity(rule, path) is not None

    def error(self, rule: str, path: str, **extra: Any) -> ValidationError | None:
        """The error for `rule` on `path`, or None when the rule is off there.

        Errors are frozen and depend only on (rule, path) without `extra`: those are kept
        (a bounded number: paths carry list indexes) and handed out again.
        """
        if not extra:
            hit = self._errors.get((rule, path))
            if hit is not None:
                return hit
        severity = self.severity(rule, path)
        if severity is None:
            return None
        meta = self.rules[rule]
        spec = spec_of(_INDEX.sub("", path))
        fmt: dict[str, Any] = {
            "field": path,
            "label": spec.name_cn if spec else path,
            "length": spec.length if spec else "",
            "scale": (spec.scale or 0) if spec else "",
            "dict": spec.dict if spec else "",
            **self._params.get(rule, {}),
            **extra,
        }
        err = ValidationError(
            rule=rule,
            field=path,
            dimension=meta.dimension,
            severity=severity,
            message=meta.message.format(**fmt),
            message_en=meta.message_en.format(**fmt),
        )
        if not extra and len(self._errors) < 10_000:
            self._errors[(rule, path)] = err
        return err
