"""mask_personal: personal data never leaves the record store in clear."""

from __future__ import annotations

import msgspec

from contracts import Validator, mask_personal, mask_value
from tests.builders import golden


def test_examples_from_the_architecture() -> None:
    assert mask_value("certno", "11010519491231002X") == "110105********002X"
    assert mask_value("name", "张三") == "张*"
    assert mask_value("name", "欧阳娜娜") == "欧***"
    assert mask_value("phone", "13812345678") == "138****5678"


def test_mask_a_document_everywhere() -> None:
    doc = golden()
    masked = mask_personal(doc)
    sl = masked["input"]["setlinfo"]
    assert sl["psn_name"] == "张*"
    assert sl["certno"].startswith("440100") and "*" in sl["certno"]
    assert sl["certno"] != doc["input"]["setlinfo"]["certno"]
    assert sl["coner_name"] == "李*"
    assert sl["coner_tel"] == "138****5678"
    assert "体育西路" not in sl["curr_addr"]
    assert sl["setl_id"] == doc["input"]["setlinfo"]["setl_id"]  # not personal
    assert doc["input"]["setlinfo"]["psn_name"] == "张三"  # a copy, the input is untouched


def test_mask_a_struct() -> None:
    env, _ = Validator().validate_json(msgspec.json.encode(golden()))
    masked = mask_personal(env)
    assert masked["input"]["setlinfo"]["psn_name"] == "张*"
    text = msgspec.json.encode(masked).decode()
    assert "张三" not in text and golden()["input"]["setlinfo"]["certno"] not in text


def test_non_string_and_empty_values() -> None:
    assert mask_personal({"certno": None, "psn_name": ""}) == {"certno": None, "psn_name": ""}
    assert mask_personal({"coner_tel": 13812345678})["coner_tel"] == "138****5678"
    assert mask_personal([{"psn_name": "王五"}]) == [{"psn_name": "王*"}]
