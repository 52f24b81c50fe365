"""What every bench measures with, pure so that it can be tested without a broker: per-record
outcomes of batch answers, open-loop latency from the scheduled send, the achieved rate, and
the settings a run used (with what the cluster reports of itself)."""

from __future__ import annotations

from typing import Any

import aiohttp

RECORD_STATUSES = ("accepted", "duplicate", "rejected", "unavailable")


def count_records(status: int, answer: Any, sent: int) -> dict[str, int]:
    """Per-record outcome of one upload answer: counted from what the gateway said of each.

    A batch answer (200, or 503 when some records were unavailable) carries a `results` entry
    per record: each is counted under its own status, and only `accepted` ones are new
    records. A single-record answer is 202 (its `status`: accepted or duplicate), 422
    (rejected) or 503 (unavailable). Records the gateway gave no outcome for (a refused
    request — 4xx, other 5xx, a transport error as status 0 — or a batch answer shorter than
    the batch) are counted as `unanswered`.
    """
    counts = dict.fromkeys((*RECORD_STATUSES, "unanswered"), 0)
    results = answer.get("results") if isinstance(answer, dict) else None
    if status in (200, 503) and isinstance(results, list):
        for result in results[:sent]:
            kind = result.get("status") if isinstance(result, dict) else None
            counts[kind if kind in RECORD_STATUSES else "unanswered"] += 1
        counts["unanswered"] += max(0, sent - len(results))
    elif sent == 1 and status == 202 and isinstance(answer, dict):
        kind = answer.get("status")
        counts[kind if kind in ("accepted", "duplicate") else "unanswered"] += 1
    elif sent == 1 and status in (422, 503):
        counts["rejected" if status == 422 else "unavailable"] += 1
    else:
        counts["unanswered"] += sent
    return counts


def add_counts(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    for key, value in more.items():
        total[key] = total.get(key, 0) + value
    return total


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1); NaN when there are no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def open_loop_latencies_ms(samples: list[tuple[float, float, float]]) -> list[float]:
    """Latencies (ms) of (scheduled, sent, done) samples, measured from the *scheduled* send.

    Measuring from the actual send would hide the generator's lag and any queueing in front
    of the request (coordinated omission): a request due at t that left at t + 2 s and was
    answered 5 ms later waited 2.005 s, not 5 ms. `sent` is deliberately not used here.
    """
    return [(done - scheduled) * 1000 for scheduled, _sent, done in samples]


def send_lag_ms(samples: list[tuple[float, float, float]]) -> list[float]:
    """How late (ms) each request left compared with its schedule: the generator's own lag."""
    return [max(0.0, sent - scheduled) * 1000 for scheduled, sent, _done in samples]


def achieved_rate(scheduled_start: float, sent: list[float], target: float) -> float:
    """Requests (or cases) per second actually sent, over the schedule's window.

    n sends due at start + i/target span n/target seconds; a generator that falls behind
    stretches the window to (last send − start + 1/target), which lowers the figure.
    """
    if not sent:
        return 0.0
    window = max(len(sent) / target, max(sent) - scheduled_start + 1 / target)
    return len(sent) / window


def rate_met(achieved: float, target: float, share: float = 0.95) -> bool:
    """Whether a load ran at (nearly) its target rate; figures "at N/s" mean nothing if not."""
    return achieved >= share * target


def producer_settings(settings: Any) -> dict[str, Any]:
    """What `adapters.runtime.kafka.new_producer` configures (read from it, not restated here)."""
    from unittest import mock

    from adapters.runtime import kafka as bus

    with mock.patch.object(bus, "AIOKafkaProducer") as producer:
        bus.new_producer(settings, "127.0.0.1:0")
    kwargs = producer.call_args.kwargs
    return {
        "acks": kwargs.get("acks"),
        "linger_ms": kwargs.get("linger_ms", 0),
        "max_batch_size": kwargs.get("max_batch_size", 16384),
        "compression": kwargs.get("compression_type") or "none",
    }


# Where a run is placed (directories, addresses, logging): not settings that change figures.
_PER_RUN = {
    "state_dir",
    "cache_dir",
    "kafka.bootstrap",
    "pg.dsn",
    "http.host",
    "http.port",
    "log.level",
    "log.format",
}


