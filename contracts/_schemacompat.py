"""Whether a topic's new JSON Schema breaks the consumers of its published version.

A version of a topic's schema is a promise to two readers: a consumer that validates (or
decodes) new messages with the published schema, and a consumer that replays messages
written under it with the new one. So the new schema must accept exactly the messages the
published one accepts, with one exception: a new optional field (objects are open, so the
published schema accepts it already). Everything else that changes what validates is
breaking: a field removed, a field newly required or no longer required, a type narrowed or
widened (null added included), an enum value removed or added, a constraint changed.
Titles, descriptions and defaults are annotations and may change.

Schemas are compared as msgspec writes them (JSON Schema 2020-12, `$ref` into `$defs`,
optional types as `anyOf`); a schema made by hand in that subset compares too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

BreakKind = Literal[
    "removed",
    "required_added",
    "required_dropped",
    "type_narrowed",
    "type_widened",
    "enum_removed",
    "enum_added",
    "constraint_changed",
]

_CONSTRAINTS = (
    "const",
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)
"""Validation keywords compared for equality (the structural ones are compared by parts)."""


@dataclass(frozen=True, order=True)
class Break:
    """One change that breaks a consumer: where (a JSON path), what kind, in words."""

    path: str
    kind: BreakKind
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind}: {self.detail}"


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Break]:
    """Every breaking change from the published schema `old` to `new`; empty = compatible."""
    return sorted(_Comparison(old, new).run())


Schema = Mapping[str, Any]


class _Comparison:
    def __init__(self, old: Schema, new: Schema) -> None:
        self._roots = (old, new)
        self._seen: set[tuple[int, int]] = set()  # recursive types: each pair once
        self._kept: list[tuple[Schema, Schema]] = []  # so that no id in _seen is reused
        self._found: list[Break] = []

    def run(self) -> list[Break]:
        self._compare(self._roots[0], self._roots[1], "$")
        return self._found

    def _add(self, path: str, kind: BreakKind, detail: str) -> None:
        self._found.append(Break(path, kind, detail))

    def _compare(self, old: Schema, new: Schema, path: str) -> None:
        olds = _alternatives(self._roots[0], old)
        news = _alternatives(self._roots[1], new)
        for key in sorted(olds.keys() - news.keys()):
            self._add(path, "type_narrowed", f"{_kind_name(key)} no longer allowed")
        for key in sorted(news.keys() - olds.keys()):
            self._add(path, "type_widened", f"{_kind_name(key)} now allowed")
        for key in sorted(olds.keys() & news.keys()):
            self._compare_one(olds[key], news[key], path)

    def _compare_one(self, old: Schema, new: Schema, path: str) -> None:
        pair = (id(old), id(new))
        if pair in self._seen:
            return
        self._seen.add(pair)
        self._kept.append((old, new))
        old_enum, new_enum = old.get("enum"), new.get("enum")
        if old_enum is not None and new_enum is not None:
            for value in old_enum:
                if value not in new_enum:
                    self._add(path, "enum_removed", f"{value!r} no longer allowed")
            for value in new_enum:
                if value not in old_enum:
                    self._add(path, "enum_added", f"{value!r} now allowed")
        for word in _CONSTRAINTS:
            if old.get(word) != new.get(word):
                detail = f"{word} {old.get(word)!r} -> {new.get(word)!r}"
                self._add(path, "constraint_changed", detail)
        self._compare_object(old, new, path)
        self._compare_array(old, new, path)

    def _compare_object(self, old: Schema, new: Schema, path: str) -> None:
        old_props: Mapping[str, Any] = old.get("properties", {})
        new_props: Mapping[str, Any] = new.get("properties", {})
        old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
        for name, schema in old_props.items():
            where = f"{path}.{name}"
            if name not in new_props:
                self._add(where, "removed", "field removed")
                continue
            if name in old_required and name not in new_required:
                self._add(where, "required_dropped", "no longer always present")
            elif name in new_required and name not in old_required:
                self._add(where, "required_added", "now required")
            self._compare(schema, new_props[name], where)
        for name in new_props:
            if name not in old_props and name in new_required:
                self._add(f"{path}.{name}", "required_added", "new required field")
        self._compare_sub(old, new, "additionalProperties", f"{path}{{}}")

    def _compare_array(self, old: Schema, new: Schema, path: str) -> None:
        old_prefix: list[Any] = old.get("prefixItems", [])
        new_prefix: list[Any] = new.get("prefixItems", [])
        if len(old_prefix) != len(new_prefix):
            detail = f"prefixItems {len(old_prefix)} -> {len(new_prefix)} positions"
            self._add(path, "constraint_changed", detail)
        for i, (a, b) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self._compare(a, b, f"{path}[{i}]")
        self._compare_sub(old, new, "items", f"{path}[]")

    def _compare_sub(self, old: Schema, new: Schema, word: str, path: str) -> None:
        """A keyword holding a subschema or a boolean (`items`, `additionalProperties`)."""
        a, b = old.get(word, True), new.get(word, True)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            self._compare(a, b, path)
        elif a != b:
            self._add(path, "constraint_changed", f"{word} {a!r} -> {b!r}")


def _resolve(root: Schema, schema: Schema) -> Schema:
    """Follow `$ref` (a JSON pointer in the same document) until a schema without one."""
    hops = 0
    while "$ref" in schema:
        ref = str(schema["$ref"])
        if not ref.startswith("#"):
            raise ValueError(f"only local references are compared, not {ref!r}")
        node: Any = root
        for part in filter(None, ref[1:].split("/")):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema, hops = node, hops + 1
        if hops > 64:
            raise ValueError(f"reference loop at {ref!r}")
    return schema


def _alternatives(root: Schema, schema: Schema) -> dict[str, Schema]:
    """A schema as its alternatives (`anyOf`/`oneOf` flattened, a list of types split), each
    keyed by the kind of JSON value it admits; repeated kinds are numbered in order."""
    out: dict[str, Schema] = {}

    def add(node: Schema) -> None:
        node = _resolve(root, node)
        union = node.get("anyOf", node.get("oneOf"))
        if union is not None:
            for alt in union:
                add(alt)
            return
        kinds = node.get("type")
        if isinstance(kinds, list):
            for kind in kinds:
                add({**node, "type": kind})
            return
        key = "enum" if "enum" in node else "const" if "const" in node else kinds or "any"
        numbered, n = str(key), 1
        while numbered in out:
            n += 1
            numbered = f"{key}#{n}"
        out[numbered] = node

    add(schema)
    return out


def _kind_name(key: str) -> str:
    return {"enum": "an enumerated value", "const": "a constant", "any": "any value"}.get(
        key, key.split("#")[0]
    )
