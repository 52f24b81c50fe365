from __future__ import annotations

from pathlib import Path

import pytest

from adapters.runtime.settings import Settings, SettingsError, load_settings


def test_defaults_need_no_file_and_no_environment() -> None:
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.kafka.bootstrap == "" and settings.pg.dsn == ""  # = local services
    assert settings.topics.accepted == "dip.settlement.accepted.v1"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "dipgw.toml"
    config.write_text(
        'state_dir = "/srv/dipgw"\n[http]\nport = 9000\nhost = "0.0.0.0"\n'
        "[topics]\npartitions = 12\n"
    )
    settings = load_settings(
        config,
        environ={
            "DIPGW_HTTP_PORT": "9100",
            "DIPGW_PG_DSN": "postgresql://u@db/dipgw",
            "DIPGW_KAFKA_BOOTSTRAP": "k1:9092,k2:9092",
        },
    )
    assert settings.http.port == 9100  # env beats file
    assert settings.http.host == "0.0.0.0"  # file beats default
    assert settings.topics.partitions == 12
    assert settings.state_dir == "/srv/dipgw"
    assert settings.pg.dsn == "postgresql://u@db/dipgw"
    assert settings.kafka.bootstrap == "k1:9092,k2:9092"


def test_every_bad_value_is_reported_at_once(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        '[http]\nport = 70000\n[log]\nlevel = "loud"\n[kafka]\nlocal_heap_mb = 4096\n'
    )
    with pytest.raises(SettingsError) as caught:
        load_settings(config, environ={"DIPGW_TOPICS_PARTITIONS": "zero", "DIPGW_PG_DNS": "typo"})
    problems = "\n".join(caught.value.problems)
    assert len(caught.value.problems) == 5, problems
    assert "http.port = 70000" in problems and "<= 65535" in problems
    assert "log.level = 'loud'" in problems
    assert "kafka.local_heap_mb = 4096" in problems
    assert "topics.partitions = 'zero'" in problems
    assert "DIPGW_PG_DNS: unknown setting pg.dns" in problems


def test_unknown_key_in_file_and_unreadable_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[http]\nprot = 1\n")
    with pytest.raises(SettingsError, match=r"http\.prot: unknown setting"):
        load_settings(config, environ={})
    config.write_text("[http\n")
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(config, environ={})
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_config_path_from_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[worker]\nmax_batch = 42\n")
    assert load_settings(environ={"DIPGW_CONFIG": str(config)}).worker.max_batch == 42


def test_example_config_lists_exactly_the_defaults() -> None:
    example = Path(__file__).parents[2] / "deploy" / "dipgw.example.toml"
    assert load_settings(example, environ={}) == Settings()
