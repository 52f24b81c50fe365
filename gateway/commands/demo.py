"""`dipgw demo`: the whole pipeline on one machine with a generated feed, then a summary.

Starts local Kafka + embedded PostgreSQL (unless configured), the gateway and workers; pushes
settlement lists from several hospitals in several cities over real HTTP (some resent, some
corrected, a few malformed); waits until every accepted list is stored and scored; prints
counts per stage, the DIP deviation shares per city beside the shares the cost law predicts
(the feed draws each case's cost log-normally around its group's average), and a few stored
rows (personal data masked); stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import msgspec
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from adapters.runtime.logs import configure_logging
from contracts import mask_value
from gateway.accounts import RegistryError
from gateway.commands._common import UsageError, fail, settings_from
from gateway.demo_feed import HOSPITALS, DemoFeed, expected_shares
from gateway.localkafka import KafkaError
from gateway.runtime import LocalServices, Stack, running_stack
from gateway.signing import signed_headers
from workers.dip import SAMPLE_RULES, rules_for_year, sample_rules
from workers.rules_store import import_rules, read_rules_files


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("demo", help="run the pipeline on a generated feed and report")
    parser.add_argument(
        "--records", type=int, default=200, help="settlement lists to push (default 200)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for storage")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.records < 1:
        return fail("--records must be at least 1")
    try:
        settings = settings_from(args)
    except UsageError as exc:
        return fail(str(exc))
    # The terminal is for the report; the services' log lines go to a file beside their state.
    settings.state_path.mkdir(parents=True, exist_ok=True)
    log_path = settings.state_path / "demo.log"
    configure_logging(settings.log.level, "json", stream=open(log_path, "a", encoding="utf-8"))  # noqa: SIM115
    console = Console()
    started = time.monotonic()
    try:
        with console.status("starting Kafka and PostgreSQL…"):
            services = LocalServices(settings).start()
    except KafkaError as exc:
        return fail(str(exc), 1)
    try:
        console.print(
            f"[green]✓[/] Kafka {services.bootstrap}"
            f"{' (local, ' + services.kafka.version + ')' if services.kafka else ''}; "
            f"PostgreSQL {'embedded' if services.pg else 'configured'}"
            f" — {time.monotonic() - started:.1f}s"
        )
        return asyncio.run(_demo(services, args, console))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    finally:
        with console.status("stopping…"):
            services.stop()
        console.print(
            f"[green]✓[/] stopped everything it started — total {time.monotonic() - started:.1f}s;"
            f" service log: {log_path}"
        )


async def _import_sample_rules(stack: Stack, years: tuple[int, ...]) -> list[str]:
    """The sample DIP rules (workers/dip/data) of the cities that have some, in force for the
    feed's clearing years (written for 2026; the demo discharges its cases in the last days)."""
    for path in SAMPLE_RULES.values():
        rules, sources = read_rules_files([path])
        for year in years:
            await import_rules(stack.pool, rules_for_year(rules, year), sources)
    return sorted(SAMPLE_RULES)


#: deviation kinds shown in their own column; the rest (cost_fraction, extreme, …) as "other"
_SHOWN = ("normal", "low", "high")


def _share(n: int, total: int) -> str:
    return f"{n} ({n / total:.0%})" if total else "0"


def deviation_table(rows: list[Any]) -> Table:
    """Deviation kinds per treating city — count and share of the city's scored cases — beside
    the shares the feed's cost law predicts for the city's bounds (`expected_shares`)."""
    table = Table(
        title="DIP deviation shares by treating city (this run; expected from the cost law)"
    )
    for col in ("city", "scored", "normal", "low", "high", "other", "expected n / l / h"):
        table.add_column(col, justify="right")
    by_city: dict[str, dict[str, int]] = {}
    for row in rows:
        by_city.setdefault(row["city"], {})[row["kind"]] = int(row["n"])
    for city, kinds in sorted(by_city.items()):
        total = sum(kinds.values())
        other = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()) if k not in _SHOWN)
        expected = ""
        if city in SAMPLE_RULES:
            e = expected_shares(sample_rules(city).policy)
            expected = f"{e['normal']:.0%} / {e['low']:.0%} / {e['high']:.0%}"
        table.add_row(
            city, str(total), *(_share(kinds.get(k, 0), total) for k in _SHOWN), other, expected
        )
    return table


async def _wait_scored(stack: Stack, since: datetime, timeout: float) -> None:
    """Until every case stored in this run is grouped and scored (or marked unscored)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        missing = await stack.pool.fetchval(
            """SELECT count(*) FROM cases c JOIN receipts r ON r.receipt_id = c.receipt_id
               LEFT JOIN scored_cases s ON s.fixmedins_code = c.fixmedins_code
                    AND s.setl_id = c.setl_id AND s.revision = c.revision
               WHERE r.received_at >= $1 AND s.setl_id IS NULL""",
            since,
        )
        if missing == 0:
            return
        await asyncio.sleep(0.2)


async def _register_hospitals(stack: Stack) -> dict[str, bytes]:
    """The demo's hospitals, each with a fresh signing secret (rotated if already registered)."""
    secrets: dict[str, bytes] = {}
    for code, name, admdvs, level in HOSPITALS:
        try:
            secret = await stack.registry.add_hospital(code, name, admdvs, level)
        except RegistryError:
            secret = await stack.registry.rotate_secret(code)
        secrets[code] = secret.encode()
    return secrets


