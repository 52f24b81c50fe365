"""City settlement policies in PostgreSQL (`settlement_policies`), versioned like the DIP rules.

A settlement policy is its own TOML file (``kind = "settlement"``, `workers.dip.SettlementPolicy`)
imported with `dipgw rules import CITY YEAR FILE`: the same content again is a no-op, anything
else becomes the next `seq`, in force from then on. Runs record the `policy_id` they used.
Also here: the per-run input files (assessment scores, deductions) the settle commands read.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from adapters.runtime.errors import DipgwError
from workers._versioned import store_next_version
from workers.dip import (
    HospitalInput,
    SettlementPolicy,
    SettlementPolicyError,
    decode_settlement_policy,
    encode_settlement_policy,
    parse_settlement_policy,
)

# Serialises imports of one (city, year) so two concurrent imports cannot take the same seq.
_IMPORT_LOCK = 0x6469_7073  # "dips"


class SettlementInputError(DipgwError, ValueError):
    """A settle command's input file is unreadable or malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    policy_id: int
    seq: int
    content_sha256: str
    imported_at: datetime
    sources: list[dict[str, str]]
    policy: SettlementPolicy


def is_settlement_file(path: Path) -> bool:
    """A TOML file that declares ``kind = "settlement"`` (unreadable → False: the caller's
    own reader reports it)."""
    if path.suffix.lower() != ".toml":
        return False
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")).get("kind") == "settlement"
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False


def read_settlement_file(path: Path) -> tuple[SettlementPolicy, list[dict[str, str]]]:
    """The policy of one settlement TOML, checked whole (`SettlementPolicyError`)."""
    try:
        raw = path.read_bytes()
        doc = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettlementPolicyError(f"cannot read {path}: {exc}") from None
    policy = parse_settlement_policy(doc)
    return policy, [{"file": path.name, "sha256": hashlib.sha256(raw).hexdigest()}]


def _stored(row: asyncpg.Record) -> StoredPolicy:
    return StoredPolicy(
        policy_id=row["policy_id"],
        seq=row["seq"],
        content_sha256=row["content_sha256"],
        imported_at=row["imported_at"],
        sources=msgspec.json.decode(row["sources"]),
        policy=decode_settlement_policy(row["document"]),
    )


_COLUMNS = "policy_id, seq, content_sha256, imported_at, sources::text AS sources, document"


async def import_settlement_policy(
    pool: asyncpg.Pool, policy: SettlementPolicy, sources: list[dict[str, str]]
) -> tuple[StoredPolicy, bool]:
    """Store `policy` as the version in force; True with it when it was already in force."""
    row, unchanged = await store_next_version(
        pool,
        table="settlement_policies",
        returning=_COLUMNS,
        lock=_IMPORT_LOCK,
        city=policy.city,
        year=policy.clearing_year,
        document=encode_settlement_policy(policy),
        sources=sources,
        values={
            "version": policy.version,
            "special_review_quota_permille": policy.special_review_quota_permille,
        },
    )
    return _stored(row), unchanged


async def policy_in_force(pool: asyncpg.Pool, city: str, year: int) -> StoredPolicy | None:
    row = await pool.fetchrow(
        f"""SELECT {_COLUMNS} FROM settlement_policies WHERE city = $1 AND clearing_year = $2
            ORDER BY seq DESC LIMIT 1""",
        city,
        year,
    )
    return None if row is None else _stored(row)


def summary(stored: StoredPolicy) -> dict[str, Any]:
    p = stored.policy
    return {
        "city": p.city,
        "clearing_year": p.clearing_year,
        "policy_id": stored.policy_id,
        "seq": stored.seq,
        "version": p.version,
        "content_sha256": stored.content_sha256,
        "funds": sorted(p.funds),
        "special_review_quota_permille": str(p.special_review_quota_permille),
        "sources": stored.sources,
    }


_inputs_type = dict[str, HospitalInput]


def read_inputs_file(path: Path) -> tuple[dict[str, HospitalInput], dict[str, str]]:
    """Per-hospital inputs of a run (TOML): ``[hospitals.CODE]`` with ``score`` (assessment
    score 0–100, year runs) and ``deductions = { "310" = "1200.00" }`` (审核扣减 per fund)."""
    try:
        raw = path.read_bytes()
        doc = tomllib.loads(raw.decode("utf-8"))
        inputs = msgspec.convert(doc.get("hospitals", {}), _inputs_type, strict=False)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettlementInputError(f"cannot read {path}: {exc}") from None
    except msgspec.ValidationError as exc:
        raise SettlementInputError(f"{path}: hospitals: {exc}") from None
    for code, given in inputs.items():
        if given.score is not None and not 0 <= given.score <= 100:
            raise SettlementInputError(f"{path}: hospitals.{code}.score outside 0..100")
        for fund, amount in given.deductions.items():
            if amount < 0:
                raise SettlementInputError(f"{path}: hospitals.{code}.deductions.{fund} < 0")
    return inputs, {"file": path.name, "sha256": hashlib.sha256(raw).hexdigest()}
