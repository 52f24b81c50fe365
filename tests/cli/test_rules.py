"""`dipgw rules import|show` against the real PostgreSQL: versions, history, no-op re-imports,
catalogs given apart from the policy, and refusals of files that are not what they claim."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from gateway.runtime import LocalServices
from tests.builders import rules_variant
from tests.commands import cli_env, dipgw
from workers.dip import SAMPLE_RULES, load_rules

pytestmark = pytest.mark.integration


async def test_import_show_and_history(services: LocalServices, tmp_path: Path) -> None:
    env = cli_env(services.dsn, services.bootstrap, tmp_path / "state")
    policy = rules_variant(tmp_path, "440300", 2024)

    code, out, err = await dipgw("rules", "show", "440300", "2024", env=env)
    assert code == 1 and "no DIP rules" in out, err

    code, out, err = await dipgw(
        "rules", "import", "440300", "2024", str(policy), "--json", env=env
    )
    assert code == 0, err
    first = json.loads(out)
    assert (first["city"], first["clearing_year"], first["seq"]) == ("440300", 2024, 1)
    assert first["unchanged"] is False and first["groups"] > 10
    assert first["catalog_version"] == "SZ-DIP-2026.1-sample"
    assert first["levels"] == {"3": 1.0, "2": 0.88, "1": 0.72}
    assert {s["file"] for s in first["sources"]} == {policy.name, "440300-2026-catalog.csv"}

    # The same content again: nothing new.
    code, out, _ = await dipgw("rules", "import", "440300", "2024", str(policy), "--json", env=env)
    assert code == 0 and json.loads(out)["unchanged"] is True and json.loads(out)["seq"] == 1

    # A changed catalog, given as its own file, becomes version 2 and is in force.
    catalog = tmp_path / "catalog.csv"
    text = (SAMPLE_RULES["440300"].parent / "440300-2026-catalog.csv").read_text("utf-8")
    catalog.write_text(text.replace(",1019,", ",1100,", 1), "utf-8")  # SZ0002's score
    code, out, err = await dipgw(
        "rules", "import", "440300", "2024", str(policy), str(catalog), "--json", env=env
    )
    assert code == 0, err
    second = json.loads(out)
    assert second["seq"] == 2 and second["content_sha256"] != first["content_sha256"]

    code, out, err = await dipgw("rules", "show", "440300", "2024", "--json", env=env)
    assert code == 0, err
    shown = json.loads(out)
    assert shown["in_force"]["seq"] == 2
    assert shown["in_force"]["version_id"] == second["version_id"]
    assert [h["seq"] for h in shown["history"]] == [2, 1]
    assert shown["in_force"]["policy"]["clearing_year"] == 2024
    # Times in the province's zone, the offset written.
    assert shown["in_force"]["imported_at"].endswith("+08:00")
    assert all(h["imported_at"].endswith("+08:00") for h in shown["history"])

    code, out, err = await dipgw("rules", "show", "440300", "2024", env=env)
    assert code == 0, err
    assert "{'" not in out  # readable: no Python dict reprs
    lines = out.splitlines()
    assert any(line.split() == ["seq:", "2"] for line in lines)
    assert any(line.split()[:1] == ["imported:"] and "+08:00" in line for line in lines)
    # The policy as TOML, as a city's policy file is written: it reads back.
    start = lines.index("# policy in force (TOML, defaults filled in)") + 1
    end = next(i for i in range(start, len(lines)) if lines[i].strip() == "history")
    policy = tomllib.loads("\n".join(lines[start:end]))
    assert (policy["city"], policy["clearing_year"]) == ("440300", 2024)
    assert policy["point_values"] == shown["in_force"]["policy"]["point_values"]
    assert {lv["code"]: lv["coefficient"] for lv in policy["levels"]} == first["levels"]


async def test_refuses_mismatched_or_unreadable_rules(
    services: LocalServices, tmp_path: Path
) -> None:
    env = cli_env(services.dsn, services.bootstrap, tmp_path / "state")
    policy = rules_variant(tmp_path, "440100", 2023)
    code, _, err = await dipgw("rules", "import", "440100", "2022", str(policy), env=env)
    assert code == 2 and "not 440100 for 2022" in err
    code, _, err = await dipgw("rules", "import", "440300", "2023", str(policy), env=env)
    assert code == 2 and "440100 for 2023" in err
    code, _, err = await dipgw("rules", "import", "4403", "2023", str(policy), env=env)
    assert code == 2 and "city" in err
    broken = tmp_path / "broken.toml"
    broken.write_text("city = \n", "utf-8")
    code, _, err = await dipgw("rules", "import", "440100", "2023", str(broken), env=env)
    assert code == 2 and "rules not imported" in err
    code, _, _ = await dipgw("rules", "show", "440100", "2023", env=env)
    assert code == 1  # nothing was stored by the refused imports


async def test_an_xlsx_catalog_as_a_city_publishes_it(
    services: LocalServices, tmp_path: Path
) -> None:
    """A spreadsheet with a title row above the header, next to the TOML policy."""
    import csv

    import openpyxl

    env = cli_env(services.dsn, services.bootstrap, tmp_path / "state")
    source = SAMPLE_RULES["440100"].parent / "440100-2026-catalog.csv"
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["广州市2022年度DIP病种目录库（示例）"])
    for row in csv.reader(source.read_text("utf-8").splitlines()):
        sheet.append([_cell(v) for v in row])  # numbers as numbers, as in a real sheet
    catalog = tmp_path / "目录库.xlsx"
    book.save(catalog)
    policy = rules_variant(tmp_path, "440100", 2022)
    code, out, err = await dipgw(
        "rules", "import", "440100", "2022", str(policy), str(catalog), "--json", env=env
    )
    assert code == 0, err
    imported = json.loads(out)
    from_csv = load_rules(SAMPLE_RULES["440100"])
    assert imported["groups"] == len(from_csv.groups)
    assert {s["file"] for s in imported["sources"]} == {policy.name, "目录库.xlsx"}


def _cell(text: str) -> str | float:
    try:
        return float(text) if text and text[0].isdigit() and "." not in text[:3] else text
    except ValueError:
        return text