async def _push_all(
    stack: Stack, feed: list[list[bytes]], console: Console, secrets: dict[str, bytes]
) -> dict[str, Any]:
    outcome: dict[str, Any] = {
        "accepted": 0,
        "revised": 0,
        "duplicate": 0,
        "rejected": 0,
        "failed": 0,
        "receipts": [],
        "rejections": [],
    }
    limit = asyncio.Semaphore(16)
    path = "/v1/settlements"
    async with aiohttp.ClientSession() as http:
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("pushing settlement lists", total=sum(map(len, feed)))

            async def push(body: bytes) -> None:
                code = msgspec.json.decode(body)["fixmedins_code"]
                headers = {
                    "Content-Type": "application/json",
                    **signed_headers(code, secrets[code], "POST", path, body),
                }
                async with limit, http.post(stack.url + path, data=body, headers=headers) as resp:
                    answer = await resp.json()
                if resp.status == 202:
                    kind = answer["status"]
                    outcome[
                        kind if answer["revision"] == 1 or kind == "duplicate" else "revised"
                    ] += 1
                    outcome["receipts"].append(answer["receipt_id"])
                elif resp.status == 422:
                    outcome["rejected"] += 1
                    outcome["rejections"].append(answer["errors"][0])
                else:
                    outcome["failed"] += 1
                progress.advance(task)

            # Originals first, then resends and corrections, so a correction is the later revision.
            for wave in feed:
                await asyncio.gather(*(push(body) for body in wave))
    return outcome


