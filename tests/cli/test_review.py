"""`dipgw review open|list|decide|show` as an operator runs it, on the session's database."""

from __future__ import annotations

import csv
import io
import json

import pytest

from gateway.runtime import LocalServices, Stack
from tests.builders import new_code
from tests.commands import dipgw_sync
from tests.gateway.settlement_rows import policy, scored_cases

pytestmark = pytest.mark.integration
YEAR = 2033  # no other test stores cases or policies of this clearing year


async def test_open_list_decide_show(services: LocalServices, stack: Stack) -> None:
    code = f"H4403{new_code()[5:]}"
    await scored_cases(stack.pool, code, 4, city="440300", year=YEAR)

    done = dipgw_sync(
        services,
        "review",
        "open",
        code,
        "S000001",
        "--reason",
        "ICU 45 天",
        "--by",
        "王审核",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    opened = json.loads(done.stdout)
    rid = str(opened["review_id"])
    assert opened["requested_by"] == "cli: 王审核" and opened["status"] == "open"
    assert opened["requested_at"].endswith("+08:00")

    again = dipgw_sync(services, "review", "open", code, "S000001", "--reason", "x")
    assert again.returncode == 1 and "REVIEW_DUPLICATE (setl_id)" in again.stderr
    absent = dipgw_sync(services, "review", "open", code, "NOPE", "--reason", "x")
    assert absent.returncode == 1 and "REVIEW_CASE_UNKNOWN" in absent.stderr

    no_policy = dipgw_sync(services, "review", "decide", rid, "--approve", "12.5", "--reason", "ok")
    assert no_policy.returncode == 1
    assert "REVIEW_NO_POLICY (special_review_quota_permille)" in no_policy.stderr
    assert "440300" in no_policy.stderr and str(YEAR) in no_policy.stderr
    await policy(stack.pool, "440300", YEAR, "500")  # 4 cases at 500‰: 2 approvals

    zero = dipgw_sync(services, "review", "decide", rid, "--approve", "0", "--reason", "ok")
    assert zero.returncode == 1 and "REVIEW_POINTS (approved_points)" in zero.stderr
    done = dipgw_sync(
        services, "review", "decide", rid, "--approve", "12.5", "--reason", "专家评议", "--by", "李"
    )
    assert done.returncode == 0, done.stderr
    assert "approved" in done.stdout and "12.5" in done.stdout and "cli: 李" in done.stdout
    twice = dipgw_sync(services, "review", "decide", rid, "--reject", "--reason", "no")
    assert twice.returncode == 1 and "REVIEW_DECIDED" in twice.stderr

    shown = dipgw_sync(services, "review", "show", rid)
    assert shown.returncode == 0, shown.stderr
    assert "open" in shown.stdout and "approve" in shown.stdout and "cli: 李" in shown.stdout
    assert "+08:00" in shown.stdout
    shown = dipgw_sync(services, "review", "show", rid, "--json")
    audit = json.loads(shown.stdout)["audit"]
    assert [(a["action"], a["actor"]) for a in audit] == [
        ("open", "cli: 王审核"),
        ("approve", "cli: 李"),
    ]
    assert audit[1]["before"]["status"] == "open" and audit[1]["after"]["approved_points"] == "12.5"
    missing = dipgw_sync(services, "review", "show", "999999999")
    assert missing.returncode == 1 and "REVIEW_UNKNOWN" in missing.stderr

    listed = dipgw_sync(services, "review", "list", "--hospital", code, "--csv", "--no-bom")
    assert listed.returncode == 0, listed.stderr
    (row,) = csv.DictReader(io.StringIO(listed.stdout))
    assert (row["review_id"], row["status"], row["approved_points"]) == (rid, "approved", "12.5")
    table = dipgw_sync(services, "review", "list", "--city", "440300", "--year", str(YEAR))
    assert table.returncode == 0 and code in table.stdout
    bad = dipgw_sync(services, "review", "list", "--city", "99")
    assert bad.returncode == 2 and "--city" in bad.stderr
