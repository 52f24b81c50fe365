"""The shared runtime every dipgw process stands on, gateway and workers alike: settings,
logs, metrics, the clock, the Kafka bus, the PostgreSQL pool and its migrations, and what
counts as a dependency being away.

It imports only `contracts` (tests/test_layers.py): the HTTP edge and the workers both build
on it and never on each other. Unlike the feed formats beside it in `adapters/`, this is
the async shell's plumbing (asyncio, aiokafka, asyncpg), not pure code.
"""
