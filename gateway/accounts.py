"""Who may talk to the gateway: hospitals (signing secrets), city bureaus and ops (tokens).

Everything lives in PostgreSQL, so any gateway process on any host can authenticate any
hospital; each process keeps a short-lived copy (`auth.cache_ttl_s`) to spare the database a
query per request. Tokens expire (`auth.token_ttl_days`): a token handed to a bureau years ago
and forgotten must not read a city's cases for ever.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import asyncpg
from cachetools import TTLCache
from cryptography.exceptions import InvalidTag

from adapters.runtime.clock import Clock, system_clock
from adapters.runtime.errors import DipgwError
from contracts import city_of
from gateway.sealing import MasterKeyError, Sealer, check_keys
from gateway.signing import SIGN_TYPES

HOSPITAL_CODE = re.compile(r"H[0-9]{11}\Z")  # with .match: the whole text, ASCII digits
ADMDVS = re.compile(r"[0-9]{6}\Z")


class RegistryError(DipgwError, ValueError):
    """A registry change that cannot be made, with the reason for the operator."""


@dataclass(frozen=True, slots=True)
class Hospital:
    code: str
    name: str
    admdvs: str
    level: str
    status: str
    sign_type: str
    secrets: tuple[bytes, ...]  # current first, then the previous one during its grace period


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a hospital, a city bureau (one city) or ops (all)."""

    role: str  # "hospital" | "city" | "ops"
    fixmedins_code: str | None = None
    admdvs: str | None = None  # the hospital's or the bureau's region

    def may_read_region(self, admdvs: str | None) -> bool:
        """Ops: any region; a hospital or bureau: the regions of its own city (`city_of`)."""
        if self.role == "ops":
            return True
        own = city_of(self.admdvs)
        return own is not None and city_of(admdvs) == own


def _known_region(admdvs: str, what: str) -> None:
    """`RegistryError` unless `admdvs` is a known region code: a hospital or bureau filed
    under a code no list has would belong to no city (its lists, reports and scores lost)."""
    if not ADMDVS.match(admdvs):
        raise RegistryError(f"{admdvs!r}: {what} is a 6-digit region code")
    if city_of(admdvs) is None:
        raise RegistryError(
            f"{admdvs}: {what} is not a known region code (GB/T 2260 or a medical-insurance"
            " pool; see contracts/data/regions/PROVENANCE.md)"
        )


SESSION_PREFIX = "dipgw_session_"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


TOKEN_ID_BYTES = 6
DEFAULT_TOKEN_TTL = timedelta(days=90)
TokenRefused = Literal["unknown", "expired"]
"""Why a bearer token is refused: unknown (never issued, or revoked) or past its expiry."""


def token_id(token: str) -> str:
    """A token's public name (12 hex digits of its hash): listed, and revoked by, without the
    token itself ever being shown again."""
    return _token_hash(token)[:TOKEN_ID_BYTES].hex()


POSITIVE_ENTRIES = 20_000
"""Hospitals (a province has a few thousand) and tokens a process keeps, least recently used
dropped first."""
NEGATIVE_ENTRIES = 1_024
"""Unknown hospital codes and tokens remembered, apart: a flood of made-up ones (each costs
one query) can neither grow memory nor push a real caller out of the cache."""


