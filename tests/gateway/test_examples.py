"""The integrator's guide keeps its word (issue 14 point 5): the signing worked example of
docs/upload-format.md is what the gateway computes, the ready snippets (Python, Java, C#) sign
it alike and get 202 from a running gateway, and the complete example records are accepted
with zero findings, over HTTP and by `dipgw validate`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from gateway import signing
from tests.commands import run
from tests.conftest import Client

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "upload-format.md"
SNIPPETS = ROOT / "docs" / "examples" / "signing"
EXAMPLES = {infno: ROOT / "docs" / "examples" / f"{infno}.json" for infno in ("4101", "4101A")}
# The examples' dates are fixed: judged at the tests' fixed reception moment (tests/clock.py).
RECEIVED = "2026-11-24T09:30:00+08:00"


def _worked_example() -> dict[str, str]:
    """Every `<!-- worked-example:NAME -->` block of the guide, as its text."""
    text = GUIDE.read_text(encoding="utf-8")
    blocks = re.findall(r"<!-- worked-example:([a-z0-9-]+) -->\n```[a-z]*\n(.*?)\n```", text, re.S)
    return dict(blocks)


def _printed(output: str) -> dict[str, str]:
    """A snippet's `name: value` lines."""
    return dict(line.split(": ", 1) for line in output.splitlines() if ": " in line)


def test_the_worked_example_is_what_the_gateway_computes() -> None:
    ex = _worked_example()
    assert set(ex) >= {"secret", "method", "path", "timestamp", "nonce", "body", "canonical"}
    assert "EXAMPLE" in ex["secret"]  # never a real one
    body = ex["body"].encode()
    args = (ex["method"], ex["path"], ex["timestamp"], ex["nonce"], body)
    canonical = signing.canonical_request(*args, "HMAC-SHA256")
    assert canonical == ex["canonical"].encode()
    assert b"\r" not in canonical and not canonical.endswith(b"\n")
    assert hashlib.sha256(canonical).hexdigest() == ex["canonical-sha256"]
    assert signing.signature(ex["secret"].encode(), "HMAC-SHA256", *args) == ex["signature"]
    assert signing.matches([ex["secret"].encode()], "HMAC-SHA256", ex["signature"].upper(), *args)
    # what a 401 shows for this request is the same SHA-256
    assert signing.mismatch(*args).values["canonical_sha256"] == ex["canonical-sha256"]


async def _exec(*argv: str, cwd: Path | None = None) -> str:
    """Run a program without blocking the event loop the gateway serves on."""
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, (argv, out.decode(errors="replace"), err.decode(errors="replace"))
    return out.decode()


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: run deploy/bootstrap.sh (it installs Java and Mono's mcs)"
    return found


async def _snippets(tmp: Path) -> dict[str, list[str]]:
    """The command line of each snippet (C# compiled with Mono's mcs first)."""
    exe = tmp / "Sign.exe"
    await _exec(_tool("mcs"), "-r:System.Net.Http.dll", f"-out:{exe}", str(SNIPPETS / "Sign.cs"))
    return {
        "python": [sys.executable, str(SNIPPETS / "Sign.py")],
        "java": [_tool("java"), str(SNIPPETS / "Sign.java")],
        "csharp": [_tool("mono"), str(exe)],
    }


async def test_the_snippets_sign_the_worked_example(tmp_path: Path) -> None:
    ex = _worked_example()
    body = tmp_path / "body.json"
    body.write_bytes(ex["body"].encode())
    for language, command in (await _snippets(tmp_path)).items():
        printed = _printed(
            await _exec(
                *command, ex["secret"], "H44010000001", ex["method"], ex["path"], str(body),
                ex["timestamp"], ex["nonce"],
            )
        )  # fmt: skip
        assert printed == {
            "canonical-sha256": ex["canonical-sha256"],
            signing.HOSPITAL: "H44010000001",
            signing.TIMESTAMP: ex["timestamp"],
            signing.NONCE: ex["nonce"],
            signing.SIGNATURE: ex["signature"],
        }, language


@pytest.mark.integration
async def test_the_snippets_upload_the_example_records(hospital: Client, tmp_path: Path) -> None:
    """Each snippet signs with the current time and a fresh nonce and sends each example
    record to the running gateway: 202 (a resent identical record gets its first receipt)."""
    assert hospital.secret is not None
    for language, command in (await _snippets(tmp_path)).items():
        for infno, path in EXAMPLES.items():
            output = await _exec(
                *command, hospital.secret, "H44010000001", "POST", "/v1/settlements", str(path),
                "-", "-", hospital.stack.url,
            )  # fmt: skip
            printed = _printed(output)
            assert printed["status"] == "202", (language, infno, output)
            assert re.fullmatch(r"[A-Za-z0-9_-]{24}", printed[signing.NONCE]), language


@pytest.mark.integration
@pytest.mark.parametrize("infno", sorted(EXAMPLES))
async def test_an_example_record_is_accepted_with_zero_findings(
    hospital: Client, infno: str
) -> None:
    doc: Any = json.loads(EXAMPLES[infno].read_text(encoding="utf-8"))
    assert doc["infno"] == infno
    status, payload = await hospital.post("/v1/settlements", msgspec.json.encode(doc))
    assert status == 202, payload
    assert payload["status"] in ("accepted", "duplicate"), payload
    assert "errors" not in payload and "warnings" not in payload, payload


@pytest.mark.parametrize("infno", sorted(EXAMPLES))
def test_dipgw_validate_accepts_an_example_with_zero_findings(
    infno: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["validate", str(EXAMPLES[infno]), "--json", "--received-at", RECEIVED]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["accepted"] == 1 and report["summary"]["by_rule"] == {}
    assert report["records"][0]["errors"] == []