def non_default_settings(settings: Any) -> dict[str, Any]:
    """Every setting of `settings` that differs from the built-in default (dotted names),
    leaving out what only places a run (state directory, addresses, logging)."""
    import msgspec

    from adapters.runtime.settings import Settings

    def flat(value: Any, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, item in msgspec.to_builtins(value).items():
            if isinstance(item, dict):
                out.update(flat(item, f"{prefix}{key}."))
            else:
                out[f"{prefix}{key}"] = item
        return out

    defaults = flat(Settings())
    return {k: v for k, v in flat(settings).items() if k not in _PER_RUN and defaults.get(k) != v}


def run_settings(
    settings: Any,
    *,
    brokers: int,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
    **bench: Any,
) -> dict[str, Any]:
    """The settings a bench ran with, printed beside its figures (table and --json).

    `brokers`, and where given `replication_factor` and `min_insync_replicas`, are what the
    cluster itself reports (`cluster_facts`); the replication factor falls back to the
    setting the processes ran with."""
    cluster = {
        "brokers": brokers,
        "replication_factor": replication_factor or settings.topics.replication_factor,
    }
    if min_insync_replicas is not None:
        cluster["min_insync_replicas"] = min_insync_replicas
    return {
        **cluster,
        "partitions": settings.topics.partitions,
        "producer": producer_settings(settings),
        "worker_max_batch": settings.worker.max_batch,
        "pg_pool_max": settings.pg.pool_max,
        "limits_rate_per_s": settings.limits.rate_per_s,
        "limits_burst": settings.limits.burst,
        **bench,
        "non_default": non_default_settings(settings),
    }


def settings_rows(run: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) rows of `run_settings` for a table."""
    rows = []
    for key, value in run.items():
        if key == "non_default":
            shown = ", ".join(f"{k}={v}" for k, v in value.items()) or "(none: all defaults)"
            rows.append(("changed from defaults", shown))
        elif isinstance(value, dict):
            rows.append((key, ", ".join(f"{k}={v}" for k, v in value.items())))
        else:
            rows.append((key, str(value)))
    return rows


def effective_child_settings(env: dict[str, str]) -> Any:
    """The settings a `dipgw up` child started with `env` reads (it reads nothing else)."""
    from adapters.runtime.settings import load_settings

    return load_settings(None, environ=env)


async def cluster_facts(bootstrap: str, topic: str) -> dict[str, int]:
    """What the cluster reports of itself and of `topic` (which must exist): its brokers, the
    topic's replicas per partition (the fewest) and its min.insync.replicas — so a figure
    said to be "replicated" is one the cluster confirms, not one the settings promised."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="dipgw-bench")
    await admin.start()
    try:
        brokers = len((await admin.describe_cluster())["brokers"])
        (described,) = await admin.describe_topics([topic])
        replicas = min(len(p["replicas"]) for p in described["partitions"])
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)]
        )
        (resource,) = response.to_object()["resources"]
        min_isr = next(
            int(entry["config_value"])
            for entry in resource["config_entries"]
            if entry["config_names"] == "min.insync.replicas"
        )
        return {
            "brokers": brokers,
            "replication_factor": replicas,
            "min_insync_replicas": min_isr,
        }
    finally:
        await admin.close()


def scale_out_keys(layouts: dict[str, dict[str, Any]]) -> dict[str, int]:
    """`e2e_cases_per_s_<layout>` of each measured layout's sustained result (its scored
    cases ÷ the time until its backlog's last row was stored). A layout that scored nothing
    was not measured: that is an error, never a figure of 0."""
    out = {}
    for name, run in layouts.items():
        scored, rate = run.get("e2e_backlog_scored", 0), run.get("e2e_cases_per_s", 0)
        if not (scored > 0 and rate > 0):
            raise ValueError(f"layout {name}: no scored case measured ({scored} scored)")
        out[f"e2e_cases_per_s_{name}"] = rate
    return out


Buckets = dict[float, float]
"""A histogram's cumulative bucket counts by upper bound (`le`), +Inf included."""


async def scrape_histograms(urls: list[str], name: str, label: str) -> dict[str, Buckets]:
    """`name`'s buckets by the value of `label` ("" when unlabelled), summed over the
    processes' metrics listeners at `urls` (each `http://host:port`)."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, Buckets] = {}
    async with aiohttp.ClientSession() as http:
        for url in urls:
            async with http.get(f"{url}/metrics") as answer:
                text = await answer.text()
            for family in text_string_to_metric_families(text):
                if family.name != name:
                    continue
                for sample in family.samples:
                    if sample.name == f"{name}_bucket":
                        key = sample.labels.get(label, "")
                        le = float(sample.labels["le"])
                        series = out.setdefault(key, {})
                        series[le] = series.get(le, 0.0) + sample.value
    return out


def bucket_delta(after: dict[str, Buckets], before: dict[str, Buckets]) -> dict[str, Buckets]:
    return {
        key: {le: n - before.get(key, {}).get(le, 0.0) for le, n in series.items()}
        for key, series in after.items()
    }


def add_buckets(total: dict[str, Buckets], more: dict[str, Buckets]) -> dict[str, Buckets]:
    for key, series in more.items():
        into = total.setdefault(key, {})
        for le, n in series.items():
            into[le] = into.get(le, 0.0) + n
    return total


def bucket_quantile(buckets: Buckets, q: float) -> float:
    """The q-quantile of a histogram, interpolated within its bucket as Prometheus's
    `histogram_quantile` does (the bucket's upper bound when it falls in +Inf's)."""
    bounds = sorted(buckets)
    total = buckets.get(float("inf"), 0.0)
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if le == float("inf"):
                return lower
            inside = count - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, count
    return lower
