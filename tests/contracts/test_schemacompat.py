"""The compatibility checker (`contracts.schemas.breaking_changes`) catches each kind of change
that breaks a topic's consumers, and lets the compatible ones (a new optional field, prose)
through. The schemas compared are msgspec's, from Structs, as the topics' are."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

from contracts.schemas import Break, breaking_changes, topic_schema


class Inner(msgspec.Struct, kw_only=True):
    code: str
    weight: int = 0


class V1(msgspec.Struct, kw_only=True):
    """The published version."""

    key: str
    revision: int
    status: Literal["scored", "unscored"]
    note: str | None = None
    inner: Inner
    items: list[int] = msgspec.field(default_factory=list)
    pair: tuple[str, str] = ("", "")
    fees: dict[str, Decimal] = msgspec.field(default_factory=dict)
    code: Annotated[str, msgspec.Meta(max_length=20)] = ""


def schema(**changes: Any) -> dict[str, Any]:
    """V1's schema with fields replaced (a type), added (a new name) or removed (None)."""
    fields: list[Any] = []
    for f in msgspec.structs.fields(V1):
        if f.name in changes:
            replacement = changes[f.name]
            if replacement is not None:
                fields.append((f.name, *replacement))
        elif f.required:
            fields.append((f.name, f.type))
        else:
            default = f.default if f.default is not msgspec.NODEFAULT else f.default_factory()
            fields.append((f.name, f.type, default))
    known = {f.name for f in msgspec.structs.fields(V1)}
    fields += [(name, *spec) for name, spec in changes.items() if name not in known and spec]
    kind = msgspec.defstruct("V1", fields, kw_only=True)
    kind.__doc__ = V1.__doc__
    return msgspec.json.schema(kind)


PUBLISHED = msgspec.json.schema(V1)


def kinds(breaks: list[Break]) -> list[tuple[str, str]]:
    return [(b.path, b.kind) for b in breaks]


def test_the_same_schema_is_compatible() -> None:
    assert schema() == PUBLISHED  # the builder itself changes nothing
    assert breaking_changes(PUBLISHED, schema()) == []


def test_a_new_optional_field_is_compatible() -> None:
    assert breaking_changes(PUBLISHED, schema(group_name=(str | None, None))) == []
    assert breaking_changes(PUBLISHED, schema(tags=(list[str], []))) == []


def test_prose_and_defaults_are_compatible() -> None:
    edited = schema(note=(str | None, "n/a"))  # another default
    edited["$defs"]["V1"]["description"] = "Reworded."
    edited["$defs"]["Inner"]["title"] = "Renamed"
    assert breaking_changes(PUBLISHED, edited) == []


def test_a_removed_field_breaks() -> None:
    assert kinds(breaking_changes(PUBLISHED, schema(note=None))) == [("$.note", "removed")]


def test_a_new_required_field_breaks() -> None:
    breaks = breaking_changes(PUBLISHED, schema(group_name=(str,)))
    assert kinds(breaks) == [("$.group_name", "required_added")]
    assert "new required field" in str(breaks[0])


def test_a_field_becoming_required_or_optional_breaks() -> None:
    assert kinds(breaking_changes(PUBLISHED, schema(note=(str | None,)))) == [
        ("$.note", "required_added")
    ]
    assert kinds(breaking_changes(PUBLISHED, schema(revision=(int, 0)))) == [
        ("$.revision", "required_dropped")
    ]


def test_a_changed_type_breaks() -> None:
    breaks = breaking_changes(PUBLISHED, schema(revision=(str,)))
    assert kinds(breaks) == [("$.revision", "type_narrowed"), ("$.revision", "type_widened")]
    assert "integer no longer allowed" in str(breaks[0])


def test_a_narrowed_type_breaks() -> None:
    breaks = breaking_changes(PUBLISHED, schema(note=(str, "")))
    assert kinds(breaks) == [("$.note", "type_narrowed")]
    assert "null no longer allowed" in breaks[0].detail


def test_a_widened_type_breaks() -> None:
    """A consumer validating with the published schema would refuse the new null."""
    breaks = breaking_changes(PUBLISHED, schema(key=(str | None,)))
    assert kinds(breaks) == [("$.key", "type_widened")]


def test_a_removed_or_added_enum_value_breaks() -> None:
    removed = breaking_changes(PUBLISHED, schema(status=(Literal["scored"],)))
    assert kinds(removed) == [("$.status", "enum_removed")]
    assert "'unscored'" in removed[0].detail
    added = breaking_changes(PUBLISHED, schema(status=(Literal["scored", "unscored", "x"],)))
    assert kinds(added) == [("$.status", "enum_added")]


def test_changes_inside_nested_objects_lists_tuples_and_maps_break() -> None:
    class Inner2(msgspec.Struct, kw_only=True):
        code: int
        weight: int = 0

    assert kinds(breaking_changes(PUBLISHED, schema(inner=(Inner2,)))) == [
        ("$.inner.code", "type_narrowed"),
        ("$.inner.code", "type_widened"),
    ]
    assert ("$.items[]", "type_narrowed") in kinds(
        breaking_changes(PUBLISHED, schema(items=(list[str], [])))
    )
    assert kinds(
        breaking_changes(PUBLISHED, schema(pair=(tuple[str, str, str], ("", "", ""))))
    ) == [
        ("$.pair", "constraint_changed"),  # prefixItems 2 -> 3
        ("$.pair", "constraint_changed"),  # minItems
        ("$.pair", "constraint_changed"),  # maxItems
    ]
    assert ("$.fees{}", "type_narrowed") in kinds(
        breaking_changes(PUBLISHED, schema(fees=(dict[str, float], {})))
    )


def test_a_changed_constraint_breaks() -> None:
    looser = schema(code=(Annotated[str, msgspec.Meta(max_length=40)], ""))
    breaks = breaking_changes(PUBLISHED, looser)
    assert kinds(breaks) == [("$.code", "constraint_changed")]
    assert "maxLength 20 -> 40" in breaks[0].detail


class Node(msgspec.Struct, kw_only=True):
    name: str
    children: list[Node] = msgspec.field(default_factory=list)


class Node2(msgspec.Struct, kw_only=True):
    children: list[Node2] = msgspec.field(default_factory=list)


def test_recursive_types_are_compared_once() -> None:
    old, new = msgspec.json.schema(Node), msgspec.json.schema(Node2)
    assert breaking_changes(old, old) == []
    assert kinds(breaking_changes(old, new)) == [("$.name", "removed")]


def test_the_city_payload_is_not_compatible_with_the_internal_one() -> None:
    """A real case: the cities' scored payload lacks the internal copy's case facts."""
    breaks = breaking_changes(topic_schema("scored_all"), topic_schema("scored"))
    assert ("$.facts", "removed") in kinds(breaks)
