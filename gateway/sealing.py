"""Encryption at rest of hospital signing secrets (AES-256-GCM under a master key).

HMAC verification needs the secret itself, so it cannot be stored as a one-way hash; it is
sealed instead, bound to its hospital code so a sealed value cannot be moved to another row.

Each sealed value names the key that sealed it (an 8-byte key id, a hash of the key), so keys
can rotate: a process holds the current key and the previous ones (`auth.previous_master_keys`),
seals with the current one, opens with whichever the value names, and `dipgw hospitals reseal`
moves every secret to the current key. A process whose keys cannot open what the database
holds refuses to start (`check_keys`) instead of answering every hospital with an error.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.runtime.errors import DipgwError
from adapters.runtime.settings import AuthSettings

_VERSION = b"\x01"
_KEY_ID_BYTES = 8
_NONCE_BYTES = 12


class MasterKeyError(DipgwError, ValueError):
    """A master key that is missing, malformed, or does not open the stored secrets."""


def key_id(master_key: bytes) -> str:
    """The key's public name (hex): in every value it seals, in logs and in the key check."""
    return hashlib.sha256(b"dipgw-seal-key-id:" + master_key).digest()[:_KEY_ID_BYTES].hex()


def decode_key(text: str, where: str) -> bytes:
    """A base64url AES-256 key from settings; a clear error naming `where` otherwise."""
    text = text.strip()
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{where}: not base64url text") from None
    if len(key) != 32:
        raise MasterKeyError(f"{where}: must be 32 bytes (base64url), got {len(key)}")
    return key


class Sealer:
    """Seals with the first key; opens with any of them."""

    def __init__(self, master_key: bytes, previous: Sequence[bytes] = ()) -> None:
        keys = [master_key, *previous]
        for key in keys:
            if len(key) != 32:
                raise MasterKeyError("a master key must be 32 bytes (base64url in settings)")
        self.current_id = key_id(master_key)
        self._aeads = {bytes.fromhex(key_id(k)): AESGCM(k) for k in keys}
        self._current = self._aeads[bytes.fromhex(self.current_id)]

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(k.hex() for k in self._aeads)

    def seal(self, secret: bytes, bound_to: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        head = _VERSION + bytes.fromhex(self.current_id) + nonce
        return head + self._current.encrypt(nonce, secret, bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> bytes:
        named = sealed_key_id(sealed)
        if named is None:  # sealed before key ids: any of the keys may have made it
            for aead in self._aeads.values():
                try:
                    return aead.decrypt(sealed[:12], sealed[12:], bound_to.encode())
                except InvalidTag:
                    continue
            raise MasterKeyError("no configured master key opens this secret")
        aead = self._aeads.get(bytes.fromhex(named))
        if aead is None:
            raise MasterKeyError(f"sealed under key {named}, which is not configured")
        body = sealed[1 + _KEY_ID_BYTES :]
        return aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], bound_to.encode())

    def is_current(self, sealed: bytes) -> bool:
        return sealed_key_id(sealed) == self.current_id


def sealed_key_id(sealed: bytes) -> str | None:
    """The key id a sealed value names; None for a value sealed before key ids."""
    # A legacy value is nonce (12) + ciphertext (≥ 16): it may start with 0x01 by chance, so
    # the length settles it only together with the version byte (≥ 1 + 8 + 12 + 16).
    if sealed[:1] == _VERSION and len(sealed) >= 1 + _KEY_ID_BYTES + _NONCE_BYTES + 16:
        return sealed[1 : 1 + _KEY_ID_BYTES].hex()
    return None


def check_keys(sealer: Sealer, province_key_ids: Iterable[str]) -> bool:
    """Whether this key ring may serve a database whose secrets are sealed under
    `province_key_ids` (the keys in use there): True when the current key is new to it (a
    rotation has begun, or the database is new); `MasterKeyError` when the ring lacks one."""
    in_use = set(province_key_ids)
    missing = sorted(in_use - sealer.key_ids)
    if missing:
        raise MasterKeyError(
            f"auth.master_key: the database's secrets are sealed under key {', '.join(missing)}"
            f"; this process has key {', '.join(sorted(sealer.key_ids))}. Set "
            "DIPGW_AUTH_MASTER_KEY (or auth.master_key_file) to the province's key on every "
            "gateway host; after a rotation keep the old key in auth.previous_master_keys "
            "until `dipgw hospitals reseal` has run"
        )
    return sealer.current_id not in in_use


def load_master_key(configured: str, state_dir: Path, *, key_file: str = "") -> bytes:
    """The configured key (`auth.master_key`, else `auth.master_key_file`), else a key file
    under the state directory, made once (mode 0600). A host that made its own key while the
    database holds another's is refused at start (`Registry.check_sealing`)."""
    if configured:
        return decode_key(configured, "auth.master_key")
    if key_file:
        try:
            text = Path(key_file).read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise MasterKeyError(f"auth.master_key_file {key_file}: unreadable ({exc})") from None
        return decode_key(text, f"auth.master_key_file {key_file}")
    path = state_dir / "master.key"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(new_key().encode())
    return decode_key(path.read_text(encoding="ascii"), str(path))


def new_key() -> str:
    return base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()


def sealer_for(auth: AuthSettings, state_dir: Path, *, serving: bool = True) -> Sealer:
    """The process's key ring from its settings (the one way every command builds it).
    `serving=False`: a worker-only process, which opens no secret, is not held to
    `require_master_key`."""
    if serving and auth.require_master_key and not (auth.master_key or auth.master_key_file):
        raise MasterKeyError(
            "auth.master_key: required (auth.require_master_key): every gateway host must "
            "share the province's key. Set DIPGW_AUTH_MASTER_KEY or auth.master_key_file "
            "(a new key: `dipgw hospitals new-key`)"
        )
    current = load_master_key(auth.master_key, state_dir, key_file=auth.master_key_file)
    previous = [
        decode_key(text, f"auth.previous_master_keys[{i}]")
        for i, text in enumerate(t for t in auth.previous_master_keys.split(",") if t.strip())
    ]
    return Sealer(current, previous)
