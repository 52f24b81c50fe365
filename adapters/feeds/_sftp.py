"""The SFTP drop: the folder source's behaviour over a remote directory (asyncssh).

The server's host key is always checked, against a known_hosts file or a pinned SHA256
fingerprint: there is no trust on first use. Remote mtimes are the server's clock, so a file
is read only once it has looked the same for `settle_s` across our own polls. One connection
is kept; any failure drops it and the next call connects again.
"""

from __future__ import annotations

import contextlib
import os
import stat as stat_mod
import time
from collections.abc import Awaitable, Callable
from posixpath import join
from typing import TypeVar

import asyncssh
import msgspec

from adapters.feeds._files import DropSource, Entry, MiB, _check_common, _default_extensions
from adapters.feeds._source import SourceError
from adapters.runtime.logs import get_logger

__all__ = ["SftpOptions", "SftpSource"]

log = get_logger(__name__)
T = TypeVar("T")


class SftpOptions(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    host: str
    port: int = 22
    username: str
    password: str | None = None
    password_env: str | None = None
    """The name of an environment variable holding the password (kept out of settings)."""
    client_key: str | None = None
    """Path of a private key file (OpenSSH format)."""
    known_hosts: str | None = None
    host_key_fingerprint: str | None = None
    """`SHA256:…` as `ssh-keygen -lf` prints it."""
    path: str = "."
    settle_s: float = 2.0
    max_file_bytes: int = 256 * MiB
    extensions: list[str] = msgspec.field(default_factory=_default_extensions)
    connect_timeout_s: float = 15.0

    def __post_init__(self) -> None:
        _check_common(self.settle_s, self.max_file_bytes, self.extensions)
        if (self.known_hosts is None) == (self.host_key_fingerprint is None):
            raise ValueError("give exactly one of known_hosts or host_key_fingerprint")
        if self.host_key_fingerprint is not None and not self.host_key_fingerprint.startswith(
            "SHA256:"
        ):
            raise ValueError("host_key_fingerprint: SHA256:… as ssh-keygen -lf prints it")
        if self.password is None and self.password_env is None and self.client_key is None:
            raise ValueError("give password, password_env or client_key")


class _PinnedClient(asyncssh.SSHClient):
    def __init__(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        return bool(key.get_fingerprint("sha256") == self._fingerprint)


class SftpSource(DropSource):
    def __init__(self, options: SftpOptions, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(
            settle_s=options.settle_s,
            max_file_bytes=options.max_file_bytes,
            extensions=options.extensions,
            where=f"sftp://{options.username}@{options.host}:{options.port}/{options.path}",
            clock=clock,
        )
        self.options = options
        self._conn: asyncssh.SSHClientConnection | None = None
        self._sftp: asyncssh.SFTPClient | None = None

    # -- the connection ---------------------------------------------------------------------

    async def _client(self) -> asyncssh.SFTPClient:
        if self._sftp is not None:
            return self._sftp
        o = self.options
        password = o.password
        if password is None and o.password_env is not None:
            password = os.environ.get(o.password_env)
            if password is None:
                raise SourceError(f"{self.where}: environment variable {o.password_env} unset")
        fingerprint = o.host_key_fingerprint
        try:
            conn = await asyncssh.connect(
                o.host,
                o.port,
                username=o.username,
                password=password,
                client_keys=[o.client_key] if o.client_key else None,
                known_hosts=o.known_hosts if fingerprint is None else ([], [], []),
                client_factory=(lambda: _PinnedClient(fingerprint)) if fingerprint else None,
                agent_path=None,
                config=None,
                preferred_auth="publickey,password,keyboard-interactive",
                connect_timeout=o.connect_timeout_s,
                login_timeout=o.connect_timeout_s,
            )
        except asyncssh.HostKeyNotVerifiable:
            raise SourceError(
                f"{self.where}: the server's host key does not match the configured "
                + ("fingerprint" if fingerprint else "known_hosts")
            ) from None
        except asyncssh.PermissionDenied:
            raise SourceError(f"{self.where}: login refused for user {o.username}") from None
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise SourceError(f"{self.where}: cannot connect: {_reason(exc)}") from None
        try:
            self._sftp = await conn.start_sftp_client()
        except (OSError, asyncssh.Error) as exc:
            conn.close()
            raise SourceError(f"{self.where}: SFTP refused: {_reason(exc)}") from None
        self._conn = conn
        return self._sftp

    async def _call(self, what: str, op: Callable[[asyncssh.SFTPClient], Awaitable[T]]) -> T:
        """`op` on the connection; a failure drops the connection (the next call reconnects)
        and becomes a SourceError naming what failed."""
        sftp = await self._client()
        try:
            return await op(sftp)
        except asyncssh.SFTPError:
            raise
        except (OSError, asyncssh.Error) as exc:
            await self.close()
            raise SourceError(f"{self.where}: cannot {what}: {_reason(exc)}") from None

    def _remote(self, *parts: str) -> str:
        return join(self.options.path, *parts)

    # -- DropSource --------------------------------------------------------------------------

    async def _list(self) -> list[Entry]:
        async def op(sftp: asyncssh.SFTPClient) -> list[Entry]:
            entries = []
            for n in await sftp.readdir(self._remote()):
                a = n.attrs
                if a.permissions is not None and stat_mod.S_ISREG(a.permissions):
                    entries.append(Entry(str(n.filename), a.size or 0, float(a.mtime or 0)))
            return entries

        try:
            return await self._call("list the folder", op)
        except asyncssh.SFTPError as exc:
            raise SourceError(f"{self.where}: cannot list the folder: {_reason(exc)}") from None

    async def _stat(self, name: str) -> Entry | None:
        try:
            a = await self._call("stat a file", lambda s: s.lstat(self._remote(name)))
        except asyncssh.SFTPNoSuchFile:
            return None
        except asyncssh.SFTPError as exc:
            raise SourceError(f"{self.where}: cannot stat a file: {_reason(exc)}") from None
        return Entry(name, a.size or 0, float(a.mtime or 0))

    async def _read_bytes(self, name: str) -> bytes:
        async def op(sftp: asyncssh.SFTPClient) -> bytes:
            async with sftp.open(self._remote(name), "rb") as f:
                data: bytes = await f.read(self.max_file_bytes + 1)
            return data

        try:
            return await self._call("read a file", op)
        except asyncssh.SFTPError as exc:
            raise SourceError(f"{self.where}: cannot read a file: {_reason(exc)}") from None

    async def _exists(self, sub: str, name: str) -> bool:
        async def op(sftp: asyncssh.SFTPClient) -> bool:
            return bool(await sftp.exists(self._remote(sub, name)))

        return await self._call("look into the result folder", op)

    async def _write_result(self, sub: str, name: str, data: bytes) -> None:
        async def op(sftp: asyncssh.SFTPClient) -> None:
            await sftp.makedirs(self._remote(sub), exist_ok=True)
            tmp = self._remote(sub, f".{name}.tmp")
            async with sftp.open(tmp, "wb") as f:
                await f.write(data)
            await sftp.posix_rename(tmp, self._remote(sub, name))

        try:
            await self._call(f"write a result file into {sub}/", op)
        except asyncssh.SFTPError as exc:
            raise SourceError(f"{self.where}: cannot write into {sub}/: {_reason(exc)}") from None

    async def _move(self, name: str, sub: str, new_name: str) -> None:
        async def op(sftp: asyncssh.SFTPClient) -> None:
            # plain SFTP rename refuses an existing target: never overwrites
            await sftp.rename(self._remote(name), self._remote(sub, new_name))

        try:
            await self._call(f"move a file into {sub}/", op)
        except asyncssh.SFTPError as exc:
            raise SourceError(f"{self.where}: cannot move into {sub}/: {_reason(exc)}") from None

    async def close(self) -> None:
        sftp, conn = self._sftp, self._conn
        self._sftp = self._conn = None
        if sftp is not None:
            sftp.exit()
        if conn is not None:
            conn.close()
            with contextlib.suppress(OSError, asyncssh.Error):
                await conn.wait_closed()


def _reason(exc: BaseException) -> str:
    """What went wrong, without anything the server might echo of our input."""
    if isinstance(exc, asyncssh.Error):
        return f"{type(exc).__name__}: {exc.reason}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
