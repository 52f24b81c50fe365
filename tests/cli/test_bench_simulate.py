"""`dipgw bench simulate`: the figures it prints, in memory (no PostgreSQL needed)."""

from __future__ import annotations

import json

import pytest

from tests.commands import run


def test_bench_simulate_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests import commands

    monkeypatch.setattr(commands, "MODULES", (*commands.MODULES, "gateway.commands.bench_simulate"))
    assert run(["bench", "simulate", "--cases", "600", "--distinct", "200", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["mode"], result["cases"], result["distinct_cases"]) == ("memory", 600, 200)
    assert result["seconds"] > 0 and result["cases_per_s"] > 0 and result["hospitals"] > 10
    assert sum(result["kinds_draft"].values()) == 600
    # The draft raises 三甲 and lowers 职工's point value: the payment moves.
    assert result["payment_current"] != result["payment_draft"]
    assert run(["bench", "simulate", "--cases", "0"]) == 2
