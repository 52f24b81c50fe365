from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag

from gateway.sealing import Sealer, load_master_key


def test_sealed_secret_opens_only_for_its_hospital(tmp_path: Path) -> None:
    sealer = Sealer(load_master_key("", tmp_path))
    sealed = sealer.seal(b"top-secret", "H44010000001")
    assert b"top-secret" not in sealed
    assert sealer.open(sealed, "H44010000001") == b"top-secret"
    with pytest.raises(InvalidTag):
        sealer.open(sealed, "H44010000002")  # moved to another row: refused
    with pytest.raises(InvalidTag):
        Sealer(os.urandom(32)).open(sealed, "H44010000001")  # another master key


def test_local_master_key_is_made_once_and_private(tmp_path: Path) -> None:
    first = load_master_key("", tmp_path)
    assert load_master_key("", tmp_path) == first and len(first) == 32
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600


def test_configured_key_wins_and_must_be_32_bytes(tmp_path: Path) -> None:
    import base64

    key = os.urandom(32)
    configured = base64.urlsafe_b64encode(key).decode().rstrip("=")
    assert load_master_key(configured, tmp_path) == key
    assert not (tmp_path / "master.key").exists()
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(b"short")
