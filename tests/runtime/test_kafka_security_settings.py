"""Kafka client security settings: every inconsistent combination is named at start, and
every client is made with the same security arguments (secrets also read from files)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from adapters.runtime.kafka import KafkaSecurityError, acl_plan, client_options
from adapters.runtime.settings import SettingsError, load_settings

SCRAM = {
    "DIPGW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "DIPGW_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "DIPGW_KAFKA_SASL_USERNAME": "dipgw-gateway",
}


def _problems(environ: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ=environ)
    return caught.value.problems


def test_plaintext_by_default_with_no_security_arguments() -> None:
    assert client_options(load_settings(environ={}).kafka) == {"security_protocol": "PLAINTEXT"}


def test_sasl_without_mechanism_user_or_password_names_each_setting() -> None:
    problems = _problems({"DIPGW_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    assert problems == [
        "kafka.sasl_mechanism: required with kafka.security_protocol = 'SASL_SSL'",
        "kafka.sasl_username: required with kafka.security_protocol = 'SASL_SSL'",
        "kafka.sasl_password or kafka.sasl_password_file: required with"
        " kafka.security_protocol = 'SASL_SSL'",
    ]


def test_missing_files_and_settings_that_would_be_ignored(tmp_path: Path) -> None:
    missing = str(tmp_path / "ca.pem")
    problems = _problems({**SCRAM, "DIPGW_KAFKA_SASL_PASSWORD_FILE": missing})
    assert problems == [f"kafka.sasl_password_file = {missing!r}: no such file"]
    problems = _problems(
        {**SCRAM, "DIPGW_KAFKA_SASL_PASSWORD": "x", "DIPGW_KAFKA_SSL_CAFILE": missing}
    )
    assert problems == [f"kafka.ssl_cafile = {missing!r}: no such file"]
    # TLS files on a plaintext protocol would be silently ignored: refused instead
    problems = _problems(
        {
            "DIPGW_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            **{k: v for k, v in SCRAM.items() if "PROTOCOL" not in k},
            "DIPGW_KAFKA_SASL_PASSWORD": "x",
            "DIPGW_KAFKA_SSL_CHECK_HOSTNAME": "false",
            "DIPGW_KAFKA_SSL_KEY_PASSWORD": "k",
        }
    )
    assert problems == [
        "kafka.ssl_key_password: only used with SSL or SASL_SSL,"
        " not kafka.security_protocol = 'SASL_PLAINTEXT'"
    ]
    problems = _problems({"DIPGW_KAFKA_SASL_USERNAME": "u"})
    assert problems == [
        "kafka.sasl_username: only used with SASL_PLAINTEXT or SASL_SSL,"
        " not kafka.security_protocol = 'PLAINTEXT'"
    ]
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    problems = _problems(
        {**SCRAM, "DIPGW_KAFKA_SASL_PASSWORD": "x", "DIPGW_KAFKA_SASL_PASSWORD_FILE": str(secret)}
    )
    assert problems == ["kafka.sasl_password and kafka.sasl_password_file: set one, not both"]
    problems = _problems(
        {"DIPGW_KAFKA_SECURITY_PROTOCOL": "SSL", "DIPGW_KAFKA_SSL_KEYFILE": str(secret)}
    )
    assert problems == ["kafka.ssl_keyfile: set without kafka.ssl_certfile"]


def test_password_from_file_read_when_a_client_is_made(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    kafka = load_settings(environ={**SCRAM, "DIPGW_KAFKA_SASL_PASSWORD_FILE": str(secret)}).kafka
    options = client_options(kafka)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "dipgw-gateway"
    assert options["sasl_plain_password"] == "s3cret"  # the file's trailing newline dropped
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    secret.write_text("rotated")  # a rotated secret: the next client uses it
    assert client_options(kafka)["sasl_plain_password"] == "rotated"
    secret.unlink()  # gone after start: a clear error naming the setting, not a traceback
    with pytest.raises(KafkaSecurityError, match=r"kafka\.sasl_password_file = "):
        client_options(kafka)


def test_a_ca_file_that_is_no_certificate_names_the_settings(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate")
    kafka = load_settings(
        environ={"DIPGW_KAFKA_SECURITY_PROTOCOL": "SSL", "DIPGW_KAFKA_SSL_CAFILE": str(bogus)}
    ).kafka
    with pytest.raises(KafkaSecurityError, match=r"kafka\.ssl_cafile"):
        client_options(kafka)


def test_hostname_check_can_be_turned_off_but_the_chain_is_still_verified() -> None:
    kafka = load_settings(
        environ={"DIPGW_KAFKA_SECURITY_PROTOCOL": "SSL", "DIPGW_KAFKA_SSL_CHECK_HOSTNAME": "false"}
    ).kafka
    context = client_options(kafka)["ssl_context"]
    assert context.check_hostname is False and context.verify_mode == ssl.CERT_REQUIRED


def test_acl_plan_gives_each_principal_only_what_it_uses() -> None:
    settings = load_settings(environ={})
    plan = acl_plan(settings, gateway="gw", workers="wk", cities={"440100": "gz"})
    by_user: dict[str, set[str]] = {}
    for acl in plan:
        by_user.setdefault(acl.principal, set()).add(str(acl))
    assert by_user["User:gz"] == {
        "User:gz READ topic 'dip.case.scored.440100.v1'",
        "User:gz READ group 'city.440100.' (prefix)",
    }
    gateway = {a for a in by_user["User:gw"] if "DESCRIBE" not in a}
    assert gateway == {
        "User:gw WRITE topic 'dip.settlement.accepted.v1'",
        "User:gw WRITE topic 'dip.settlement.rejected.v1'",
        # the ops message browser: open a dead letter of a worker's input, replay it
        "User:gw READ topic 'dip.settlement.accepted.v1'",
        "User:gw READ topic 'dip.settlement.rejected.v1'",
        "User:gw READ topic 'dip.case.grouped.v1'",
        "User:gw READ topic 'dip.case.scored.all.v1'",
        "User:gw WRITE topic 'dip.case.grouped.v1'",
        "User:gw WRITE topic 'dip.case.scored.all.v1'",
    }
    workers = by_user["User:wk"]
    assert "User:wk READ group 'dipgw.' (prefix)" in workers
    assert "User:wk WRITE topic 'dip.case.scored.' (prefix)" in workers
    assert not any("WRITE topic 'dip.settlement" in a for a in workers)
    no_create = acl_plan(settings, gateway="gw", workers="wk", cities={}, can_create=False)
    assert not any(a.operation == "CREATE" for a in no_create)