async def _wait_stored(stack: Stack, receipts: list[str], since: datetime, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    wanted = len(set(receipts))
    stored = 0
    while time.monotonic() < deadline:
        stored = await stack.pool.fetchval(
            "SELECT count(*) FROM receipts"
            " WHERE receipt_id = ANY($1::uuid[]) AND status = 'stored'",
            list(set(receipts)),
        )
        if stored >= wanted:
            break
        await asyncio.sleep(0.2)
    return int(stored)


async def _demo(services: LocalServices, args: argparse.Namespace, console: Console) -> int:
    seed = args.seed if args.seed is not None else int(time.time())
    demo_feed = DemoFeed(random.Random(seed))
    feed = demo_feed.build(args.records)
    since = datetime.now(UTC)
    async with running_stack(services.settings, services.bootstrap, services.dsn) as stack:
        years = demo_feed.clearing_years
        imported = await _import_sample_rules(stack, years)
        workers = ", ".join(t.get_name() for t in stack.tasks)
        console.print(
            f"[green]✓[/] gateway {stack.url}; workers: {workers}; DIP sample rules in force"
            f" for {', '.join(imported)} (clearing year {', '.join(map(str, years))}); each"
            " hospital's cases are drawn from its city's catalog"
        )
        t0 = time.monotonic()
        waves = [[item.body for item in feed if item.wave == w] for w in (0, 1)]
        outcome = await _push_all(stack, waves, console, await _register_hospitals(stack))
        push_s = time.monotonic() - t0
        with console.status("waiting for the sink to store every accepted list…"):
            stored = await _wait_stored(stack, outcome["receipts"], since, args.timeout)
        flow_s = time.monotonic() - t0
        with console.status("waiting for grouping and scoring…"):
            await _wait_scored(stack, since, args.timeout)
        scored_s = time.monotonic() - t0
        scoring = await stack.pool.fetch(
            """SELECT s.treating_city AS city, count(*) AS cases,
                      count(*) FILTER (WHERE s.status = 'scored') AS scored,
                      count(*) FILTER (WHERE s.scope = 'cross_city') AS cross_city,
                      coalesce(sum(s.case_score), 0) AS score,
                      coalesce(sum(s.estimated_payment), 0) AS payment,
                      string_agg(DISTINCT coalesce(s.deviation, s.unscored_rule), ' ') AS mix
               FROM scored_cases s JOIN cases c USING (fixmedins_code, setl_id)
               JOIN receipts r ON r.receipt_id = c.receipt_id
               WHERE r.received_at >= $1 GROUP BY 1 ORDER BY 1""",
            since,
        )
        deviations = await stack.pool.fetch(
            """SELECT s.treating_city AS city, s.deviation AS kind, count(*) AS n
               FROM scored_cases s JOIN cases c USING (fixmedins_code, setl_id)
               JOIN receipts r ON r.receipt_id = c.receipt_id
               WHERE r.received_at >= $1 AND s.status = 'scored' GROUP BY 1, 2""",
            since,
        )
        examples = await stack.pool.fetch(
            """SELECT DISTINCT ON (s.deviation)
                      s.fixmedins_code || ':' || s.setl_id AS case_key, s.group_code,
                      s.deviation, s.case_score, s.estimated_payment, s.scope
               FROM scored_cases s JOIN cases c USING (fixmedins_code, setl_id)
               JOIN receipts r ON r.receipt_id = c.receipt_id
               WHERE r.received_at >= $1 AND s.status = 'scored'
               ORDER BY s.deviation, s.scope, s.case_score DESC""",
            since,
        )
        in_kafka = await stack.pool.fetchval(
            "SELECT count(*) FROM receipts"
            " WHERE receipt_id = ANY($1::uuid[]) AND kafka_offset IS NOT NULL",
            list(set(outcome["receipts"])),
        )
        rows = await stack.pool.fetch(
            """SELECT c.fixmedins_code, c.setl_id, c.revision, c.mdtrtarea_admvs, c.insuplc_admdvs,
                      c.record->'input'->'setlinfo'->>'psn_name' AS psn_name,
                      c.record->'input'->'setlinfo'->>'certno' AS certno
               FROM cases c JOIN receipts r ON r.receipt_id = c.receipt_id
               WHERE r.received_at >= $1 ORDER BY c.revision DESC, c.setl_id LIMIT 5""",
            since,
        )
        by_city = await stack.pool.fetch(
            """SELECT c.mdtrtarea_admvs AS city, count(*) AS cases,
                      count(*) FILTER (WHERE left(c.insuplc_admdvs, 4)
                                       <> left(c.mdtrtarea_admvs, 4)) AS cross_city
               FROM cases c JOIN receipts r ON r.receipt_id = c.receipt_id
               WHERE r.received_at >= $1 GROUP BY 1 ORDER BY 1""",
            since,
        )

    stages = Table(title=f"dipgw demo — {len(feed)} pushes, seed {seed}")
    stages.add_column("stage")
    stages.add_column("count", justify="right")
    stages.add_row("pushed over HTTP", str(len(feed)))
    stages.add_row("accepted (202, new receipt)", str(outcome["accepted"]))
    stages.add_row("corrected lists (202, next revision)", str(outcome["revised"]))
    stages.add_row("identical resends (202, same receipt)", str(outcome["duplicate"]))
    stages.add_row("rejected (422)", str(outcome["rejected"]))
    stages.add_row("other answers", str(outcome["failed"]))
    stages.add_row("in Kafka (acks=all)", str(in_kafka))
    stages.add_row("stored in PostgreSQL (revisions)", str(stored))
    stages.add_row("distinct cases stored", str(sum(row["cases"] for row in by_city)))
    console.print(stages)
    console.print(
        f"push {push_s:.2f}s ({len(feed) / push_s:.0f} req/s); push → all stored {flow_s:.2f}s"
    )

    dip = Table(title="DIP grouping and scoring by treating city (this run)")
    for col in (
        "city",
        "cases",
        "scored",
        "cross-city",
        "total score",
        "est. payment ¥",
        "deviation kinds",
    ):
        dip.add_column(col, justify="right")
    for row in scoring:
        dip.add_row(
            row["city"],
            str(row["cases"]),
            str(row["scored"]),
            str(row["cross_city"]),
            f"{row['score']:,.1f}",
            f"{row['payment']:,.2f}",
            row["mix"] or "",
        )
    console.print(dip)
    console.print(deviation_table(list(deviations)))
    top = Table(title="one scored case of each deviation kind")
    for col in ("case key", "group", "deviation", "score", "payment ¥", "scope"):
        top.add_column(col, no_wrap=True)
    for row in examples:
        top.add_row(
            row["case_key"],
            row["group_code"] or "",
            row["deviation"] or "",
            f"{row['case_score']:.1f}",
            f"{row['estimated_payment'] or 0:,.2f}",
            row["scope"],
        )
    console.print(top)
    console.print(f"push → every list grouped and scored {scored_s:.2f}s")

    cities = Table(title="cases by treating city (this run)")
    for col in ("mdtrtarea_admvs", "cases", "cross-city"):
        cities.add_column(col, justify="right")
    for row in by_city:
        cities.add_row(row["city"], str(row["cases"]), str(row["cross_city"]))
    console.print(cities)

    sample = Table(title="a few stored cases (personal data masked)")
    for col in ("case key", "rev", "treating", "insured", "psn_name", "certno"):
        sample.add_column(col, no_wrap=True)
    for row in rows:
        sample.add_row(
            f"{row['fixmedins_code']}:{row['setl_id']}",
            str(row["revision"]),
            row["mdtrtarea_admvs"],
            row["insuplc_admdvs"] or "",
            mask_value("name", row["psn_name"] or ""),
            mask_value("certno", row["certno"] or ""),
        )
    console.print(sample)
    if outcome["rejections"]:
        err = outcome["rejections"][0]
        console.print(
            f"example rejection: {err['rule']} {err['field']}: {err['message']}"
            f" ({err['message_en']})"
        )
    ok = stored == len(set(outcome["receipts"])) and outcome["failed"] == 0
    console.print(
        "[bold green]all accepted lists stored[/]"
        if ok
        else "[bold red]some lists were not stored[/]"
    )
    return 0 if ok else 1
