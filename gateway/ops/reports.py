"""The quality reports over the quality worker's rollups, and their CSV form.

Plain queries on a pool, no HTTP: the API (`gateway.ops.routes`) and `dipgw quality report`
(`gateway.commands.quality`) answer with the same functions.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from contracts import CST, LAG_BUCKETS, lag_percentile, shown
from gateway import params
from gateway.errors import BadQuery

DIMENSIONS = ("及时性", "完整性", "规范性", "合理性")
SEVERITIES = ("reject", "warn")
GROUPINGS = ("hospital", "city", "day", "rule")


def period(start: str | None, end: str | None, today: date | None = None) -> tuple[date, date]:
    """The report period, both days included; by default the last 7 days (CST)."""
    today = today or datetime.now(CST).date()
    last = params.day(end, "to", default=today)
    first = params.day(start, "from", default=last - timedelta(days=6))
    if first > last or (last - first).days > 366:
        raise BadQuery("from must not be after to, and the period at most 366 days")
    return first, last


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _with_rates(row: dict[str, Any], hist: list[int], timely_days: int) -> dict[str, Any]:
    received, accepted, warned = row["received"], row["accepted"], row["warned"]
    known = sum(hist)
    row.update(
        pass_rate=_rate(accepted, received),  # 结算清单填写规范率: passed every reject rule
        clean_rate=_rate(accepted - warned, received),  # not even a warning
        reject_rate=_rate(row["rejected"], received),
        timely_rate=_rate(sum(hist[:timely_days]), known),  # 上传及时率
        lag_known=known,
        lag_p50_h=_round(lag_percentile(hist, 0.5)),
        lag_p90_h=_round(lag_percentile(hist, 0.9)),
        lag_p99_h=_round(lag_percentile(hist, 0.99)),
    )
    return row


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


_KEYS = {"hospital": "fixmedins_code", "city": "city", "day": "day"}
_WHERE = """day BETWEEN $1 AND $2 AND ($3::text IS NULL OR city = $3)
            AND ($4::text IS NULL OR fixmedins_code = $4)"""


async def report(
    pool: asyncpg.Pool,
    *,
    by: str,
    start: date,
    end: date,
    city: str | None = None,
    hospital: str | None = None,
    timely_days: int = 7,
) -> dict[str, Any]:
    """The quality report for a period, one row per hospital, city, day or rule."""
    if by not in GROUPINGS:
        raise BadQuery(f"by must be one of {', '.join(GROUPINGS)}")
    args = (start, end, city, hospital)
    head = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "by": by,
        "city": city,
        "hospital": hospital,
        "timely_days": timely_days,
    }
    if by == "rule":
        return {**head, "rows": await _rules(pool, args)}
    key = _KEYS[by]
    rows = await pool.fetch(
        f"""SELECT {key} AS key, min(city) AS city, count(DISTINCT fixmedins_code) AS hospitals,
                   sum(received)::int AS received, sum(accepted)::int AS accepted,
                   sum(rejected)::int AS rejected, sum(warned)::int AS warned,
                   sum(revisions)::int AS revisions, sum(resubmissions)::int AS resubmissions,
                   max(last_seen) AS last_seen
            FROM quality_daily WHERE {_WHERE} GROUP BY {key} ORDER BY {key}""",
        *args,
    )
    hists: dict[Any, list[int]] = defaultdict(lambda: [0] * LAG_BUCKETS)
    for r in await pool.fetch(
        f"""SELECT {key} AS key, i, sum(x)::int AS n
            FROM quality_daily, unnest(lag_hist) WITH ORDINALITY AS u(x, i)
            WHERE {_WHERE} GROUP BY {key}, i""",
        *args,
    ):
        hists[r["key"]][r["i"] - 1] = r["n"]
    dims: dict[Any, dict[str, dict[str, int]]] = defaultdict(
        lambda: {d: dict.fromkeys(SEVERITIES, 0) for d in DIMENSIONS}
    )
    for r in await pool.fetch(
        f"""SELECT {key} AS key, dimension, severity, sum(records)::int AS n
            FROM quality_dimension_daily WHERE {_WHERE} GROUP BY {key}, dimension, severity""",
        *args,
    ):
        dims[r["key"]].setdefault(r["dimension"], dict.fromkeys(SEVERITIES, 0))[r["severity"]] = r[
            "n"
        ]
    names: dict[str, str] = {}
    if by == "hospital" and rows:
        names = {
            r["fixmedins_code"]: r["name"]
            for r in await pool.fetch(
                "SELECT fixmedins_code, name FROM hospitals WHERE fixmedins_code = ANY($1)",
                [r["key"] for r in rows],
            )
        }
    out = []
    for r in rows:
        row = dict(r)
        k = row.pop("key")
        row = {key: k.isoformat() if isinstance(k, date) else k, **row}
        if by == "hospital":
            row["name"] = names.get(k, "")
            row.pop("hospitals")
        if by == "city":
            row.pop("city")
            row["city"] = k
        row["last_seen"] = shown(row["last_seen"]) if row["last_seen"] else None
        row["dimensions"] = dims[k]
        out.append(_with_rates(row, hists[k], timely_days))
    return {**head, "rows": out}


async def _rules(pool: asyncpg.Pool, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    received = await pool.fetchval(
        f"SELECT coalesce(sum(received), 0)::int FROM quality_daily WHERE {_WHERE}", *args
    )
    rows = await pool.fetch(
        f"""SELECT rule, severity, min(dimension) AS dimension, sum(findings)::int AS findings,
                   sum(records)::int AS records, count(DISTINCT fixmedins_code) AS hospitals,
                   (array_agg(ex ORDER BY day DESC))[1:5] AS examples
            FROM quality_rule_daily
            LEFT JOIN LATERAL unnest(examples) AS ex ON true
            WHERE {_WHERE} GROUP BY rule, severity ORDER BY 5 DESC, rule""",
        *args,
    )
    # The lateral join repeats a row per example: count findings from the plain table.
    plain = {
        (r["rule"], r["severity"]): r
        for r in await pool.fetch(
            f"""SELECT rule, severity, sum(findings)::int AS findings,
                       sum(records)::int AS records FROM quality_rule_daily
                WHERE {_WHERE} GROUP BY rule, severity""",
            *args,
        )
    }
    out = []
    for r in rows:
        counts = plain[(r["rule"], r["severity"])]
        out.append(
            {
                "rule": r["rule"],
                "severity": r["severity"],
                "dimension": r["dimension"],
                "findings": counts["findings"],
                "records": counts["records"],
                "hospitals": r["hospitals"],
                "share": _rate(counts["records"], received),
                "examples": [e for e in r["examples"] if e],
            }
        )
    out.sort(key=lambda row: (-row["records"], row["rule"]))
    return out


async def alerts(
    pool: asyncpg.Pool, *, city: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """SELECT alert_key, kind, city, fixmedins_code, value, threshold, message, message_en,
                  raised_at FROM quality_alerts WHERE ($1::text IS NULL OR city = $1)
           ORDER BY raised_at DESC LIMIT $2""",
        city,
        limit,
    )
    return [{**dict(r), "raised_at": shown(r["raised_at"])} for r in rows]


def to_csv(result: dict[str, Any]) -> str:
    """One line per row; dimensions flattened to `<dimension>_<severity>` columns."""
    rows = result["rows"]
    buffer = io.StringIO()
    if not rows:
        return ""
    first = rows[0]
    columns = [c for c in first if c not in ("dimensions", "examples")]
    if "dimensions" in first:
        columns += [f"{d}_{s}" for d in DIMENSIONS for s in SEVERITIES]
    if "examples" in first:
        columns.append("examples")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        flat = dict(row)
        for d, by_sev in row.get("dimensions", {}).items():
            for s, n in by_sev.items():
                flat[f"{d}_{s}"] = n
        if "examples" in row:
            flat["examples"] = " ".join(row["examples"])
        writer.writerow(["" if flat.get(c) is None else flat.get(c) for c in columns])
    return buffer.getvalue()


async def hospital_admdvs(pool: asyncpg.Pool, hospital: str) -> str | None:
    """The region a hospital is registered in (None: not registered)."""
    admdvs = await pool.fetchval("SELECT admdvs FROM hospitals WHERE fixmedins_code = $1", hospital)
    return None if admdvs is None else str(admdvs)
