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


def test_bench_validate_peer_json(capsys: pytest.CaptureFixture[str]) -> None:
    """The obvious peer validates the same clean lists in the same run: its rate and the
    ratio, and it refuses none of them (else it would time refusals)."""
    assert run(["bench", "validate", "--json", "--peer", "--records", "100", "--rounds", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["peer_records_per_s"] > 0 and result["peer_rejected"] == 0
    ratio = result["records_per_s"] / result["peer_records_per_s"]
    assert abs(result["validate_ratio"] - ratio) < 0.01 * max(1.0, ratio)


def test_bench_validate_peer_without_pydantic_names_the_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pydantic", None)  # import pydantic now fails
    assert run(["bench", "validate", "--peer", "--records", "10", "--rounds", "1"]) == 1
    assert "pip install 'dipgw[test]'" in capsys.readouterr().err
