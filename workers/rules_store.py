"""City DIP rules in PostgreSQL: one JSON document per import, history kept, the latest in force.

Rules are versioned per (city, clearing year). An import stores the whole `RuleSet` as its
canonical JSON (`workers.dip.encode_ruleset`) with its content hash; importing the same content
again is a no-op, anything else becomes the next `seq` and is in force from then on. Workers
ask `RulesStore.in_force` (cached for `worker.rules_cache_s`, so an import shows within that)
and fetch a rule set by id when scoring what was grouped under it (immutable, cached for good).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from workers._versioned import store_next_version
from workers.dip import RuleSet, RuleSetError, decode_ruleset, encode_ruleset, load_rules
from workers.dip._index import index_of

_CATALOG_SUFFIXES = (".csv", ".xlsx", ".tsv", ".txt")

# Serialises imports of one (city, year) so two concurrent imports cannot take the same seq.
_IMPORT_LOCK = 0x6469_7072  # "dipr"


@dataclass(frozen=True, slots=True)
class StoredRules:
    """One stored rule set and where it sits in its city's history."""

    ruleset_id: int
    seq: int
    imported_at: datetime
    sources: list[dict[str, str]]
    rules: RuleSet


@dataclass(frozen=True, slots=True)
class ImportResult:
    stored: StoredRules
    unchanged: bool  # the same content was already in force: nothing new stored


def read_rules_files(files: list[Path]) -> tuple[RuleSet, list[dict[str, str]]]:
    """A RuleSet from the files of one import, as cities publish them.

    Accepted: one TOML policy (its `catalog` key names the catalog unless a CSV/XLSX file is
    given too), or one rule-set JSON document. Raises RuleSetError with the reason.
    """
    policies = [f for f in files if f.suffix.lower() in (".toml", ".json")]
    catalogs = [f for f in files if f.suffix.lower() in _CATALOG_SUFFIXES]
    unknown = [f for f in files if f not in policies and f not in catalogs]
    if unknown:
        raise RuleSetError(
            f"unknown file type: {', '.join(map(str, unknown))} (TOML, JSON, CSV, XLSX)"
        )
    if len(policies) != 1:
        raise RuleSetError("give exactly one policy file (TOML) or one rule-set document (JSON)")
    if len(catalogs) > 1:
        raise RuleSetError("give at most one catalog file (CSV or XLSX)")
    policy = policies[0]
    if policy.suffix.lower() == ".json" and catalogs:
        raise RuleSetError("a rule-set JSON document already holds its catalog")
    try:
        rules = load_rules(policy, catalogs[0] if catalogs else None)
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleSetError(f"cannot read {exc}") from None
    used = [policy, *catalogs]
    if policy.suffix.lower() == ".toml" and not catalogs:
        name = tomllib.loads(policy.read_text(encoding="utf-8")).get("catalog")
        if isinstance(name, str):
            used.append(policy.parent / name)
    sources = [{"file": p.name, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()} for p in used]
    return rules, sources


def _stored(row: asyncpg.Record, rules: RuleSet | None = None) -> StoredRules:
    if rules is None:
        rules = decode_ruleset(row["document"].encode())
        index_of(rules)  # build the lookup index now, where the caller chose (off the loop)
    return StoredRules(
        ruleset_id=row["ruleset_id"],
        seq=row["seq"],
        imported_at=row["imported_at"],
        sources=msgspec.json.decode(row["sources"]),
        rules=rules,
    )


_COLUMNS = "ruleset_id, seq, imported_at, sources::text AS sources, document"


