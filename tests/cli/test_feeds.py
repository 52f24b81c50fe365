"""`dipgw feeds …` as an operator runs it, on the real database: add (checked whole), list
(secrets masked), pause, resume, status, remove."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gateway.runtime import LocalServices, Stack
from tests.commands import dipgw_sync
from tests.conftest import Client

pytestmark = pytest.mark.integration
ROOT = Path(__file__).parents[2]


def _dipgw(services: LocalServices, *args: str) -> subprocess.CompletedProcess[str]:
    return dipgw_sync(services, *args)


async def test_an_operator_adds_lists_pauses_resumes_and_removes_a_feed(
    services: LocalServices, stack: Stack, hospital: Client, tmp_path: Path
) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    added = _dipgw(
        services, "feeds", "add", "cli-drop", "--kind", "folder",
        "--hospital", "H44010000001", "--option", f"path={drop}", "--option", "settle_s=1",
        "--paused",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "feed cli-drop added (folder)" in added.stdout
    again = _dipgw(
        services, "feeds", "add", "cli-drop", "--kind", "folder",
        "--hospital", "H44010000001", "--option", f"path={drop}",
    )  # fmt: skip
    assert again.returncode == 2 and "exists (use --replace" in again.stderr

    listed = _dipgw(services, "feeds", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (mine,) = [f for f in json.loads(listed.stdout) if f["name"] == "cli-drop"]
    assert mine["options"] == {"path": str(drop), "settle_s": 1}  # a TOML value: a number
    assert mine["paused"] is True and mine["origin"] == "cli"

    for verb, paused in (("resume", False), ("pause", True)):
        done = _dipgw(services, "feeds", verb, "cli-drop")
        assert done.returncode == 0, done.stderr
        (mine,) = [
            f
            for f in json.loads(_dipgw(services, "feeds", "list", "--json").stdout)
            if f["name"] == "cli-drop"
        ]
        assert mine["paused"] is paused

    status = _dipgw(services, "feeds", "status", "cli-drop", "--json")
    assert status.returncode == 0, status.stderr
    (state,) = json.loads(status.stdout)
    assert state["state"] == "paused" and state["rows_read"] == 0
    table = _dipgw(services, "feeds", "status")
    assert "cli-drop" in table.stdout and "paused" in table.stdout

    assert _dipgw(services, "feeds", "remove", "cli-drop").returncode == 0
    gone = _dipgw(services, "feeds", "status", "cli-drop")
    assert gone.returncode == 1 and "no feed 'cli-drop'" in gone.stderr


def test_a_bad_feed_is_refused_with_every_problem_named(services: LocalServices) -> None:
    refused = _dipgw(
        services, "feeds", "add", "bad feed", "--kind", "folder",
        "--hospital", "H44019999999", "--option", "paht=/srv/drop", "--batch-size", "0",
    )  # fmt: skip
    assert refused.returncode == 2
    for named in ("name:", "batch_size:", "options:", "hospitals: H44019999999"):
        assert named in refused.stderr, refused.stderr
    unreadable = _dipgw(
        services, "feeds", "add", "x", "--kind", "folder", "--hospital", "H44010000001",
        "--option", "path",
    )  # fmt: skip
    assert unreadable.returncode == 2 and "expected KEY=VALUE" in unreadable.stderr


def test_a_password_is_never_listed(services: LocalServices, hospital: Client) -> None:
    added = _dipgw(
        services, "feeds", "add", "cli-db", "--kind", "postgres", "--paused",
        "--hospital", "H44010000001",
        "--option", "dsn=postgresql://dip:Pa55word@his-db.example:5432/his",
        "--option", "password=Pa55word", "--option", "table=his_setl",
        "--option", "time_column=upd_time", "--option", "key_column=setl_id",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    try:
        for args in (("list",), ("list", "--json"), ("status",), ("status", "--json")):
            out = _dipgw(services, "feeds", *args)
            assert out.returncode == 0, out.stderr
            assert "cli-db" in out.stdout and "Pa55word" not in out.stdout + out.stderr
    finally:
        _dipgw(services, "feeds", "remove", "cli-db")