class Registry:
    """Hospitals and tokens, from PostgreSQL, each copy kept for at most `cache_ttl_s`: the
    bound on how late a disable, rotation or revocation reaches a process."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        sealer: Sealer,
        *,
        cache_ttl_s: float = 5.0,
        clock: Clock = system_clock,
    ) -> None:
        self._pool = pool
        self._sealer = sealer
        self._clock = clock  # token expiry: set from it and judged by it
        ttl = max(cache_ttl_s, 1e-9)  # 0: every lookup asks the database
        self._hospitals: TTLCache[str, Hospital] = TTLCache(POSITIVE_ENTRIES, ttl)
        self._hospitals_absent: TTLCache[str, bool] = TTLCache(NEGATIVE_ENTRIES, ttl)
        # a token's holder with the moment it expires (judged on every hit, not only on a miss)
        self._tokens: TTLCache[bytes, tuple[Principal, datetime]] = TTLCache(POSITIVE_ENTRIES, ttl)
        self._tokens_absent: TTLCache[bytes, TokenRefused] = TTLCache(NEGATIVE_ENTRIES, ttl)

    # -- hospitals -------------------------------------------------------------------------

    async def add_hospital(
        self,
        code: str,
        name: str,
        admdvs: str,
        level: str,
        *,
        sign_type: str = "HMAC-SHA256",
        cert_subject: str | None = None,
    ) -> str:
        """Register a hospital; returns its signing secret, shown once and stored sealed."""
        if not HOSPITAL_CODE.match(code):
            raise RegistryError(f"{code!r}: a hospital code is H followed by 11 digits")
        _known_region(admdvs, "the hospital's region (admdvs)")
        if sign_type not in SIGN_TYPES:
            raise RegistryError(f"{sign_type!r}: sign type is one of {', '.join(SIGN_TYPES)}")
        secret = new_secret()
        try:
            await self._pool.execute(
                """INSERT INTO hospitals (fixmedins_code, name, admdvs, level, sign_type,
                                          secret_enc, cert_subject)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                code,
                name,
                admdvs,
                level,
                sign_type,
                self._sealer.seal(secret.encode(), code),
                cert_subject,
            )
        except asyncpg.UniqueViolationError:
            raise RegistryError(f"{code} is already registered (or its certificate is)") from None
        self._hospitals_absent.pop(code, None)
        return secret

    async def rotate_secret(self, code: str, *, grace: timedelta = timedelta(0)) -> str:
        """A new secret; the old one stays valid for `grace` so a HIS can switch without gap."""
        secret = new_secret()
        updated = await self._pool.execute(
            """UPDATE hospitals
               SET previous_secret_enc = CASE WHEN $3 > interval '0' THEN secret_enc END,
                   previous_valid_until = CASE WHEN $3 > interval '0' THEN now() + $3 END,
                   secret_enc = $2, updated_at = now()
               WHERE fixmedins_code = $1""",
            code,
            self._sealer.seal(secret.encode(), code),
            grace,
        )
        if updated == "UPDATE 0":
            raise RegistryError(f"{code} is not registered")
        self._hospitals.pop(code, None)
        return secret

    async def set_status(self, code: str, status: str) -> None:
        updated = await self._pool.execute(
            "UPDATE hospitals SET status = $2, updated_at = now() WHERE fixmedins_code = $1",
            code,
            status,
        )
        if updated == "UPDATE 0":
            raise RegistryError(f"{code} is not registered")
        self._hospitals.pop(code, None)

    async def list_hospitals(self) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            """SELECT fixmedins_code, name, admdvs, level, status, sign_type, cert_subject,
                      previous_valid_until > now() AS rotating, updated_at
               FROM hospitals ORDER BY fixmedins_code"""
        )
        return [dict(row) for row in rows]

    async def hospital(self, code: str) -> Hospital | None:
        cached = self._hospitals.get(code)
        if cached is not None:
            return cached
        if code in self._hospitals_absent:
            return None
        row = await self._pool.fetchrow(
            """SELECT fixmedins_code, name, admdvs, level, status, sign_type, secret_enc,
                      CASE WHEN previous_valid_until > now() THEN previous_secret_enc END
                          AS previous_enc
               FROM hospitals WHERE fixmedins_code = $1""",
            code,
        )
        found = None
        if row is not None:
            sealed = [row["secret_enc"]] + ([row["previous_enc"]] if row["previous_enc"] else [])
            found = Hospital(
                code=row["fixmedins_code"],
                name=row["name"],
                admdvs=row["admdvs"],
                level=row["level"],
                status=row["status"],
                sign_type=row["sign_type"],
                secrets=tuple(self._sealer.open(s, code) for s in sealed),
            )
        if found is None:
            self._hospitals_absent[code] = True
        else:
            self._hospitals[code] = found
        return found

    async def hospital_by_cert_subject(self, subject: str) -> Hospital | None:
        code = await self._pool.fetchval(
            "SELECT fixmedins_code FROM hospitals WHERE cert_subject = $1", subject
        )
        return None if code is None else await self.hospital(code)

    async def use_nonce(self, code: str, nonce: str) -> bool:
        """True the first time a hospital uses a nonce inside the window."""
        inserted = await self._pool.fetchval(
            """INSERT INTO request_nonces (fixmedins_code, nonce) VALUES ($1, $2)
               ON CONFLICT DO NOTHING RETURNING true""",
            code,
            nonce,
        )
        return bool(inserted)

    async def purge_nonces(self, window_s: int) -> int:
        deleted = await self._pool.execute(
            "DELETE FROM request_nonces WHERE seen_at < now() - make_interval(secs => $1)",
            float(2 * window_s),
        )
        return int(deleted.split()[-1])

    # -- sealing keys ------------------------------------------------------------------------

    async def check_sealing(self) -> None:
        """Refuse to serve (`MasterKeyError`) with keys that cannot open the stored secrets;
        record the current key when it is new (a new database, or a rotation begun)."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE sealing_keys IN SHARE ROW EXCLUSIVE MODE")
            in_use = [
                row["key_id"]
                for row in await conn.fetch(
                    "SELECT key_id FROM sealing_keys WHERE retired_at IS NULL"
                )
            ]
            if not in_use:  # secrets sealed before key ids were recorded: try one
                row = await conn.fetchrow(
                    "SELECT fixmedins_code, secret_enc FROM hospitals ORDER BY updated_at LIMIT 1"
                )
                if row is not None:
                    try:
                        self._sealer.open(row["secret_enc"], row["fixmedins_code"])
                    except (InvalidTag, MasterKeyError):
                        raise MasterKeyError(
                            "auth.master_key: this process's key does not open the hospitals' "
                            "secrets; set DIPGW_AUTH_MASTER_KEY (or auth.master_key_file) to "
                            "the key they were sealed with"
                        ) from None
            if check_keys(self._sealer, in_use):
                await conn.execute(
                    "INSERT INTO sealing_keys (key_id) VALUES ($1) ON CONFLICT (key_id) "
                    "DO UPDATE SET retired_at = NULL",
                    self._sealer.current_id,
                )

    async def reseal(self) -> tuple[int, list[str]]:
        """Every secret sealed anew under the current key; the keys no longer used retired.
        Returns (secrets resealed, key ids retired)."""
        moved = 0
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT fixmedins_code, secret_enc, previous_secret_enc FROM hospitals
                   FOR UPDATE"""
            )
            for row in rows:
                code = row["fixmedins_code"]
                values = [row["secret_enc"], row["previous_secret_enc"]]
                if all(v is None or self._sealer.is_current(v) for v in values):
                    continue
                fresh = [
                    None if v is None else self._sealer.seal(self._sealer.open(v, code), code)
                    for v in values
                ]
                await conn.execute(
                    """UPDATE hospitals SET secret_enc = $2, previous_secret_enc = $3
                       WHERE fixmedins_code = $1""",
                    code,
                    *fresh,
                )
                moved += 1
            retired = await conn.fetch(
                """UPDATE sealing_keys SET retired_at = now()
                   WHERE key_id <> $1 AND retired_at IS NULL RETURNING key_id""",
                self._sealer.current_id,
            )
            await conn.execute(
                "INSERT INTO sealing_keys (key_id) VALUES ($1) ON CONFLICT (key_id) "
                "DO UPDATE SET retired_at = NULL",
                self._sealer.current_id,
            )
        self._hospitals.clear()
        return moved, sorted(row["key_id"] for row in retired)

    # -- tokens ----------------------------------------------------------------------------

    async def issue_token(
        self,
        role: str,
        label: str,
        admdvs: str | None = None,
        *,
        ttl: timedelta = DEFAULT_TOKEN_TTL,
    ) -> str:
        """A new token, valid for `ttl` from now (the registry's clock); shown once, stored
        as its SHA-256 hash."""
        if ttl <= timedelta(0):
            raise RegistryError("a token's lifetime must be positive")
        if role not in ("city", "ops", "metrics"):
            raise RegistryError("a token's role is city, ops or metrics")
        if role == "city":
            if admdvs is None:
                raise RegistryError("a city token needs the city's 6-digit admdvs")
            _known_region(admdvs, "the city (admdvs)")
        token = f"dipgw_{role}_{secrets.token_urlsafe(32)}"
        now = self._clock()
        await self._pool.execute(
            """INSERT INTO api_tokens (token_sha256, role, admdvs, label, created_at, expires_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            _token_hash(token),
            role,
            admdvs if role == "city" else None,
            label,
            now,
            now + ttl,
        )
        return token

    async def revoke_token(self, label: str) -> int:
        """Revoke every live token with this label; returns how many."""
        revoked = await self._pool.execute(
            "UPDATE api_tokens SET revoked_at = $2 WHERE label = $1 AND revoked_at IS NULL",
            label,
            self._clock(),
        )
        self._tokens.clear()
        return int(revoked.split()[-1])

    async def revoke_token_id(self, ident: str) -> int:
        """Revoke the token with this id (`token_id`, as `list_tokens` shows it); returns 1,
        or 0 when it was already revoked. `RegistryError` for an id no token has."""
        if not re.fullmatch(rf"[0-9a-f]{{{2 * TOKEN_ID_BYTES}}}", ident):
            raise RegistryError(f"{ident!r}: a token id is {2 * TOKEN_ID_BYTES} hex digits")
        rows = await self._pool.fetch(
            """UPDATE api_tokens SET revoked_at = coalesce(revoked_at, $2)
               WHERE substring(token_sha256 FROM 1 FOR $3) = $1
               RETURNING revoked_at = $2 AS now_revoked""",
            bytes.fromhex(ident),
            self._clock(),
            TOKEN_ID_BYTES,
        )
        if not rows:
            raise RegistryError(f"no token has id {ident} (see `dipgw tokens list`)")
        self._tokens.clear()
        return sum(1 for row in rows if row["now_revoked"])

    async def open_session(self, token: str, lifetime: timedelta) -> str | None:
        """A session of its own for the holder of a valid bureau or ops token (the /ops page's
        cookie), or None: random, stored hashed, ended by `close_session`, by its lifetime or
        by revoking the token."""
        session = f"{SESSION_PREFIX}{secrets.token_urlsafe(32)}"
        opened = await self._pool.fetchval(
            """INSERT INTO ops_sessions (session_sha256, token_sha256, expires_at)
               SELECT $1, token_sha256, now() + $3 FROM api_tokens
               WHERE token_sha256 = $2 AND revoked_at IS NULL AND expires_at > $4
               RETURNING true""",
            _token_hash(session),
            _token_hash(token),
            lifetime,
            self._clock(),
        )
        return session if opened else None

    async def close_session(self, session: str) -> None:
        """Logging out: the session ends at once on this process, within the cache's lifetime
        on the others."""
        if not session.startswith(SESSION_PREFIX):
            return
        key = _token_hash(session)
        await self._pool.execute(
            "UPDATE ops_sessions SET revoked_at = now() WHERE session_sha256 = $1", key
        )
        self._tokens.pop(key, None)

    async def purge_sessions(self) -> int:
        deleted = await self._pool.execute(
            """DELETE FROM ops_sessions
               WHERE expires_at < now() OR revoked_at < now() - interval '1 day'"""
        )
        return int(deleted.split()[-1])

    async def list_tokens(self) -> list[dict[str, Any]]:
        """Every token without the token itself: its id, holder, role, city, times, state."""
        rows = await self._pool.fetch(
            """SELECT substring(token_sha256 FROM 1 FOR $2) AS id, label, role, admdvs,
                      created_at, expires_at, last_used_at, revoked_at,
                      CASE WHEN revoked_at IS NOT NULL THEN 'revoked'
                           WHEN expires_at <= $1 THEN 'expired' ELSE 'active' END AS state
               FROM api_tokens ORDER BY created_at, label""",
            self._clock(),
            TOKEN_ID_BYTES,
        )
        return [{**dict(row), "id": row["id"].hex()} for row in rows]

    async def token(self, token: str) -> Principal | None:
        """The holder of a token, or of an /ops session (`open_session`); None if neither."""
        found = await self.check_token(token)
        return found if isinstance(found, Principal) else None

    async def check_token(self, token: str) -> Principal | TokenRefused:
        """The holder of a live token or /ops session, or why it is refused. Expiry is judged
        on every call; a revocation reaches this process within `cache_ttl_s`."""
        key = _token_hash(token)
        now = self._clock()
        cached = self._tokens.get(key)
        if cached is not None:
            principal, expires_at = cached
            return principal if expires_at > now else "expired"
        refused = self._tokens_absent.get(key)
        if refused is not None:
            return refused
        if token.startswith(SESSION_PREFIX):
            row = await self._pool.fetchrow(
                """SELECT t.role, t.admdvs, t.expires_at FROM ops_sessions s
                   JOIN api_tokens t USING (token_sha256)
                   WHERE s.session_sha256 = $1 AND s.expires_at > now()
                     AND s.revoked_at IS NULL AND t.revoked_at IS NULL
                     AND t.expires_at > $2""",
                key,
                now,
            )
        else:
            # One round trip: the lookup, and the token's last use recorded to the hour.
            row = await self._pool.fetchrow(
                """WITH seen AS (
                       UPDATE api_tokens SET last_used_at = $2
                       WHERE token_sha256 = $1 AND revoked_at IS NULL AND expires_at > $2
                         AND (last_used_at IS NULL OR last_used_at < $2 - interval '1 hour'))
                   SELECT role, admdvs, expires_at FROM api_tokens
                   WHERE token_sha256 = $1 AND revoked_at IS NULL""",
                key,
                now,
            )
        if row is None:
            self._tokens_absent[key] = "unknown"
            return "unknown"
        if row["expires_at"] <= now:
            self._tokens_absent[key] = "expired"
            return "expired"
        found = Principal(role=row["role"], admdvs=row["admdvs"])
        self._tokens[key] = (found, row["expires_at"])
        return found
