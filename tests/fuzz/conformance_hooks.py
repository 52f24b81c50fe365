"""The hooks of tests/gateway/test_api_fuzz.py's schemathesis runs: tests/fuzz/schemathesis_hooks.py
(credentials, hostile variants of real lists), plus what the full /openapi.json of issue 14
point 2 needs of it:

- every national operation (`/fsi/api`, `/fsi/api/{infno}`, `/fsi/api/4102`, `/fsi/api/4103`)
  and `/v1/settlements/validate` is called as the signing hospital, the only principal that
  may call it (else each is a 403);
- schemathesis 4.32 re-validates a hook-made body against its schema to count valid inputs,
  with jsonschema_rs, which cannot read a lone surrogate (`"\\udfff"` is valid JSON and one of
  the hostile values sent on purpose) in a string it must measure or match: with every upload
  field bounded, that raised UnicodeEncodeError and ended the run. Such a body is simply not a
  valid one.
"""

from __future__ import annotations

from typing import Any

from schemathesis.generation.case import Case

from tests.fuzz import schemathesis_hooks

_principal_for = schemathesis_hooks.principal_for


def principal_for(path: str) -> str:
    """The hooks' principal; the hospital for every upload and national transaction."""
    return "hospital" if path.startswith(("/fsi/api", "/v1/settlements")) else _principal_for(path)


schemathesis_hooks.principal_for = principal_for  # `before_call` looks it up at each call

_validate_component = Case._validate_component


def _validate_readable(self: Any, *args: Any, **kwargs: Any) -> bool:
    try:
        return bool(_validate_component(self, *args, **kwargs))
    except UnicodeEncodeError:  # a lone surrogate: not text a valid body can hold
        return False


Case._validate_component = _validate_readable  # type: ignore[method-assign]
