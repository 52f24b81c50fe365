"""`dipgw tokens …` and the start-up report, as an operator meets them: the real CLI in a
subprocess, on the session's database."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from gateway.runtime import LocalServices
from tests.commands import dipgw_sync

ROOT = Path(__file__).parents[2]


def _dipgw(
    services: LocalServices | None, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return dipgw_sync(services, *args, **extra)


@pytest.mark.integration
def test_issue_list_and_revoke_by_id_never_showing_the_token(services: LocalServices) -> None:
    issued = _dipgw(
        services, "tokens", "issue", "--role", "ops", "--label", "cli-ops", "--expires-in", "7"
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    for args, env in (
        (("--role", "city", "--admdvs", "440100", "--label", "cli-gz"), {}),
        (("--role", "metrics", "--label", "cli-short"), {"DIPGW_AUTH_TOKEN_TTL_DAYS": "30"}),
    ):
        other = _dipgw(services, "tokens", "issue", *args, **env)
        assert other.returncode == 0, other.stderr

    listing = _dipgw(services, "tokens", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    assert token not in listing.stdout and token.rsplit("_", 1)[-1] not in listing.stdout
    rows = {row["label"]: row for row in json.loads(listing.stdout)}
    assert f"(id {rows['cli-ops']['id']}," in issued.stdout
    for label, days in (("cli-ops", 7), ("cli-gz", 90), ("cli-short", 30)):
        created, expires = rows[label]["created_at"], rows[label]["expires_at"]
        assert created.endswith("+08:00") and expires.endswith("+08:00")
        lifetime = datetime.fromisoformat(expires) - datetime.fromisoformat(created)
        assert lifetime == timedelta(days=days), label  # --expires-in, the default, the setting
    mine = rows["cli-ops"]
    assert (mine["role"], mine["state"], rows["cli-gz"]["admdvs"]) == ("ops", "active", "440100")
    table = _dipgw(services, "tokens", "list")
    assert "+08:00" in table.stdout and token not in table.stdout

    revoked = _dipgw(services, "tokens", "revoke", mine["id"])
    assert revoked.returncode == 0 and f"revoked token {mine['id']}" in revoked.stdout
    listing = _dipgw(services, "tokens", "list", "--json")
    rows = {row["label"]: row for row in json.loads(listing.stdout)}
    assert (rows["cli-ops"]["state"], rows["cli-gz"]["state"]) == ("revoked", "active")
    unknown = _dipgw(services, "tokens", "revoke", "0123456789ab")
    assert unknown.returncode == 1 and "no token has id" in unknown.stderr


@pytest.mark.parametrize(
    ("command", "setting", "named"),
    [
        (("tokens", "list"), {"DIPGW_AUTH_MASTER_KEY": "not-a-key!"}, "auth.master_key"),
        (("up", "--no-gateway"), {"DIPGW_AUTH_MASTER_KEY": "c2hvcnQ"}, "DIPGW_AUTH_MASTER_KEY"),
        (
            ("hospitals", "list"),
            {"DIPGW_AUTH_MASTER_KEY_FILE": "/nonexistent/master.key"},
            "auth.master_key_file = '/nonexistent/master.key': unreadable",
        ),
    ],
)
def test_a_bad_master_key_is_a_start_up_report_naming_the_setting(
    command: tuple[str, ...], setting: dict[str, str], named: str, tmp_path: Path
) -> None:
    """Every command stops before touching anything (no database or broker is configured
    here: none is reached), exit 2, the setting named, no traceback, the key never echoed."""
    result = _dipgw(None, *command, DIPGW_STATE_DIR=str(tmp_path), **setting)
    assert result.returncode == 2, result.stderr
    assert named in result.stderr and "Traceback" not in result.stderr
    assert all(value not in result.stderr for value in setting.values() if "/" not in value)
    assert not (tmp_path / "pgdata").exists()


def test_every_bad_setting_is_reported_at_once(tmp_path: Path) -> None:
    result = _dipgw(
        None,
        "tokens",
        "list",
        DIPGW_STATE_DIR=str(tmp_path),
        DIPGW_AUTH_MASTER_KEY="c2hvcnQ",
        DIPGW_AUTH_PREVIOUS_MASTER_KEYS="c2hvcnQ",
        DIPGW_AUTH_TOKEN_TTL_DAYS="0",
        DIPGW_HTTP_PORT="eighty",
        DIPGW_AUTH_NO_SUCH="1",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    for named in (
        "auth.master_key: must be 32 bytes",
        "auth.previous_master_keys[0]: must be 32 bytes",
        "auth.token_ttl_days",
        "http.port",
        "DIPGW_AUTH_NO_SUCH: unknown setting auth.no_such",
    ):
        assert named in result.stderr, result.stderr
