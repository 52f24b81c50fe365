"""Hospital secrets sealed at rest under the province's master key, with key ids so keys can
rotate, and a host with the wrong key refused at start (issue 11: a second host without
DIPGW_AUTH_MASTER_KEY made its own key and answered every hospital with 500)."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import asyncpg
import msgspec
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.runtime.postgres import create_pool, migrate
from adapters.runtime.settings import AuthSettings, SettingsError, load_settings
from gateway.accounts import Registry
from gateway.sealing import (
    MasterKeyError,
    Sealer,
    key_id,
    load_master_key,
    new_key,
    sealed_key_id,
    sealer_for,
)


def _text(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def test_sealed_secret_opens_only_for_its_hospital(tmp_path: Path) -> None:
    sealer = Sealer(load_master_key("", tmp_path))
    sealed = sealer.seal(b"top-secret", "H44010000001")
    assert b"top-secret" not in sealed
    assert sealer.open(sealed, "H44010000001") == b"top-secret"
    with pytest.raises(InvalidTag):
        sealer.open(sealed, "H44010000002")  # moved to another row: refused
    with pytest.raises(MasterKeyError, match="not configured"):
        Sealer(os.urandom(32)).open(sealed, "H44010000001")  # another master key


def test_local_master_key_is_made_once_and_private(tmp_path: Path) -> None:
    first = load_master_key("", tmp_path)
    assert load_master_key("", tmp_path) == first and len(first) == 32
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600


def test_configured_key_wins_and_must_be_32_bytes(tmp_path: Path) -> None:
    key = os.urandom(32)
    assert load_master_key(_text(key), tmp_path) == key
    assert not (tmp_path / "master.key").exists()
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(b"short")


@pytest.mark.parametrize(
    ("configured", "said"), [("not base64!!", "not base64url"), (_text(b"x" * 16), "got 16")]
)
def test_a_bad_key_is_a_start_up_report_naming_the_setting(
    tmp_path: Path, configured: str, said: str
) -> None:
    """Found when settings are read, before any command makes or opens anything."""
    environ = {"DIPGW_AUTH_MASTER_KEY": configured, "DIPGW_STATE_DIR": str(tmp_path)}
    with pytest.raises(SettingsError, match=said) as caught:
        load_settings(environ=environ)
    (problem,) = caught.value.problems
    assert problem.startswith("auth.master_key: ")
    assert "DIPGW_AUTH_MASTER_KEY" in str(caught.value) and configured not in str(caught.value)
    assert not (tmp_path / "master.key").exists()


def test_a_missing_required_key_is_a_start_up_report_naming_the_setting(
    tmp_path: Path,
) -> None:
    auth = AuthSettings(require_master_key=True)
    with pytest.raises(MasterKeyError, match="required") as caught:
        sealer_for(auth, tmp_path)
    assert str(caught.value).startswith("auth.master_key")
    assert not (tmp_path / "master.key").exists()


def test_the_key_may_come_from_a_file_and_old_keys_still_open(tmp_path: Path) -> None:
    old, current = os.urandom(32), os.urandom(32)
    sealed_by_old = Sealer(old).seal(b"s", "H44010000001")
    (tmp_path / "key").write_text(_text(current) + "\n")
    auth = AuthSettings(master_key_file=str(tmp_path / "key"), previous_master_keys=_text(old))
    sealer = sealer_for(auth, tmp_path)
    assert sealer.current_id == key_id(current)
    assert sealer.open(sealed_by_old, "H44010000001") == b"s"
    assert sealed_key_id(sealer.seal(b"s", "H44010000001")) == key_id(current)


def test_a_value_sealed_before_key_ids_still_opens() -> None:
    key = os.urandom(32)
    nonce = os.urandom(12)
    legacy = nonce + AESGCM(key).encrypt(nonce, b"s", b"H44010000001")
    assert Sealer(os.urandom(32), [key]).open(legacy, "H44010000001") == b"s"


async def _registry(dsn: str, sealer: Sealer) -> tuple[asyncpg.Pool, Registry]:
    pool = await create_pool(dsn, min_size=1, max_size=2)
    async with pool.acquire() as conn:
        await migrate(conn)
    return pool, Registry(pool, sealer, cache_ttl_s=0)


async def test_a_host_with_another_key_is_refused_and_a_rotation_moves_every_secret(
    fresh_dsn: str,
) -> None:
    first, second = os.urandom(32), os.urandom(32)
    pool, host_a = await _registry(fresh_dsn, Sealer(first))
    try:
        await host_a.check_sealing()
        secret = await host_a.add_hospital("H44010000001", "A", "440100", "3")
        # a second host that made a key of its own: refused before it serves anyone
        _, host_b = await _registry(fresh_dsn, Sealer(second))
        with pytest.raises(MasterKeyError, match=key_id(first)):
            await host_b.check_sealing()
        # rotation: the new key first, the old one kept; then reseal; then the old one goes
        rotating = Registry(pool, Sealer(second, [first]), cache_ttl_s=0)
        await rotating.check_sealing()
        assert await rotating.reseal() == (1, [key_id(first)])
        hospital = await Registry(pool, Sealer(second), cache_ttl_s=0).hospital("H44010000001")
        assert hospital is not None and hospital.secrets == (secret.encode(),)
        await Registry(pool, Sealer(second), cache_ttl_s=0).check_sealing()
        with pytest.raises(MasterKeyError):
            await host_a.check_sealing()  # the retired key alone no longer serves
    finally:
        await pool.close()
        await host_b._pool.close()


def test_new_keys_are_valid_keys() -> None:
    assert len(Sealer(base64.urlsafe_b64decode(new_key())).current_id) == 16
    assert msgspec.json.encode(AuthSettings())  # the settings stay encodable


def test_a_worker_only_process_is_not_held_to_the_key(tmp_path: Path) -> None:
    """Workers open no secret: a worker host without the key starts (seen: every worker-only
    process refused after key ids came in)."""
    auth = AuthSettings(require_master_key=True)
    assert sealer_for(auth, tmp_path, serving=False).current_id
    with pytest.raises(MasterKeyError):
        sealer_for(auth, tmp_path)
