"""The settlement tests' stored scored cases are what the scored sink would store: every
reader of `scored_cases` (`/v1/scored`, its stream) decodes their message. Rows with a bare
message made `/v1/scored` answer 500 to later tests sharing the session's database."""

from __future__ import annotations

import pytest

from adapters.runtime.postgres import create_pool
from contracts.messages import SCORED_DECODER
from tests.gateway.settlement_rows import scored_cases

pytestmark = pytest.mark.integration


async def test_stored_rows_decode_as_the_scored_message(fresh_dsn: str) -> None:
    pool = await create_pool(fresh_dsn, min_size=1, max_size=2)
    try:
        scored = await scored_cases(pool, "H44010000101", 2, year=2030)
        unscored = await scored_cases(pool, "H44010000101", 1, prefix="U", status="unscored")
        rows = await pool.fetch(
            "SELECT message::text AS message FROM scored_cases ORDER BY setl_id"
        )
        cases = [SCORED_DECODER.decode(row["message"]) for row in rows]
    finally:
        await pool.close()
    assert [case.setl_id for case in cases] == scored + unscored
    assert [(case.status, case.clearing_year) for case in cases] == [
        ("scored", 2030),
        ("scored", 2030),
        ("unscored", None),
    ]
    assert {case.fixmedins_code for case in cases} == {"H44010000101"}
    assert cases[-1].unscored is not None and cases[-1].unscored.rule == "DIP_NO_RULES"
