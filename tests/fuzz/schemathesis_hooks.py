"""Schemathesis hooks: every generated request carries real credentials, so it reaches the
body checks instead of stopping at 401/403, and half the upload bodies are hostile variants
of real settlement lists, so they reach the contract's rules instead of stopping at the shape.

Loaded by the schemathesis CLI from `SCHEMATHESIS_HOOKS` (see tests/gateway/test_api_fuzz.py);
the credentials come from the environment:

    DIPGW_FUZZ_HOSPITAL, DIPGW_FUZZ_SECRET, DIPGW_FUZZ_SIGN_TYPE   a registered hospital
    DIPGW_FUZZ_CITY                                                 its city (admdvs)
    DIPGW_FUZZ_OPS_TOKEN, DIPGW_FUZZ_CITY_TOKEN                     bearer tokens

- `before_call`: uploads are signed as a HIS signs them (`gateway.signing.signed_headers`):
  the signature covers method, path with query, timestamp, nonce and the exact body bytes,
  so a `requests` auth object computes it on the prepared request, after schemathesis has
  serialised the body. Three generated uploads in four are re-addressed to the signing
  hospital and its city (the fourth keeps its generated codes: 403 is tested too). Reads take
  turns among the principals that may make them (a hospital's signature, a city token, the
  ops token), so each principal's scoping is exercised.
- `flatmap_case` (fuzzing and stateful phases): an upload is either what schemathesis made
  from the schema, or a valid list (`contracts.samples`) damaged by up to four mutations —
  hostile values (`tests.fuzz.corpus`: NUL, bidi, huge and impossible numbers, deep nesting,
  wrong shapes), deleted and renamed fields — then, one time in four, damaged as bytes
  (truncated, bad UTF-8, BOM, duplicate keys …); for the file endpoint, written as JSON,
  NDJSON, CSV or XLSX with hostile cells. Unmutated variants are accepted (202), so the
  stateful phase follows the receipt and case links.
- serialisers for the feed formats schemathesis has none for (NDJSON, JSON lines, XLSX).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import requests
import schemathesis
from hypothesis import strategies as st

from gateway.signing import signed_headers
from tests.fuzz import corpus, strategies


class HospitalSignature(requests.auth.AuthBase):
    """Signs the prepared request: the body is final here, whatever schemathesis made of it."""

    def __init__(self, hospital: str, secret: str, sign_type: str) -> None:
        self.hospital, self.secret, self.sign_type = hospital, secret.encode(), sign_type

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        if not isinstance(body, bytes):  # a stream: schemathesis never sends one here
            raise TypeError(f"cannot sign a {type(body).__name__} body")
        request.headers.update(
            signed_headers(
                self.hospital,
                self.secret,
                request.method or "GET",
                request.path_url,
                body,
                sign_type=self.sign_type,
            )
        )
        return request


HOSPITAL = os.environ["DIPGW_FUZZ_HOSPITAL"]
CITY = os.environ["DIPGW_FUZZ_CITY"]  # the hospital's city, and the city token's
_SIGNER = HospitalSignature(
    HOSPITAL,
    os.environ["DIPGW_FUZZ_SECRET"],
    os.environ.get("DIPGW_FUZZ_SIGN_TYPE", "HMAC-SHA256"),
)
_OPS = f"Bearer {os.environ['DIPGW_FUZZ_OPS_TOKEN']}"
_CITY = f"Bearer {os.environ['DIPGW_FUZZ_CITY_TOKEN']}"

UPLOADS = ("/v1/settlements", "/v1/settlements/batch", "/v1/settlements/file", "/fsi/api/{infno}")
# Who may read what: hospitals their own receipts, cases and scored cases; a city its own
# city; ops everything (the quality reports are for tokens only).
_READERS = {
    "/v1/receipts/{receipt_id}": ("hospital", "ops", "city"),
    "/v1/cases/{fixmedins_code}/{setl_id}": ("hospital", "ops", "city"),
    "/v1/scored": ("city", "ops", "hospital"),
    "/v1/quality/": ("ops", "city"),
    "/v1/settlement/": ("ops", "city", "hospital"),
    "/v1/simulations": ("ops", "city"),
    "/v1/simulations/{sim_id}": ("ops", "city"),
    "/v1/special-reviews": ("hospital", "city", "ops"),
    "/v1/special-reviews/{review_id}": ("hospital", "city", "ops"),
    "/v1/special-reviews/{review_id}/decision": ("city", "ops"),
}
_turns: dict[str, Iterator[str]] = {}
_retarget = itertools.cycle((True, True, True, False))


def principal_for(path: str) -> str:
    """The principal an operation is called as, taking turns among its readers."""
    if path in UPLOADS:
        return "hospital"
    for prefix, readers in _READERS.items():
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            turn = _turns.setdefault(path, itertools.cycle(readers))
            return next(turn)
    return "ops"


def retarget(body: Any) -> None:
    """Make a generated list (or a batch's lists) the signing hospital's own, in place."""
    documents = body.get("records") if isinstance(body, dict) else None
    for document in documents if isinstance(documents, list) else [body]:
        if isinstance(document, dict):
            if isinstance(document.get("fixmedins_code"), str):
                document["fixmedins_code"] = HOSPITAL
            if isinstance(document.get("mdtrtarea_admvs"), str):
                document["mdtrtarea_admvs"] = CITY


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    principal = principal_for(case.operation.path)
    headers = dict(case.headers or {})
    for name in [h for h in headers if h.lower() in ("authorization", "x-dipgw-signature")]:
        del headers[name]
    if principal == "hospital":
        kwargs["auth"] = _SIGNER
        if case.operation.path in UPLOADS and next(_retarget):
            retarget(case.body)
    else:
        headers["Authorization"] = _OPS if principal == "ops" else _CITY
    case.headers = headers


# -- hostile variants of real lists --------------------------------------------------------


def _variant(case: Any) -> st.SearchStrategy[Any]:
    path = case.operation.path
    document = strategies.hostile_document(HOSPITAL, CITY)
    if path == "/v1/settlements/file":
        parts = strategies.hostile_file(HOSPITAL, CITY)
    elif path == "/v1/settlements/batch":
        parts = st.lists(document, min_size=1, max_size=5).flatmap(
            lambda docs: st.tuples(
                st.just("application/json"),
                strategies.damaged({"records": docs}, keep_documents=True),
            )
        )
    elif path == "/fsi/api/{infno}":
        parts = st.sampled_from(("4101A", "4101")).flatmap(
            lambda infno: strategies.hostile_document(HOSPITAL, CITY, infno).flatmap(
                lambda doc: st.tuples(st.just(infno), strategies.damaged(doc, keep_documents=True))
            )
        )
    else:
        parts = document.flatmap(
            lambda doc: st.tuples(
                st.just("application/json"), strategies.damaged(doc, keep_documents=True)
            )
        )

    def build(first_and_body: tuple[str, Any]) -> Any:
        first, case.body = first_and_body
        if path == "/fsi/api/{infno}":  # the national call names the flavour in its path
            case.path_parameters = {**case.path_parameters, "infno": first}
            case.media_type = "application/json"
        else:
            case.media_type = first
        return case

    return parts.map(build)


@schemathesis.hook
def flatmap_case(context: Any, case: Any) -> st.SearchStrategy[Any]:
    if case.operation.path not in UPLOADS:
        return st.just(case)
    return st.one_of(st.just(case), _variant(case))


# -- serialisers for the feed formats ------------------------------------------------------


def _raw(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    data = getattr(value, "data", None)  # schemathesis' Binary
    if isinstance(data, bytes):
        return data
    return str(value).encode("utf-8", "surrogatepass")


@schemathesis.serializer("application/x-ndjson", "application/jsonl", corpus.XLSX)
def feed_serializer(ctx: Any, value: Any) -> bytes:
    return _raw(value)
