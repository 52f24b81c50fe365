"""How `dipgw` prints for people (gateway/commands/_output.py): tables at 80 and 200 columns
and without a TTY, CSV with its byte-order mark, the TOML view of a policy, `--version`, and
times in +08:00 wherever a command prints one."""

from __future__ import annotations

import io
import tomllib
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from rich.console import Console
from rich.text import Text

from contracts.messages import CONTRACT_VERSION
from gateway.cli import main
from gateway.commands import hospitals, quality
from gateway.commands._output import BOM, NO_TTY_WIDTH, print_table, to_toml, write_csv
from tests.builders import offline_case
from workers.dip import SAMPLE_RULES, load_rules

COLUMNS = (
    "fixmedins_code",
    "name",
    "city",
    "received",
    "rejected",
    "warned",
    "规范率",
    "及时率",
    "lag p50",
    "lag p90",
    "last seen",
)
ROWS = [
    [
        "H44010000001",
        "广州市第一人民医院 [总院]",  # brackets in data: printed, never read as markup
        "440100",
        "9",
        "2",
        "1",
        "77.8%",
        "100.0%",
        "3 h",
        "5 h",
        "2026-11-24T09:30+08:00",
    ],
    ["H44010000002", "广州市第二人民医院", "440100", "19", "0", "0", "100.0%", "—", "", "", ""],
]


def _terminal(width: int) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, force_terminal=True, color_system=None), out


def _cell_widths(text: str) -> list[int]:
    return [Text(line).cell_len for line in text.splitlines()]


def _every_value_whole(text: str) -> None:
    for row in ROWS:
        for value in row:
            assert value in text, value


def test_a_wide_terminal_gets_one_line_per_row() -> None:
    console, out = _terminal(200)
    print_table("quality", COLUMNS, ROWS, right={"received"}, console=console)
    text = out.getvalue()
    _every_value_whole(text)
    row = next(line for line in text.splitlines() if "H44010000001" in line)
    assert "广州市第一人民医院 [总院]" in row and "2026-11-24T09:30+08:00" in row
    assert max(_cell_widths(text)) <= 200


def test_80_columns_become_key_value_records_never_cut() -> None:
    """The table needs ~150 columns: at 80 rich cut every cell to a few characters."""
    console, out = _terminal(80)
    print_table("quality", COLUMNS, ROWS, caption="2 hospitals", console=console)
    text = out.getvalue()
    assert "┃" not in text and "│" not in text  # no table frame
    _every_value_whole(text)
    assert max(_cell_widths(text)) <= 80
    lines = [line.rstrip() for line in text.splitlines()]
    assert "name:           广州市第一人民医院 [总院]" in lines
    assert "last seen:      2026-11-24T09:30+08:00" in lines
    assert lines.count("fixmedins_code: H44010000002") == 1
    assert not any(line.startswith("lag p50:") and "H44010000002" in line for line in lines)
    assert lines[-1] == "2 hospitals"


def test_a_table_that_fits_only_when_wrapped_wraps_at_words_inside_the_width() -> None:
    message = "the discharge time is after the settlement period ends " * 3
    columns = ("record", "rule", "field", "message")
    rows = [["3", "DATE_SETL_PERIOD", "setlinfo.dscg_time", message.strip()]]
    console, out = _terminal(100)
    print_table("records", columns, rows, console=console)
    text = out.getvalue()
    assert "┃" in text  # still a table
    assert max(_cell_widths(text)) <= 100
    assert "DATE_SETL_PERIOD" in text and "setlinfo.dscg_time" in text
    words = " ".join(
        line.split("│")[-2].strip() for line in text.splitlines() if line.count("│") == 5
    )
    assert words == message.strip()  # every word, in order, none cut


