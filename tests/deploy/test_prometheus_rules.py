"""The shipped alert rules are valid, behave as their unit tests say (Prometheus's own rule
evaluator: `promtool test rules`, from Debian's prometheus package installed by
deploy/bootstrap.sh), and name only metrics dipgw exports."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry

from adapters.runtime.metrics import REGISTRY

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def _promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: deploy/bootstrap.sh installs Debian's prometheus package"
    return found


def _run(*args: str) -> str:
    done = subprocess.run(
        [_promtool(), *args], cwd=RULES, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_alert_rules_are_valid() -> None:
    assert "SUCCESS: 8 rules found" in _run("check", "rules", "alerts.yml")


def test_alert_rules_fire_and_stay_quiet_as_their_unit_tests_say() -> None:
    assert "SUCCESS" in _run("test", "rules", "alerts_test.yml")


def _exported(registry: CollectorRegistry) -> set[str]:
    names = set()
    for metric in registry.collect():
        names.add(metric.name)
        names.update(sample.name for sample in metric.samples)
    return names


def test_alert_rules_name_only_metrics_dipgw_exports() -> None:
    """A renamed metric must not leave an alert that can never fire."""
    used = set(re.findall(r"\b(dipgw_[a-z_]+)", (RULES / "alerts.yml").read_text()))
    # labelled series only show once a value was recorded: touch one of each
    from adapters.runtime import metrics

    metrics.CONSUMER_LAG.labels("sink", "t", "0")
    metrics.DEPENDENCY_UP.labels("postgres")
    metrics.HTTP_REQUESTS.labels("/healthz", "200")
    metrics.RECORDS.labels("accepted", "")
    metrics.REJECTIONS.labels("", "REQ_FIELD", "完整性")
    metrics.WORKER_UP.labels("sink")
    metrics.WORKER_RESTARTS.labels("sink", "ValueError")
    assert used and used <= _exported(REGISTRY), used - _exported(REGISTRY)