async def import_rules(
    pool: asyncpg.Pool, rules: RuleSet, sources: list[dict[str, str]]
) -> ImportResult:
    """Store `rules` as the new version in force for its city and clearing year."""
    row, unchanged = await store_next_version(
        pool,
        table="dip_rulesets",
        returning=_COLUMNS,
        lock=_IMPORT_LOCK,
        city=rules.city,
        year=rules.clearing_year,
        document=encode_ruleset(rules),
        sources=sources,
        values={
            "version": rules.version,
            "catalog_version": rules.catalog_version,
            "version_id": rules.version_id,
            "groups": len(rules.groups),
        },
    )
    # Unchanged: the stored document is the same content, so the caller's rules stand for it.
    return ImportResult(_stored(row, rules), unchanged=unchanged)


async def rules_in_force(pool: asyncpg.Pool, city: str, year: int) -> StoredRules | None:
    row = await pool.fetchrow(
        f"""SELECT {_COLUMNS} FROM dip_rulesets WHERE city = $1 AND clearing_year = $2
            ORDER BY seq DESC LIMIT 1""",
        city,
        year,
    )
    return None if row is None else _stored(row)


async def rules_history(pool: asyncpg.Pool, city: str, year: int) -> list[dict[str, Any]]:
    """Every import of (city, year), newest first, without the documents."""
    rows = await pool.fetch(
        """SELECT ruleset_id, seq, version, catalog_version, content_sha256, version_id, groups,
                  sources::text AS sources, imported_at
           FROM dip_rulesets WHERE city = $1 AND clearing_year = $2 ORDER BY seq DESC""",
        city,
        year,
    )
    return [{**dict(r), "sources": msgspec.json.decode(r["sources"])} for r in rows]


class RulesStore:
    """The workers' view of the rules: in force per (city, year) with a short cache.

    Only a rule set found is cached; "no rules" is asked again (callers memoise it per batch),
    so a city's first import applies to the very next batch.
    """

    def __init__(self, pool: asyncpg.Pool, *, ttl_s: float = 5.0) -> None:
        self._pool = pool
        self._ttl = ttl_s
        self._in_force: dict[tuple[str, int], tuple[float, int]] = {}
        self._by_id: dict[int, StoredRules] = {}
        self._lock = asyncio.Lock()

    async def in_force(self, city: str, year: int) -> StoredRules | None:
        now = time.monotonic()
        hit = self._in_force.get((city, year))
        if hit is not None and now - hit[0] < self._ttl:
            return self._by_id[hit[1]]
        async with self._lock:
            row = await self._pool.fetchrow(
                """SELECT ruleset_id FROM dip_rulesets WHERE city = $1 AND clearing_year = $2
                   ORDER BY seq DESC LIMIT 1""",
                city,
                year,
            )
            if row is None:
                return None  # not cached: a city's first import counts from the next batch
            ruleset_id = int(row["ruleset_id"])
            if ruleset_id not in self._by_id:
                await self._load(ruleset_id)
            self._in_force[(city, year)] = (now, ruleset_id)
        return self._by_id[ruleset_id]

    def memo(self) -> Callable[[str, int], Awaitable[StoredRules | None]]:
        """A lookup for one batch: each (city, year) is asked at most once."""
        seen: dict[tuple[str, int], StoredRules | None] = {}

        async def lookup(city: str, year: int) -> StoredRules | None:
            if (city, year) not in seen:
                seen[(city, year)] = await self.in_force(city, year)
            return seen[(city, year)]

        return lookup

    async def by_id(self, ruleset_id: int) -> StoredRules | None:
        """A rule set by id; rows never change, so it is cached for the process' life."""
        found = self._by_id.get(ruleset_id)
        if found is None:
            async with self._lock:
                found = await self._load(ruleset_id)
        return found

    async def _load(self, ruleset_id: int) -> StoredRules | None:
        row = await self._pool.fetchrow(
            f"SELECT {_COLUMNS} FROM dip_rulesets WHERE ruleset_id = $1", ruleset_id
        )
        if row is None:
            return None
        # Decoding and indexing a catalog takes a few ms: off the event loop.
        stored = await asyncio.to_thread(_stored, row)
        self._by_id[ruleset_id] = stored
        return stored