def test_without_a_tty_the_width_is_fixed_and_generous_not_80() -> None:
    out = io.StringIO()
    print_table("quality", COLUMNS, ROWS, console=Console(file=out, width=80))
    text = out.getvalue()
    assert "┃" in text  # a table, one line per row
    row = next(line for line in text.splitlines() if "H44010000001" in line)
    assert "2026-11-24T09:30+08:00" in row and "广州市第一人民医院 [总院]" in row
    assert 80 < max(_cell_widths(text)) <= NO_TTY_WIDTH
    assert "\x1b[" not in text  # no colour codes in a pipe


def test_a_command_in_a_pipe_prints_whole_values(
    capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """`dipgw group` with its stdout captured (no TTY), as in CI logs."""
    case = offline_case("H44010000001:SETL-2026-0000000001")
    path = tmp_path / "cases.json"
    path.write_bytes(msgspec.json.encode([case]))
    rules = str(SAMPLE_RULES["440100"])
    assert main(["group", "--rules", rules, "--province", "440000", str(path)]) == 0
    out = capsys.readouterr().out
    assert "H44010000001:SETL-2026-0000000001" in out and "…" not in out


def test_csv_opens_with_a_byte_order_mark_unless_told_not_to() -> None:
    with_bom, without = io.StringIO(), io.StringIO()
    write_csv("name\n广州市第一人民医院\n", stream=with_bom)
    write_csv("name\n广州市第一人民医院\n", bom=False, stream=without)
    assert with_bom.getvalue() == BOM + "name\n广州市第一人民医院\n"
    assert (BOM + "x").encode("utf-8")[:3] == b"\xef\xbb\xbf"
    assert without.getvalue() == "name\n广州市第一人民医院\n"
    empty = io.StringIO()
    write_csv("", stream=empty)
    assert empty.getvalue() == ""  # no rows: nothing, not a lone mark


@pytest.mark.parametrize("city", sorted(SAMPLE_RULES))
def test_a_policy_as_toml_reads_back_as_the_same_policy(city: str) -> None:
    doc = msgspec.to_builtins(load_rules(SAMPLE_RULES[city]).policy)
    text = to_toml(doc)
    assert "{'" not in text  # no Python dict reprs

    def plain(value: Any) -> Any:  # TOML has no null; tuples are arrays
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items() if v is not None}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value if v is not None]
        return value

    assert tomllib.loads(text) == plain(doc)


def test_toml_quotes_keys_and_escapes_strings() -> None:
    doc = {"point values": {"310": "13.20"}, "name": '深圳 "sample"\n', "ok": True, "n": 1.5}
    assert tomllib.loads(to_toml(doc)) == doc


def test_version_names_the_package_and_the_contract(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == f"dipgw 0.1.0 (contract {CONTRACT_VERSION})"


def test_quality_last_seen_is_shown_in_cst_with_its_offset(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The report stores UTC; 2026-11-24 01:30 UTC is 09:30 in the province."""
    row: dict[str, Any] = {
        "fixmedins_code": "H44010000001",
        "name": "广州市第一人民医院",
        "city": "440100",
        "received": 9,
        "rejected": 2,
        "warned": 0,
        "pass_rate": 0.7778,
        "timely_rate": 1.0,
        "lag_p50_h": 3.0,
        "lag_p90_h": 5.0,
        "last_seen": "2026-11-24T01:30:00+00:00",
    }
    result = {"by": "hospital", "from": "2026-11-18", "to": "2026-11-24", "rows": [row]}
    quality._print_table(result)
    out = capsys.readouterr().out
    assert "2026-11-24T09:30+08:00" in out and "01:30" not in out


async def test_hospital_and_token_lists_show_times_in_cst(
    capsys: pytest.CaptureFixture[str],
) -> None:
    moment = datetime(2026, 11, 24, 1, 30, tzinfo=UTC)
    hospitals._table([{"code": "H1", "updated_at": moment, "note": None}], True, "hospitals")
    assert '"updated_at": "2026-11-24T09:30+08:00"' in capsys.readouterr().out
    hospitals._table([{"code": "H1", "updated_at": moment}], False, "hospitals")
    out = capsys.readouterr().out
    assert "2026-11-24T09:30+08:00" in out and "01:30" not in out
