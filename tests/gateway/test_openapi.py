"""/openapi.json (issue 14, point 2): a valid OpenAPI 3.1 document in which every route the
app serves is an operation with a unique operationId, tags and an example, every example
is valid against its own schema, and the schemas are the contract's (every national field
of the upload body, the scored cases' message type)."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import msgspec
import pytest
from aiohttp import web
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from adapters.runtime.settings import LimitSettings
from contracts import field_specs
from contracts.messages import ScoredCase
from gateway import openapi
from gateway.app import create_app
from gateway.checks import Checker

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@cache
def app() -> web.Application:
    """The app as `gateway.app.create_app` builds it (every module registers its paths)."""
    return create_app(
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        None,  # type: ignore[arg-type]
        Checker(),
        producer=None,
        rejected_topic="unused",
        max_body_bytes=1024,
        batch_max_records=1,
        limits=LimitSettings(),
        window_s=300,
        request_timeout_s=5,
    )


def spec() -> dict[str, Any]:
    app()
    document: dict[str, Any] = msgspec.json.decode(openapi.document_bytes())
    return document


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method, path, operation


def media_types(operation: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(where, media type, media type object): the request body's, then each answer's."""
    for media, obj in (operation.get("requestBody") or {}).get("content", {}).items():
        yield "request", media, obj
    for status, answer in operation.get("responses", {}).items():
        for media, obj in (answer.get("content") or {}).items():
            yield status, media, obj


def examples(obj: dict[str, Any]) -> list[Any]:
    found = [obj["example"]] if "example" in obj else []
    return found + [e["value"] for e in (obj.get("examples") or {}).values() if "value" in e]


def test_the_document_is_valid_openapi_3_1() -> None:
    document = spec()
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises, naming the offending part


def test_every_route_is_an_operation_with_an_id_tags_and_an_example() -> None:
    document = spec()
    missing: list[str] = []
    for route in app().router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD":  # HEAD: aiohttp's twin of each GET
            continue
        path = resource.canonical
        item = document["paths"].get(path, {})
        if route.method == "*":
            if not any(m in item for m in METHODS):
                missing.append(f"{path} (any method): no operation")
            continue
        method = route.method.lower()
        operation = item.get(method)
        if operation is None:
            missing.append(f"{route.method} {path}: no operation in /openapi.json")
            continue
        lacks = [
            what
            for what, present in (
                ("operationId", bool(operation.get("operationId"))),
                ("tags", bool(operation.get("tags"))),
                ("an example", any(examples(o) for _, _, o in media_types(operation))),
            )
            if not present
        ]
        if lacks:
            missing.append(f"{route.method} {path}: lacks {', '.join(lacks)}")
    assert not missing, "\n".join(missing)


def test_operation_ids_are_unique() -> None:
    ids = [op.get("operationId") for _, _, op in operations(spec())]
    assert len(ids) == len(set(ids)), {i for i in ids if ids.count(i) > 1}


def test_every_example_is_valid_against_its_own_schema() -> None:
    document = spec()
    checked, wrong = 0, []
    for method, path, operation in operations(document):
        for where, media, obj in media_types(operation):
            # the document's components at the root: "#/components/schemas/…" resolves there
            schema = {**obj.get("schema", {}), "components": document["components"]}
            validator = Draft202012Validator(
                schema, format_checker=Draft202012Validator.FORMAT_CHECKER
            )
            for example in examples(obj):
                checked += 1
                for error in validator.iter_errors(example):
                    at = "/".join(map(str, error.absolute_path))
                    wrong.append(f"{method} {path} {where} {media} at {at}: {error.message[:200]}")
    assert checked >= 20
    assert not wrong, "\n".join(wrong)


def test_a_schema_that_rejects_does_reject() -> None:
    """The example check above can fail: a wrong answer is refused by the same means."""
    document = spec()
    content = document["paths"]["/v1/receipts/{receipt_id}"]["get"]["responses"]["200"]
    schema = {
        **content["content"]["application/json"]["schema"],
        "components": document["components"],
    }
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    good = content["content"]["application/json"]["example"]
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "revision": "1"})
    assert not validator.is_valid({**good, "received_at": "24.11.2026"})


def test_the_upload_body_has_every_national_field() -> None:
    schemas = spec()["components"]["schemas"]
    absent = []
    for field in field_specs():
        name = "Envelope" if field.node == "envelope" else field.node.capitalize()
        prop = schemas[name]["properties"].get(field.field)
        if prop is None or field.name_cn not in prop.get("description", ""):
            absent.append(f"{field.node}.{field.field}")
    assert not absent, absent
    assert len(field_specs()) > 140
    setlinfo = schemas["Setlinfo"]["properties"]
    assert setlinfo["setl_id"]["maxLength"] == 30
    assert "dictionary" in setlinfo["gend"]["description"]
    for national in ("Input4101A", "Input4101", "Setlinfo4101A", "Setlinfo4101"):
        assert national in schemas
    upload = Draft202012Validator({"$ref": "#/components/schemas/Upload", "components": {
        "schemas": schemas}})  # fmt: skip
    assert upload.is_valid(openapi.example_upload())
    assert not upload.is_valid({"fixmedins_code": "H44010000001", "input": {"setlinfo": {}}})


def test_scored_items_are_the_scored_case_message() -> None:
    document = spec()
    schemas = document["components"]["schemas"]
    item = schemas["ScoredItem"]
    assert {f.encode_name for f in msgspec.structs.fields(ScoredCase)} <= set(item["properties"])
    assert {"pos", "stored_at"} <= set(item["required"])
    page = document["paths"]["/v1/scored"]["get"]["responses"]["200"]["content"]
    items = page["application/json"]["schema"]
    assert "ScoredItem" in msgspec.json.encode(items).decode() or items == {
        "$ref": "#/components/schemas/ScoredPage"
    }


@pytest.mark.parametrize("path", ["/v1/settlements", "/fsi/api/{infno}"])
def test_uploads_document_their_refusals(path: str) -> None:
    responses = spec()["paths"][path]["post"]["responses"]
    assert {"401", "403", "413", "415", "422", "429", "503"} <= set(responses)


def test_the_served_document_is_built_once_per_registration() -> None:
    """The route is public: it answers from a cache, rebuilt when a module registers paths."""
    app()
    served = openapi.document_bytes()
    assert openapi.document_bytes() is served
    openapi.register_paths({})
    rebuilt = openapi.document_bytes()
    assert rebuilt is not served and rebuilt == served
