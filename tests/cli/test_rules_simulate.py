"""`dipgw rules simulate` against the real PostgreSQL: a year of stored cases under draft rules,
reported (table, JSON, CSV, HTML) and stored, with the published results left untouched."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import tomllib
import uuid
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

from adapters.runtime.postgres import migrate
from gateway.runtime import LocalServices
from tests.builders import rules_variant
from tests.commands import cli_env, dipgw
from workers.dip import (
    SAMPLE_RULES,
    CaseFacts,
    encode_settlement_policy,
    group_and_score,
    load_rules,
    make_case_facts,
    parse_settlement_policy,
    sample_rules,
)
from workers.dip._sample import DATA_DIR

pytestmark = pytest.mark.integration

AT = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)
HOSPITALS = {"H44010000011": "3A", "H44010000012": "2M", "H44010000013": "1"}
FEN = Decimal("0.01")

_INSERT = """
INSERT INTO scored_cases (fixmedins_code, setl_id, revision, receipt_id, received_at, scored_at,
    treating_city, insured_city, treating_admdvs, insured_admdvs, scope, clearing_year, status,
    unscored_rule, group_code, deviation, case_score, estimated_payment, facts, message)
VALUES ($1, $2, 1, $3, $4, $4, '440100', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
    $16::jsonb, '{}'::jsonb)
