"""The obvious peer the benches measure dipgw against (issue 17): what a competent team would
write first — aiohttp + pydantic v2 models of the national envelope + aiokafka `send_and_wait`
per record (acks=all, idempotent) + one asyncpg receipt INSERT per record. Kept beside the
benches, as msgspec keeps its competitors' benchmarks beside its own; never used to serve.
Needs pydantic (`pip install 'dipgw[test]'`)."""

from __future__ import annotations

PYDANTIC_MISSING = (
    "the peer of the benches needs pydantic v2: pip install 'dipgw[test]'"
    " (or pip install 'pydantic>=2.9')"
)


def pydantic_available() -> bool:
    """Whether the peer can run (pydantic v2 installed)."""
    try:
        import pydantic
    except ImportError:
        return False
    return pydantic.VERSION.startswith("2.")
