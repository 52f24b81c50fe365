"""`dipgw hospitals …` and `dipgw tokens …` as an operator runs them, on the real database."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gateway.runtime import LocalServices
from tests.commands import dipgw_sync

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


def _dipgw(services: LocalServices, *args: str) -> subprocess.CompletedProcess[str]:
    return _run_with(services, {}, *args)


def test_hospital_lifecycle(services: LocalServices) -> None:
    added = _dipgw(
        services,
        "hospitals",
        "add",
        "H44060000123",
        "--name",
        "佛山测试医院",
        "--admdvs",
        "440600",
        "--level",
        "2",
        "--sign-type",
        "HMAC-SM3",
    )
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip().splitlines()[-1]
    assert len(secret) >= 40

    again = _dipgw(
        services,
        "hospitals",
        "add",
        "H44060000123",
        "--name",
        "x",
        "--admdvs",
        "440600",
        "--level",
        "2",
    )
    assert again.returncode == 1 and "already registered" in again.stderr

    bad = _dipgw(
        services, "hospitals", "add", "X123", "--name", "x", "--admdvs", "44", "--level", "2"
    )
    assert bad.returncode == 1 and "H followed by 11 digits" in bad.stderr

    listed = json.loads(_dipgw(services, "hospitals", "list", "--json").stdout)
    mine = next(h for h in listed if h["fixmedins_code"] == "H44060000123")
    assert (mine["admdvs"], mine["sign_type"], mine["status"]) == ("440600", "HMAC-SM3", "active")
    assert secret not in json.dumps(listed)  # the secret is never shown again

    rotated = _dipgw(services, "hospitals", "rotate-secret", "H44060000123")
    assert rotated.returncode == 0 and rotated.stdout.strip().splitlines()[-1] != secret
    assert _dipgw(services, "hospitals", "disable", "H44060000123").returncode == 0
    listed = json.loads(_dipgw(services, "hospitals", "list", "--json").stdout)
    assert next(h for h in listed if h["fixmedins_code"] == "H44060000123")["status"] == "disabled"
    missing = _dipgw(services, "hospitals", "disable", "H00000000000")
    assert missing.returncode == 1 and "not registered" in missing.stderr


def test_tokens_issue_list_revoke(services: LocalServices) -> None:
    issued = _dipgw(
        services, "tokens", "issue", "--role", "city", "--admdvs", "440300", "--label", "sz-cli"
    )
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("dipgw_city_")
    listing = _dipgw(services, "tokens", "list", "--json").stdout
    assert "sz-cli" in listing and token not in listing
    assert "revoked 1" in _dipgw(services, "tokens", "revoke", "--label", "sz-cli").stdout
    no_city = _dipgw(services, "tokens", "issue", "--role", "city", "--label", "x")
    assert no_city.returncode == 1 and "admdvs" in no_city.stderr


def test_a_host_with_another_master_key_gets_a_start_up_report_not_a_traceback(
    services: LocalServices, tmp_path: Path
) -> None:
    made = _dipgw(services, "hospitals", "new-key")
    assert made.returncode == 0, made.stderr
    foreign_key = made.stdout.strip().splitlines()[-1]
    env_key = {"DIPGW_AUTH_MASTER_KEY": foreign_key}
    refused = _run_with(services, env_key, "hospitals", "list")
    assert refused.returncode == 2
    assert "auth.master_key: the database's secrets are sealed under key" in refused.stderr
    assert "Traceback" not in refused.stderr
    malformed = _run_with(services, {"DIPGW_AUTH_MASTER_KEY": "abc"}, "hospitals", "list")
    assert malformed.returncode == 2 and "auth.master_key: must be 32 bytes" in malformed.stderr
    assert "Traceback" not in malformed.stderr


def _run_with(
    services: LocalServices, extra: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    return dipgw_sync(services, *args, **extra)
