"""`dipgw topics plan|apply` against the real local Kafka, on topics of the test's own."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from adapters.runtime import topics
from adapters.runtime.settings import load_settings
from gateway.cli import main
from gateway.runtime import LocalServices
from tests.commands import cli_env, dipgw
from tests.runtime.test_topics import topic_env


async def _cluster(bootstrap: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """Each topic's partition count and its dipgw configs, as the cluster reports them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics(names)}
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
        out: dict[str, dict[str, Any]] = {}
        for resource in response.to_object()["resources"]:
            entries = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
            out[resource["resource_name"]] = {
                "partitions": len(described[resource["resource_name"]]["partitions"]),
                **{key: entries[key] for key in topics.CONFIG_KEYS},
            }
        return out
    finally:
        await admin.close()


async def test_plan_then_apply_then_changes(
    services: LocalServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    tag = "tc" + uuid.uuid4().hex[:8]
    env = cli_env(services.dsn, services.bootstrap, tmp_path / "state")

    async def run(verb: str, **extra: str) -> tuple[int, dict[str, Any]]:
        """`dipgw topics VERB --json` in this process (in a thread: it runs its own loop)."""
        with monkeypatch.context() as patched:
            for name, value in {**env, **topic_env(tag, **extra)}.items():
                if name.startswith("DIPGW_"):
                    patched.setenv(name, value)
            code = await asyncio.to_thread(main, ["topics", verb, "--json"])
        out, err = capsys.readouterr()
        assert code in (0, 1), err
        return code, json.loads(out)

    declared = topics.declared_topics(load_settings(environ=topic_env(tag)))
    names = [spec.name for spec in declared]
    assert len(names) == 8  # 4 of the pipeline's own, out of province, alerts, 2 cities (北京)

    code, plan = await run("plan")
    assert code == 1
    assert {(d["topic"], d["kind"]) for d in plan["differences"]} == {
        (name, "missing") for name in names
    }

    code, applied = await run("apply")
    assert (code, applied["remaining"]) == (0, [])
    cluster = await _cluster(services.bootstrap, names)
    assert cluster[f"{tag}.accepted"] == {
        "partitions": 2,
        "cleanup.policy": "delete",
        "min.insync.replicas": "1",
        "retention.ms": str(7 * topics.DAY_MS),
    }
    assert cluster[f"{tag}.scored.110000"]["retention.ms"] == str(30 * topics.DAY_MS)
    assert (await run("plan")) == (0, {**plan, "differences": [], "remaining": []})

    # a longer retention for the city topics, and more partitions everywhere
    changed = {"outbound_retention_days": "60", "partitions": "3"}
    code, plan = await run("plan", **changed)
    assert code == 1
    kinds = {(d["topic"], d["kind"], d["setting"], d["actual"]) for d in plan["differences"]}
    assert (f"{tag}.scored.119900", "config", "retention.ms", str(30 * topics.DAY_MS)) in kinds
    assert (f"{tag}.accepted", "partitions", "partitions", "2") in kinds
    assert not any(
        d["topic"] == f"{tag}.accepted" and d["kind"] == "config" for d in plan["differences"]
    )
    assert (await run("apply", **changed))[0] == 0
    cluster = await _cluster(services.bootstrap, names)
    assert cluster[f"{tag}.scored.119900"]["retention.ms"] == str(60 * topics.DAY_MS)
    assert cluster[f"{tag}.scored.119900"]["cleanup.policy"] == "delete"
    assert {c["partitions"] for c in cluster.values()} == {3}

    # fewer partitions: reported, never applied
    code, applied = await run("apply", **{**changed, "partitions": "2"})
    assert code == 1
    assert {(d["kind"], d["applies"]) for d in applied["remaining"]} == {
        ("partitions_decrease", False)
    }
    assert len(applied["remaining"]) == len(names)
    assert {c["partitions"] for c in (await _cluster(services.bootstrap, names)).values()} == {3}


async def test_plan_prints_a_table_and_a_clear_error_without_kafka(
    services: LocalServices, tmp_path: Path
) -> None:
    tag = "tc" + uuid.uuid4().hex[:8]
    env = {**cli_env(services.dsn, services.bootstrap, tmp_path / "state"), **topic_env(tag)}
    code, out, _ = await dipgw("topics", "plan", env=env)
    assert code == 1
    assert f"{tag}.scored.119900" in out and "create" in out

    env["DIPGW_KAFKA_BOOTSTRAP"] = "127.0.0.1:1"
    code, out, err = await dipgw("topics", "plan", env=env)
    assert code == 1
    assert "Kafka at 127.0.0.1:1 did not answer" in err and "Traceback" not in err


async def test_up_refuses_to_start_without_its_topics(
    services: LocalServices, tmp_path: Path
) -> None:
    tag = "tc" + uuid.uuid4().hex[:8]
    env = {
        **cli_env(services.dsn, services.bootstrap, tmp_path / "state"),
        **topic_env(tag, auto_create="false"),
        "DIPGW_HTTP_PORT": "0",
    }
    code, _, err = await dipgw("up", "--workers", "", env=env)
    assert code == 1
    assert f"Kafka topics missing: {tag}.accepted, {tag}.rejected" in err
    assert "run `dipgw topics apply`" in err and "Traceback" not in err
