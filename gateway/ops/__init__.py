"""Ingestion-quality reports, alerts and the `/ops` dashboard, over the quality worker's rollups.

Ops tokens read every city; a city bureau's token reads its own city only; hospitals read
nothing here. Nothing personal is stored in the rollups, so nothing personal can be shown:
hospitals by code and registered name, rules by ID, examples by receipt id or Kafka position.
The message browser (`/v1/ops/…`) is for ops alone and shows documents only masked. Every
time is written by `contracts.shown` (+08:00, the offset written).

The browser logs in once with its bearer token (`POST /ops/login`, a form, so the token is never
in a URL or an access log); it is kept in an HttpOnly, SameSite=Strict cookie that a small
middleware turns back into the `Authorization` header before authentication runs.

One concern a module:
- `reports`: the SQL reports over the rollups and their CSV form (no HTTP: the CLI's too);
- `pipeline`: consumer lag and topic depth, as the dashboard shows them;
- `messages`: the message browser (ops only): rejected lists and dead letters, opened masked,
  and a dead letter's audited replay;
- `scope`: which city and hospital a caller may read;
- `session`: the login form, the session cookie and its middleware;
- `page`: the `/ops` page and its static assets;
- `spec`: the endpoints' OpenAPI paths;
- `routes`: the HTTP handlers, and `add_routes(app)` that wires all of it.
"""

from __future__ import annotations

from gateway.ops.reports import GROUPINGS, period, report, to_csv
from gateway.ops.routes import add_routes
from gateway.ops.session import COOKIE

__all__ = ["COOKIE", "GROUPINGS", "add_routes", "period", "report", "to_csv"]
