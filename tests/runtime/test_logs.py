from __future__ import annotations

import io
import json
import logging
import re

import structlog

from adapters.runtime.logs import Throttle, configure_logging, get_logger, mask_personal_data


def test_personal_fields_are_masked_at_any_depth() -> None:
    event = {
        "event": "x",
        "psn_name": "张三丰",
        "record": {
            "setlinfo": {
                "certno": "11010519491231002X",
                "coner_tel": "13800138000",
                "setl_id": "S1",
            }
        },
        "items": [{"curr_addr": "北京市东城区某街1号"}],
    }
    masked = mask_personal_data(None, "info", event)
    assert masked["psn_name"] == "张**"
    assert masked["record"]["setlinfo"]["certno"] == "110105********002X"
    assert "13800138000" not in json.dumps(masked, ensure_ascii=False)
    assert "某街" not in json.dumps(masked, ensure_ascii=False)
    assert masked["record"]["setlinfo"]["setl_id"] == "S1"  # not personal: untouched


def test_secrets_never_reach_a_log_line() -> None:
    masked = mask_personal_data(
        None, "info", {"event": "x", "secret": "s3cr3t", "headers": {"authorization": "Bearer abc"}}
    )
    assert masked["secret"] == "***" and masked["headers"]["authorization"] == "***"


def test_json_lines_off_a_terminal_with_context_and_masking() -> None:
    stream = io.StringIO()
    configure_logging("info", "auto", stream=stream)
    structlog.contextvars.bind_contextvars(request_id="r-1", case_key="H1:S1")
    try:
        get_logger("t").info("ingest.accepted", psn_name="王五", revision=2)
        get_logger("t").debug("hidden")
    finally:
        structlog.contextvars.clear_contextvars()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1  # debug filtered at info level
    line = json.loads(lines[0])
    assert line["event"] == "ingest.accepted" and line["level"] == "info"
    assert line["request_id"] == "r-1" and line["case_key"] == "H1:S1"
    assert line["psn_name"] == "王*" and "王五" not in lines[0]
    # one clock for people: the province's time, its offset written, milliseconds
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+08:00", line["timestamp"])


def test_throttle_lets_one_through_per_interval_and_counts_the_rest() -> None:
    now = [0.0]
    throttle = Throttle(10, clock=lambda: now[0])
    assert throttle.admit("broker away") == 0
    assert [throttle.admit("broker away") for _ in range(5)] == [None] * 5
    assert throttle.admit("another fault") == 0  # keys are independent
    now[0] = 10.5
    assert throttle.admit("broker away") == 5


def test_a_flood_of_library_lines_is_thinned_to_one_per_interval() -> None:
    """aiokafka logs 'Unable connect to node' on every attempt while a broker is away."""
    stream = io.StringIO()
    configure_logging(level="info", fmt="json", stream=stream)
    library = logging.getLogger("aiokafka.conn")
    for _ in range(1000):
        library.error("Unable connect to node with id %s: %s", 1, "refused")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and "Unable connect to node with id 1" in lines[0]


def test_an_exception_text_is_masked_as_well() -> None:
    """Masking ran before the traceback was formatted: an ID number in an exception's text
    reached the log (found by the leak scan of issue 11)."""
    stream = io.StringIO()
    configure_logging("info", "json", stream=stream)
    try:
        raise ValueError("bad row for 11010519491231002X")
    except ValueError:
        get_logger("t").exception("worker.crashed")
    out = stream.getvalue()
    assert "ValueError" in out and "11010519491231002X" not in out


def test_library_lines_are_masked_too() -> None:
    stream = io.StringIO()
    configure_logging(level="info", fmt="json", stream=stream)
    logging.getLogger("aiohttp.server").error("Error handling request %s", "11010519491231002X")
    out = stream.getvalue()
    assert "Error handling request" in out and "11010519491231002X" not in out


def test_an_aiokafka_record_is_one_json_object_with_level_logger_and_event() -> None:
    """aiokafka logs through the standard library: its lines were plain text inside the JSON
    stream, unreadable to a log shipper."""
    stream = io.StringIO()
    configure_logging(level="info", fmt="json", stream=stream)
    structlog.contextvars.bind_contextvars(worker="scoring")
    try:
        logging.getLogger("aiokafka.consumer.group_coordinator").warning(
            "Heartbeat failed for group %s because it is rebalancing", "dipgw-scoring"
        )
        logging.getLogger("aiokafka.conn").info("below the libraries' level: dropped")
    finally:
        structlog.contextvars.clear_contextvars()
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["event"] == "Heartbeat failed for group dipgw-scoring because it is rebalancing"
    assert record["level"] == "warning"
    assert record["logger"] == "aiokafka.consumer.group_coordinator"
    assert record["worker"] == "scoring" and record["timestamp"].endswith("+08:00")


def test_a_library_traceback_is_json_and_masked() -> None:
    """asyncio's "Task exception was never retrieved" carries a traceback: it is one JSON
    object, the traceback a field, and an ID number in it masked like our own lines."""
    stream = io.StringIO()
    configure_logging(level="info", fmt="json", stream=stream)
    try:
        raise ValueError("no such patient 11010519491231002X")
    except ValueError:
        logging.getLogger("asyncio").error(
            "Task exception was never retrieved for %s", "44010519800101123X", exc_info=True
        )
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert record["logger"] == "asyncio" and record["level"] == "error"
    assert record["event"].startswith("Task exception was never retrieved")
    assert "ValueError" in record["exception"] and "Traceback" in record["exception"]
    assert "11010519491231002X" not in line and "44010519800101123X" not in line


def test_library_lines_on_a_terminal_are_readable_not_json() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    configure_logging(level="info", fmt="console", stream=stream)
    logging.getLogger("aiokafka").warning("Topic %s not found in cluster metadata", "dip.x")
    out = stream.getvalue()
    assert "Topic dip.x not found in cluster metadata" in out and not out.startswith("{")
