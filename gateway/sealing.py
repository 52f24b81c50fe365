"""Encryption at rest of hospital signing secrets (AES-256-GCM under a master key).

HMAC verification needs the secret itself, so it cannot be stored as a one-way hash; it is
sealed instead, bound to its hospital code so a sealed value cannot be moved to another row.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class Sealer:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != 32:
            raise ValueError("the master key must be 32 bytes (base64url-encoded in settings)")
        self._aead = AESGCM(master_key)

    def seal(self, secret: bytes, bound_to: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, secret, bound_to.encode())

    def open(self, sealed: bytes, bound_to: str) -> bytes:
        return self._aead.decrypt(sealed[:12], sealed[12:], bound_to.encode())


def load_master_key(configured: str, state_dir: Path) -> bytes:
    """The configured key (`auth.master_key`), else a local key file made once (mode 0600).

    Production sets `DIPGW_AUTH_MASTER_KEY`; the key file is for a single-machine setup.
    """
    if configured:
        return base64.urlsafe_b64decode(configured + "=" * (-len(configured) % 4))
    path = state_dir / "master.key"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)))
    return base64.urlsafe_b64decode(path.read_bytes().strip())