"""


def _published(rng: random.Random) -> list[tuple[Any, ...]]:
    """Cases of three hospitals scored under the sample rules in force, as the pipeline stored
    them; plus a withdrawn list, a case without facts and a case of another year."""
    rules = sample_rules("440100")
    rows: list[tuple[Any, ...]] = []
    for i in range(90):
        code = list(HOSPITALS)[i % 3]
        f = make_case_facts(rng, (rules,))
        f = msgspec.structs.replace(
            f, fixmedins_code=code, hospital_level=HOSPITALS[code], case_key=f"{code}:S{i}"
        )
        try:
            _, s = group_and_score(f, rules)
            scored = ("scored", None, s.group_code, s.deviation, s.case_score, s.estimated_payment)
        except ValueError:
            scored = ("unscored", "DIP_SCORE", None, None, None, None)
        rows.append(_row(f, f"S{i}", 2026, scored, msgspec.json.encode(f).decode()))
    last = f
    rows.append(_row(last, "W1", 2026, ("unscored", "DIP_WITHDRAWN", None, None, None, None), "{}"))
    rows.append(_row(last, "N1", 2026, ("scored", None, "X", "normal", 1.0, Decimal(1)), None))
    rows.append(_row(last, "Y1", 2025, ("scored", None, "X", "normal", 1.0, Decimal(1)), "{}"))
    return rows


def _row(f: CaseFacts, setl: str, year: int, scored: tuple[Any, ...], facts: str | None) -> tuple:
    insured_city = f.insured_admdvs[:4] + "00"
    scope = (
        "same_city"
        if insured_city == "440100"
        else "cross_city"
        if f.insured_admdvs[:2] == "44"
        else "out_of_province"
    )
    return (
        f.fixmedins_code,
        setl,
        uuid.uuid4(),
        AT,
        insured_city,
        f.treating_admdvs,
        f.insured_admdvs,
        scope,
        year,
        *scored,
        facts,
    )


async def _snapshot(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT s::text AS t FROM scored_cases s ORDER BY fixmedins_code, setl_id"
    )
    return [r["t"] for r in rows]


def _draft_settlement(path: Path) -> Path:
    """The example settlement policy as a draft: 居民 with a 1 000 000 budget and no bounds."""
    text = (DATA_DIR / "440100-2026-settlement.toml").read_text(encoding="utf-8")
    text = text.replace('budget = "4200000000.00"', 'budget = "1000000.00"')
    text = re.sub(r'(initial = "10.8500"[^\n]*)\nfloor = "0.85"\nceiling = "1.05"', r"\1", text)
    path.write_text(text.replace('version = "2026.1"', 'version = "2026.2-draft"'), "utf-8")
    return path


def _pay(points: dict[str, Decimal], pv: dict[str, Decimal]) -> Decimal:
    return sum(((p * pv[k]).quantize(FEN, ROUND_HALF_UP) for k, p in points.items()), Decimal(0))


async def test_simulate_reports_stores_and_leaves_published_results(
    services: LocalServices, fresh_dsn: str, tmp_path: Path
) -> None:
    env = cli_env(fresh_dsn, services.bootstrap, tmp_path / "state")
    conn = await asyncpg.connect(fresh_dsn)
    try:
        await migrate(conn)
        code, _, err = await dipgw(
            "rules", "import", "440100", "2026", str(SAMPLE_RULES["440100"]), env=env
        )
        assert code == 0, err
        rows = _published(random.Random(2026))
        await conn.executemany(_INSERT, rows)
        await conn.execute(
            """INSERT INTO hospitals (fixmedins_code, name, admdvs, level, secret_enc)
               VALUES ('H44010000012', '广州市测试医院', '440104', '2M', '\\x00')"""
        )
        before = await _snapshot(conn)

        # A draft with a higher 职工 point value (same catalog and coefficients).
        draft = rules_variant(tmp_path, "440100", 2026, point_310="13.00", version="2026.9")
        out_csv, out_html = tmp_path / "sim.csv", tmp_path / "sim.html"
        code, out, err = await dipgw(
            "rules", "simulate", "440100", "2026", str(draft), "--json",
            "--csv", str(out_csv), "--html", str(out_html), env=env,
        )  # fmt: skip
        assert code == 0, err
        assert await _snapshot(conn) == before  # the published results are untouched
        doc = json.loads(out)
        assert (doc["seq"], doc["skipped"]) == (1, 1)
        assert doc["point_values"]["current"] == {"310": "12.35", "390": "10.80"}
        assert doc["point_values"]["draft"] == {"310": "13.00", "390": "10.80"}
        assert "/2026/2026.9@" in doc["draft_version"]

        # Expected per hospital: the published side from the rows; the draft from the scorer
        # under the draft file, priced per fund and rounded to the fen.
        draft_rules = load_rules(draft)
        pv = {"310": Decimal("12.35"), "390": Decimal("10.80")}
        pv_draft = {"310": Decimal("13.00"), "390": Decimal("10.80")}
        cur: dict[str, dict[str, Decimal]] = {h: {} for h in HOSPITALS}
        new: dict[str, dict[str, Decimal]] = {h: {} for h in HOSPITALS}
        for r in rows[:90]:
            f = msgspec.json.decode(r[-1], type=CaseFacts)
            if r[9] == "scored":
                cur[r[0]][f.insutype] = cur[r[0]].get(f.insutype, 0) + Decimal(repr(r[13]))
            try:
                _, s = group_and_score(f, draft_rules)
            except ValueError:
                continue  # unscored under the draft too
            new[r[0]][f.insutype] = new[r[0]].get(f.insutype, 0) + Decimal(repr(s.case_score))
        lines = {ln["fixmedins_code"]: ln for ln in doc["lines"]}
        assert set(lines) == set(HOSPITALS)
        assert lines["H44010000012"]["name"] == "广州市测试医院"
        for h in HOSPITALS:
            want_cur, want_new = _pay(cur[h], pv), _pay(new[h], pv_draft)
            ln = lines[h]
            assert ln["cases"] == 30
            assert Decimal(ln["payment_current"]) == want_cur
            assert Decimal(ln["payment_draft"]) == want_new
            assert Decimal(ln["delta"]) == want_new - want_cur > 0
            assert sum(ln["kinds_current"].values()) == sum(ln["kinds_draft"].values()) == 30
        total = doc["total"]
        assert total["cases"] == 90
        assert Decimal(total["delta"]) == sum(Decimal(ln["delta"]) for ln in doc["lines"])

        # Stored for the API, the same figures.
        run = await conn.fetchrow("SELECT * FROM simulation_runs WHERE sim_id = $1", doc["sim_id"])
        assert (run["city"], run["clearing_year"], run["cases"]) == ("440100", 2026, 90)
        assert run["payment_draft"] == Decimal(total["payment_draft"])
        stored = await conn.fetch(
            "SELECT * FROM simulation_lines WHERE sim_id = $1 ORDER BY fixmedins_code",
            doc["sim_id"],
        )
        assert [(r["fixmedins_code"], str(r["delta"])) for r in stored] == [
            (ln["fixmedins_code"], ln["delta"]) for ln in doc["lines"]
        ]

        # CSV: a BOM, one line per hospital and the city total; HTML: self-contained, charts.
        raw = out_csv.read_text(encoding="utf-8")
        assert raw.startswith("\ufeff")
        table = list(csv.DictReader(io.StringIO(raw.lstrip("\ufeff"))))
        assert [t["fixmedins_code"] for t in table] == [*sorted(HOSPITALS), ""]
        assert table[-1]["payment_draft"] == total["payment_draft"]
        page = out_html.read_text(encoding="utf-8")
        assert page.count("<svg") == 2 and "H44010000012" in page
        assert "<script" not in page and "src=" not in page and "href=" not in page
        assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")

        # The table for people names every hospital and the city total.
        code, out, err = await dipgw("rules", "simulate", "440100", "2026", str(draft), env=env)
        assert code == 0 and "simulation #2" in out and "city total" in out, err
        assert all(h in out for h in HOSPITALS) and "广州市测试医院" in out

        # Point values by the settlement policy: current policy in force (bounded: the 居民
        # 结算点值 of so few points is far above 1.05 × 10.85 = 11.3925), a draft policy
        # without bounds: 1 000 000 ÷ 0.65 ÷ the draft's 居民 points, to 4 decimals.
        policy = parse_settlement_policy(
            tomllib.loads((DATA_DIR / "440100-2026-settlement.toml").read_text("utf-8"))
        )
        await conn.execute(
            """INSERT INTO settlement_policies (city, clearing_year, seq, version,
                   content_sha256, document, special_review_quota_permille)
               VALUES ('440100', 2026, 1, $1, 'x', $2, 5)""",
            policy.version,
            encode_settlement_policy(policy).decode(),
        )
        draft_policy = _draft_settlement(tmp_path / "settle-draft.toml")
        code, out, err = await dipgw(
            "rules", "simulate", "440100", "2026", str(draft_policy), "--json", env=env
        )
        assert code == 0, err
        doc = json.loads(out)
        assert doc["seq"] == 3 and doc["draft_version"] == doc["current_version"]
        assert doc["point_values"]["current"]["390"] == "11.3925"
        details = json.loads(
            await conn.fetchval(
                "SELECT point_values::text FROM simulation_runs WHERE sim_id = $1", doc["sim_id"]
            )
        )["details"]["draft"]["390"]
        want = (Decimal("1000000.00") / Decimal("0.65") / Decimal(details["total_score"])).quantize(
            Decimal("0.0001"), ROUND_HALF_UP
        )
        assert details["bound"] is None and doc["point_values"]["draft"]["390"] == str(want)
        assert await _snapshot(conn) == before
    finally:
        await conn.close()
