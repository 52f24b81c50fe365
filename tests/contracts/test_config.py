"""RuleConfig: a city switches rules off, changes severities, moves the lag threshold."""

from __future__ import annotations

from datetime import datetime

import pytest

from contracts import RuleConfig, Validator, is_rejected
from tests.builders import check, fields_of_rule, golden, mutate, rules


def test_rule_switched_off_everywhere() -> None:
    v = Validator(RuleConfig.from_mapping({"rules": {"CERTNO_GEND": "off"}}))
    doc = mutate(golden(), input__setlinfo__gend="2")
    assert "CERTNO_GEND" in rules(check(doc))
    assert "CERTNO_GEND" not in rules(check(doc, v))


def test_field_level_rule_off_for_one_field_only() -> None:
    v = Validator(RuleConfig.from_mapping({"rules": {"REQ_FIELD@setlinfo.prfs": "off"}}))
    doc = mutate(golden(), input__setlinfo__prfs=None, input__setlinfo__ntly=None)
    # prfs off, ntly still required; both engine paths agree (check asserts it)
    assert fields_of_rule(check(doc, v), "REQ_FIELD") == {"setlinfo.ntly"}


def test_list_field_override_ignores_the_index() -> None:
    v = Validator(RuleConfig.from_mapping({"rules": {"DICT_VALUE@diseinfo.adm_cond_type": "warn"}}))
    doc = mutate(golden(), input__diseinfo__2__adm_cond_type="8")
    errors = check(doc, v)
    assert [(e.rule, e.field, e.severity) for e in errors] == [
        ("DICT_VALUE", "diseinfo[2].adm_cond_type", "warn")
    ]
    assert not is_rejected(errors)
    assert is_rejected(check(doc))


def test_severity_raised_to_reject() -> None:
    v = Validator(RuleConfig.from_mapping({"rules": {"REQ_ACP_MEDINS": "reject"}}))
    doc = mutate(golden(), input__setlinfo__dscg_way="2")
    assert not is_rejected(check(doc))
    assert is_rejected(check(doc, v))


def test_upload_lag_threshold_is_configurable() -> None:
    received = datetime(2026, 11, 25, 10, 0, 1)  # 5 days after discharge
    assert "LAG_UPLOAD" not in rules(check(golden(), received_at=received))
    v = Validator(RuleConfig(upload_lag_days=5))
    assert "LAG_UPLOAD" in rules(check(golden(), v, received_at=received))
    msg = next(e for e in check(golden(), v, received_at=received) if e.rule == "LAG_UPLOAD")
    assert "5" in msg.message and "5" in msg.message_en


def test_rule_params_override() -> None:
    v = Validator(RuleConfig.from_mapping({"params": {"NWB_WEIGHT": {"min_g": 500}}}))
    doc = mutate(golden(), input__setlinfo__nwb_bir_wt="400")
    assert "NWB_WEIGHT" not in rules(check(doc))
    assert "NWB_WEIGHT" in rules(check(doc, v))


def test_icu_type_dictionary_is_provisional_and_warns_by_default() -> None:
    doc = mutate(golden(), input__icuinfo__0__scs_cutd_ward_type="CCU")
    errors = check(doc)
    assert [(e.rule, e.severity) for e in errors] == [("DICT_VALUE", "warn")]


def test_unknown_rule_in_config_is_an_error() -> None:
    with pytest.raises(ValueError, match="NO_SUCH_RULE"):
        RuleConfig.from_mapping({"rules": {"NO_SUCH_RULE": "off"}})
    with pytest.raises(ValueError):
        RuleConfig.from_mapping({"rules": {"LAG_UPLOAD": "maybe"}})


def test_from_toml() -> None:
    cfg = RuleConfig.from_toml(
        'upload_lag_days = 3\n[rules]\n"LAG_UPLOAD" = "reject"\n"REQ_FIELD@setlinfo.prfs" = "off"\n'
    )
    assert cfg.upload_lag_days == 3
    v = Validator(cfg)
    errors = check(golden(), v, received_at=datetime(2026, 11, 24, 9, 30))
    assert [(e.rule, e.severity) for e in errors] == [("LAG_UPLOAD", "reject")]


def test_decode_errors_cannot_be_switched_off() -> None:
    v = Validator(RuleConfig.from_mapping({"rules": {"DEC_JSON": "off"}}))
    assert rules(check(b"{", v)) == {"DEC_JSON"}
