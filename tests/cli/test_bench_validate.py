"""`dipgw bench validate`: both figures and their ratio, as JSON."""

from __future__ import annotations

import json

import pytest

from tests.commands import run


def test_bench_validate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["bench", "validate", "--json", "--records", "200", "--rounds", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["records"] == 200 and result["rejected"] == 0
    assert result["records_per_s"] > 0 and result["decode_only_records_per_s"] > 0
    ratio = result["records_per_s"] / result["decode_only_records_per_s"]
    assert abs(result["ratio"] - ratio) < 0.01
    assert 3000 <= result["avg_bytes"] <= 5000
    # the findings set rejects every list once; lists coded from the whole tables pass
    assert result["with_findings_rejected"] == 200 and result["with_findings_records_per_s"] > 0
    assert result["full_tables_rejected"] == 0 and result["full_tables_records_per_s"] > 0
    findings = result["with_findings_records_per_s"] / result["records_per_s"]
    assert abs(result["with_findings_ratio"] - findings) < 0.01
    assert result["codes_load_s"] > 0 and result["codes_memory_mb"] > 1


def test_bench_without_verb_is_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["bench"]) == 2
    assert run(["bench", "validate", "--records", "0"]) == 2


def test_other_verbs_can_plug_in() -> None:
    from gateway.commands import bench

    calls: list[str] = []

    def setup(verbs: object) -> None:
        parser = verbs.add_parser("ingest")  # type: ignore[attr-defined]
        parser.set_defaults(func=lambda _args: calls.append("ran") or 0)

    bench.add_verb("ingest", setup)
    try:
        assert run(["bench", "ingest"]) == 0
        assert calls == ["ran"]
    finally:
        bench._SETUPS.pop("ingest", None)
