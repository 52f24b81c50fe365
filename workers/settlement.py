"""Settlement runs: `dipgw settle month|year` over a city's stored scored cases.

Cases: the latest revision in `scored_cases` of every case TREATED in the city (cross-city and
out-of-province patients included, under the treating city's rules, seed 002 第三十一条),
status `scored`, of the clearing year; a month takes those discharged in it
(`facts.discharge_date`). The fund is the case's insutype (`message.insutype`); cases of a fund
the policy does not list are counted, not settled. Fund payments are `facts.fund_pay`.

A run is stored whole and never changed (`settlement_runs`, `settlement_lines`,
`settlement_cases`); running a period again stores the next `seq`, with each line's adjustment
against the previous run's and the cases that changed since (new, changed, gone). The money
math is `workers.dip._settle` (its docstring states the rounding).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg
import msgspec

from workers.dip import (
    HospitalInput,
    MonthLine,
    PointValue,
    PriorMonths,
    SettleCase,
    YearLine,
    case_changes,
    case_points,
    money,
    settle_month,
    settle_year,
    settlement_totals,
)
from workers.settlement_policy import SettlementInputError, StoredPolicy, policy_in_force

_RUN_LOCK = 0x6469_7073 + 1

# Line columns stored as numeric(16,2), besides `figures` (every figure, as text).
_MONEY = ("dip_amount", "other_payments", "deductions", "deposit", "settled", "payable")
_LISTED_CHANGES = 1000  # case changes listed in a run's totals (all are counted)


class NoPolicy(SettlementInputError):
    """No settlement policy in force for the city and year."""


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: int
    city: str
    period: str
    kind: str
    seq: int
    point_values: dict[str, Any]
    totals: dict[str, Any]
    lines: list[dict[str, Any]]
    inputs: dict[str, Any]


def _case_query(month: bool) -> str:
    where = "AND facts->>'discharge_date' LIKE $3 || '-%'" if month else ""
    return f"""
        SELECT fixmedins_code, setl_id, revision, case_score, total_cost, ruleset_version,
               coalesce(message->>'insutype', facts->>'insutype') AS insutype,
               facts->>'fund_pay' AS fund_pay
        FROM scored_cases
        WHERE treating_city = $1 AND clearing_year = $2 AND status = 'scored'
          AND case_score IS NOT NULL {where}"""


async def _cases(
    conn: asyncpg.Connection, city: str, year: int, month: str | None, funds: Sequence[str]
) -> tuple[list[SettleCase], dict[str, Any]]:
    args: list[Any] = [city, year] + ([month] if month else [])
    rows = await conn.fetch(_case_query(month is not None), *args)
    cases: list[SettleCase] = []
    rulesets: dict[str, int] = {}
    other_funds: dict[str, int] = {}
    for r in rows:
        fund = r["insutype"] or ""
        if fund not in funds:
            other_funds[fund] = other_funds.get(fund, 0) + 1
            continue
        version = r["ruleset_version"] or ""
        rulesets[version] = rulesets.get(version, 0) + 1
        cases.append(
            SettleCase(
                fixmedins_code=r["fixmedins_code"],
                setl_id=r["setl_id"],
                revision=r["revision"],
                fund=fund,
                points=case_points(r["case_score"]),
                total_cost=r["total_cost"] or Decimal(0),
                fund_pay=None if r["fund_pay"] is None else Decimal(r["fund_pay"]),
            )
        )
    facts = {"cases": len(cases), "rulesets": rulesets, "left_out_by_insutype": other_funds}
    return cases, facts


async def _special_points(
    conn: asyncpg.Connection, city: str, year: int, funds: Sequence[str]
) -> tuple[dict[tuple[str, str], Decimal], str]:
    """Σ approved special-review points per (hospital, fund) (S2's `special_reviews`)."""
    if await conn.fetchval("SELECT to_regclass('special_reviews')") is None:
        return {}, "no special_reviews table"
    rows = await conn.fetch(
        """SELECT r.fixmedins_code,
                  coalesce(s.message->>'insutype', s.facts->>'insutype') AS fund,
                  sum(r.approved_points) AS points, count(*) AS n
           FROM special_reviews r
           JOIN scored_cases s USING (fixmedins_code, setl_id)
           WHERE r.status = 'approved' AND r.treating_city = $1 AND r.clearing_year = $2
           GROUP BY 1, 2""",
        city,
        year,
    )
    found = {
        (r["fixmedins_code"], r["fund"]): Decimal(r["points"]) for r in rows if r["fund"] in funds
    }
    return found, f"{sum(r['n'] for r in rows)} approved"


async def _prior_months(
    conn: asyncpg.Connection, city: str, year: int
) -> tuple[dict[tuple[str, str], PriorMonths], dict[str, int]]:
    """The latest run of each month of `year`: its prepay, deposit and deductions per line."""
    runs = await conn.fetch(
        """SELECT DISTINCT ON (period) period, run_id, seq FROM settlement_runs
           WHERE city = $1 AND kind = 'month' AND period LIKE $2 || '-%'
           ORDER BY period, seq DESC""",
        city,
        str(year),
    )
    rows = await conn.fetch(
        """SELECT fixmedins_code, fund, sum(settled) AS settled, sum(deposit) AS deposit,
                  sum(deductions) AS deductions
           FROM settlement_lines WHERE run_id = ANY($1::bigint[]) GROUP BY 1, 2""",
        [r["run_id"] for r in runs],
    )
    prior = {
        (r["fixmedins_code"], r["fund"]): PriorMonths(
            prepaid=r["settled"], deposit=r["deposit"], deductions=r["deductions"]
        )
        for r in rows
    }
    return prior, {r["period"]: r["run_id"] for r in runs}


def _builtins(obj: object) -> Any:
    return msgspec.to_builtins(obj)


async def _store(
    conn: asyncpg.Connection,
    stored: StoredPolicy,
    period: str,
    kind: str,
    inputs: dict[str, Any],
    pvs: Mapping[str, PointValue],
    lines: Sequence[MonthLine | YearLine],
    cases: Sequence[SettleCase],
    extra_totals: Mapping[str, Any] | None = None,
) -> RunResult:
    city = stored.policy.city
    await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", _RUN_LOCK, int(city))
    prev = await conn.fetchrow(
        """SELECT run_id, seq FROM settlement_runs WHERE city = $1 AND period = $2 AND kind = $3
           ORDER BY seq DESC LIMIT 1""",
        city,
        period,
        kind,
    )
    seq = 1 if prev is None else prev["seq"] + 1
    before_lines: dict[tuple[str, str], Decimal] = {}
    before_cases: dict[tuple[str, str], tuple[int, Decimal]] = {}
    if prev is not None:
        for r in await conn.fetch(
            "SELECT fixmedins_code, fund, payable FROM settlement_lines WHERE run_id = $1",
            prev["run_id"],
        ):
            before_lines[(r["fixmedins_code"], r["fund"])] = r["payable"]
        for r in await conn.fetch(
            "SELECT fixmedins_code, setl_id, revision, points FROM settlement_cases"
            " WHERE run_id = $1",
            prev["run_id"],
        ):
            before_cases[(r["fixmedins_code"], r["setl_id"])] = (r["revision"], r["points"])
    after_cases = {(c.fixmedins_code, c.setl_id): (c.revision, c.points) for c in cases}
    changes = case_changes(before_cases, after_cases) if prev is not None else []

    records: list[dict[str, Any]] = []
    for line in lines:
        key = (line.fixmedins_code, line.fund)
        figures = _builtins(line)
        # the first run of a period adjusts nothing; a later one, against the previous
        adjustment = (
            Decimal("0.00") if prev is None else line.payable - before_lines.pop(key, Decimal(0))
        )
        records.append({**figures, "adjustment": str(adjustment)})
    for (code, fund), payable in sorted(before_lines.items()):  # lines gone since
        zero = "0.00"
        records.append(
            {
                "fixmedins_code": code,
                "fund": fund,
                "cases": 0,
                "points": "0",
                **dict.fromkeys(_MONEY, zero),
                "adjustment": str(-payable),
            }
        )
    totals = settlement_totals(records)
    totals["case_changes"] = {
        "new": sum(c.change == "new" for c in changes),
        "changed": sum(c.change == "changed" for c in changes),
        "gone": sum(c.change == "gone" for c in changes),
        "listed": _builtins(changes[:_LISTED_CHANGES]),
    }
    totals.update(extra_totals or {})
    inputs = {
        **inputs,
        "policy": {
            "policy_id": stored.policy_id,
            "seq": stored.seq,
            "version": stored.policy.version,
            "sha256": stored.content_sha256,
        },
        "previous_run_id": None if prev is None else prev["run_id"],
    }
    point_values = {fund: _builtins(pv) for fund, pv in pvs.items()}
    run_id = await conn.fetchval(
        """INSERT INTO settlement_runs (city, period, kind, seq, clearing_year, policy_id,
               inputs, point_values, totals)
           VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb) RETURNING run_id""",
        city,
        period,
        kind,
        seq,
        stored.policy.clearing_year,
        stored.policy_id,
        msgspec.json.encode(inputs).decode(),
        msgspec.json.encode(point_values).decode(),
        msgspec.json.encode(totals).decode(),
    )
    await conn.copy_records_to_table(
        "settlement_lines",
        records=[
            (
                run_id,
                r["fixmedins_code"],
                r["fund"],
                r["cases"],
                Decimal(r["points"]),
                *(Decimal(r[m]) for m in _MONEY),
                Decimal(r["adjustment"]),
                msgspec.json.encode(r).decode(),
            )
            for r in records
        ],
        columns=[
            "run_id",
            "fixmedins_code",
            "fund",
            "cases",
            "points",
            *_MONEY,
            "adjustment",
            "figures",
        ],
    )
    await conn.copy_records_to_table(
        "settlement_cases",
        records=[
            (run_id, c.fixmedins_code, c.setl_id, c.revision, c.fund, c.points) for c in cases
        ],
        columns=["run_id", "fixmedins_code", "setl_id", "revision", "fund", "points"],
    )
    return RunResult(
        run_id=run_id,
        city=city,
        period=period,
        kind=kind,
        seq=seq,
        point_values=point_values,
        totals=totals,
        lines=records,
        inputs=inputs,
    )


def _sources(source: dict[str, str] | None) -> list[dict[str, str]]:
    return [] if source is None else [source]


async def run_month(
    pool: asyncpg.Pool,
    city: str,
    month: str,
    inputs: Mapping[str, HospitalInput] | None = None,
    source: dict[str, str] | None = None,
) -> RunResult:
    """Settle `month` ('YYYY-MM') of `city` and store it as the period's next run."""
    year = int(month[:4])
    stored = await policy_in_force(pool, city, year)
    if stored is None:
        raise NoPolicy(f"no settlement policy for {city}, clearing year {year}")
    funds = sorted(stored.policy.funds)
    async with pool.acquire() as conn, conn.transaction():
        cases, facts = await _cases(conn, city, year, month, funds)
        pvs, lines = settle_month(stored.policy, cases, inputs)
        earlier = await _earlier_months(conn, city, year, month, funds, pvs)
        return await _store(
            conn,
            stored,
            month,
            "month",
            {**facts, "input_files": _sources(source)},
            pvs,
            lines,
            cases,
            {"earlier_months": earlier},
        )


async def _earlier_months(
    conn: asyncpg.Connection,
    city: str,
    year: int,
    month: str,
    funds: Sequence[str],
    pvs: Mapping[str, PointValue],
) -> dict[str, Any]:
    """Cases of the year's earlier months that changed since their month's latest run (new,
    another revision or score, gone): reported with this run, per hospital × fund, their
    points and amount at the 预算点值 — paid when that month is run again, and at clearing."""
    runs = await conn.fetch(
        """SELECT DISTINCT ON (period) period, run_id FROM settlement_runs
           WHERE city = $1 AND kind = 'month' AND period LIKE $2 || '-%' AND period < $3
           ORDER BY period, seq DESC""",
        city,
        str(year),
        month,
    )
    if not runs:
        return {"months": [], "new": 0, "changed": 0, "gone": 0, "lines": [], "listed": []}
    before: dict[tuple[str, str], tuple[int, Decimal]] = {}
    fund_of: dict[tuple[str, str], str] = {}
    for r in await conn.fetch(
        """SELECT fixmedins_code, setl_id, revision, points, fund FROM settlement_cases
           WHERE run_id = ANY($1::bigint[])""",
        [r["run_id"] for r in runs],
    ):
        key = (r["fixmedins_code"], r["setl_id"])
        before[key] = (r["revision"], r["points"])
        fund_of[key] = r["fund"]
    after: dict[tuple[str, str], tuple[int, Decimal]] = {}
    for period in (r["period"] for r in runs):
        now, _ = await _cases(conn, city, year, period, funds)
        for case in now:
            after[(case.fixmedins_code, case.setl_id)] = (case.revision, case.points)
            fund_of.setdefault((case.fixmedins_code, case.setl_id), case.fund)
    changes = case_changes(before, after)
    deltas: dict[tuple[str, str], Decimal] = {}
    for c in changes:
        key = (c.fixmedins_code, fund_of[(c.fixmedins_code, c.setl_id)])
        delta = (c.points_after or Decimal(0)) - (c.points_before or Decimal(0))
        deltas[key] = deltas.get(key, Decimal(0)) + delta
    return {
        "months": [r["period"] for r in runs],
        "new": sum(c.change == "new" for c in changes),
        "changed": sum(c.change == "changed" for c in changes),
        "gone": sum(c.change == "gone" for c in changes),
        "lines": [
            {
                "fixmedins_code": code,
                "fund": fund,
                "points": str(points),
                "amount": str(money(points * pvs[fund].estimate)),
            }
            for (code, fund), points in sorted(deltas.items())
        ],
        "listed": _builtins(changes[:_LISTED_CHANGES]),
    }


async def run_year(
    pool: asyncpg.Pool,
    city: str,
    year: int,
    inputs: Mapping[str, HospitalInput],
    source: dict[str, str] | None = None,
) -> RunResult:
    """Clear `year` of `city` and store it as the year's next run."""
    stored = await policy_in_force(pool, city, year)
    if stored is None:
        raise NoPolicy(f"no settlement policy for {city}, clearing year {year}")
    funds = sorted(stored.policy.funds)
    async with pool.acquire() as conn, conn.transaction():
        cases, facts = await _cases(conn, city, year, None, funds)
        special, special_note = await _special_points(conn, city, year, funds)
        prior, month_runs = await _prior_months(conn, city, year)
        pvs, lines = settle_year(stored.policy, cases, inputs, special, prior)
        extra = {
            **facts,
            "special_reviews": special_note,
            "month_runs": month_runs,
            "input_files": _sources(source),
        }
        return await _store(conn, stored, str(year), "year", extra, pvs, lines, cases)


async def find_run(
    pool: asyncpg.Pool, city: str, period: str, seq: int | None = None
) -> dict[str, Any] | None:
    """A stored run (the latest of the period unless `seq`) with its lines, as plain data."""
    kind = "month" if "-" in period else "year"
    row = await pool.fetchrow(
        """SELECT run_id, city, period, kind, seq, clearing_year, policy_id, inputs::text,
                  point_values::text, totals::text, created_at
           FROM settlement_runs WHERE city = $1 AND period = $2 AND kind = $3
             AND ($4::int IS NULL OR seq = $4) ORDER BY seq DESC LIMIT 1""",
        city,
        period,
        kind,
        seq,
    )
    if row is None:
        return None
    lines = await pool.fetch(
        """SELECT figures::text FROM settlement_lines WHERE run_id = $1
           ORDER BY fixmedins_code, fund""",
        row["run_id"],
    )
    run = dict(row)
    for name in ("inputs", "point_values", "totals"):
        run[name] = msgspec.json.decode(run[name])
    run["lines"] = [msgspec.json.decode(r["figures"]) for r in lines]
    return run


async def run_history(pool: asyncpg.Pool, city: str, period: str) -> list[dict[str, Any]]:
    kind = "month" if "-" in period else "year"
    rows = await pool.fetch(
        """SELECT run_id, seq, created_at, totals->'city'->>'payable' AS payable,
                  totals->'city'->>'cases' AS cases
           FROM settlement_runs WHERE city = $1 AND period = $2 AND kind = $3
           ORDER BY seq DESC""",
        city,
        period,
        kind,
    )
    return [dict(r) for r in rows]


def diff_runs(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per (hospital, fund): points and money of run `a` against run `b`, where they differ."""
    fields = ("cases", "points", "dip_amount", "settled", "payable")
    left = {(r["fixmedins_code"], r["fund"]): r for r in a["lines"]}
    right = {(r["fixmedins_code"], r["fund"]): r for r in b["lines"]}
    out = []
    for key in sorted(left.keys() | right.keys()):
        ra, rb = left.get(key, {}), right.get(key, {})
        row: dict[str, Any] = {"fixmedins_code": key[0], "fund": key[1]}
        differs = False
        for f in fields:
            va, vb = Decimal(str(ra.get(f, 0))), Decimal(str(rb.get(f, 0)))
            row[f] = {"from": str(va), "to": str(vb), "delta": str(vb - va)}
            differs |= va != vb
        if differs:
            out.append(row)
    return out
