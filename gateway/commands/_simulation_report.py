"""A rules simulation as people read it: table rows, a CSV file and a self-contained HTML report.

The HTML report has no script, no stylesheet link and no font from elsewhere: its charts are
inline SVG (per-hospital payment delta bars; each fund's point value under the published and
the draft rules), so it opens offline and can be mailed as one file.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

from contracts import shown
from workers.dip import HospitalLine
from workers.simulate import SimulationRun

__all__ = ["COLUMNS", "csv_text", "html_report", "kinds_text", "money", "pct", "table_rows"]

COLUMNS = (
    "hospital",
    "cases",
    "points (current)",
    "points (draft)",
    "payment (current)",
    "payment (draft)",
    "delta",
    "delta %",
    "deviation (current)",
    "deviation (draft)",
)
RIGHT = frozenset(COLUMNS[1:8])
_TOTAL = "city total"


def money(value: Decimal) -> str:
    return f"{value:,.2f}"


def pct(value: Decimal | None) -> str:
    return "" if value is None else f"{value:+.2f}"


def points(value: Decimal) -> str:
    return f"{value:,f}"


def kinds_text(kinds: Mapping[str, int]) -> str:
    """`normal 80, high 5, low 3`: most frequent first."""
    return ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: (-kv[1], kv[0])))


def _row(line: HospitalLine, names: Mapping[str, str]) -> list[str]:
    code = line.fixmedins_code
    return [
        f"{code} {names[code]}" if code in names else code or _TOTAL,
        str(line.cases),
        points(line.points_current),
        points(line.points_draft),
        money(line.payment_current),
        money(line.payment_draft),
        f"{line.delta:+,.2f}",
        pct(line.delta_pct),
        kinds_text(line.kinds_current),
        kinds_text(line.kinds_draft),
    ]


def table_rows(run: SimulationRun) -> list[list[str]]:
    """One row per hospital, then the city total."""
    return [_row(ln, run.names) for ln in (*run.result.lines, run.result.total)]


def csv_text(run: SimulationRun) -> str:
    """Per-hospital lines then the city total (hospital left empty), plain numbers (no
    thousands separators), the deviation kinds as one column per kind and side."""
    res = run.result
    kinds = sorted(
        {k for ln in (*res.lines, res.total) for k in (*ln.kinds_current, *ln.kinds_draft)}
    )
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(
        [
            "fixmedins_code",
            "name",
            "cases",
            "points_current",
            "points_draft",
            "payment_current",
            "payment_draft",
            "delta",
            "delta_pct",
            *(f"current_{k}" for k in kinds),
            *(f"draft_{k}" for k in kinds),
        ]
    )
    for ln in (*res.lines, res.total):
        w.writerow(
            [
                ln.fixmedins_code,
                run.names.get(ln.fixmedins_code, ""),
                ln.cases,
                f"{ln.points_current:f}",
                f"{ln.points_draft:f}",
                ln.payment_current,
                ln.payment_draft,
                ln.delta,
                "" if ln.delta_pct is None else ln.delta_pct,
                *(ln.kinds_current.get(k, 0) for k in kinds),
                *(ln.kinds_draft.get(k, 0) for k in kinds),
            ]
        )
    return out.getvalue()


def write_csv_file(run: SimulationRun, path: Path) -> None:
    """The CSV with a byte-order mark (Excel on Chinese Windows reads UTF-8 by it)."""
    path.write_text("\ufeff" + csv_text(run), encoding="utf-8", newline="")


# ---------------------------------------------------------------------------------- HTML


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _delta_chart(lines: Sequence[HospitalLine]) -> str:
    """Horizontal bars from a zero axis, biggest loss first: gains right (green), losses left
    (red)."""
    if not lines:
        return "<p>No cases.</p>"
    lines = sorted(lines, key=lambda ln: (ln.delta, ln.fixmedins_code))
    label_w, bar_w, row_h, value_w = 170, 520, 22, 120
    biggest = max((abs(ln.delta) for ln in lines), default=Decimal(0)) or Decimal(1)
    half = bar_w / 2
    zero = label_w + half
    height = row_h * len(lines) + 10
    width = label_w + bar_w + value_w
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"'
        f' viewBox="0 0 {width} {height}" role="img" aria-label="payment delta per hospital">',
        f'<line x1="{zero}" y1="0" x2="{zero}" y2="{height}" stroke="#555" stroke-width="1"/>',
    ]
    for i, ln in enumerate(lines):
        y = 5 + i * row_h
        length = float(abs(ln.delta) / biggest) * (half - 4)
        x = zero if ln.delta >= 0 else zero - length
        colour = "#2e7d32" if ln.delta >= 0 else "#c62828"
        tip = f"{ln.fixmedins_code}: {ln.delta:+,.2f} ({pct(ln.delta_pct) or 'n/a'} %)"
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="12">'
            f"{_e(ln.fixmedins_code)}</text>"
            f'<rect x="{x:.1f}" y="{y + 3}" width="{max(length, 0.5):.1f}" height="{row_h - 6}"'
            f' fill="{colour}"><title>{_e(tip)}</title></rect>'
            f'<text x="{label_w + bar_w + 4}" y="{y + 15}" font-size="12">'
            f"{_e(f'{ln.delta:+,.2f}')}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _pv_chart(current: Mapping[str, Decimal], draft: Mapping[str, Decimal]) -> str:
    """Two bars per fund: the point value under the published rules and under the draft."""
    funds = sorted(set(current) | set(draft))
    if not funds:
        return "<p>No point values.</p>"
    top = max((*current.values(), *draft.values()), default=Decimal(1)) or Decimal(1)
    group_w, bar_w, plot_h, base = 150, 44, 200, 230
    width = 60 + group_w * len(funds) + 160
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{base + 40}"'
        f' viewBox="0 0 {width} {base + 40}" role="img" aria-label="point value per fund">',
        f'<line x1="50" y1="{base}" x2="{width - 150}" y2="{base}" stroke="#555"/>',
    ]
    for i, fund in enumerate(funds):
        x0 = 60 + i * group_w
        for j, (side, values, colour) in enumerate(
            (("current", current, "#78909c"), ("draft", draft, "#1565c0"))
        ):
            pv = values.get(fund)
            if pv is None:
                continue
            h = float(pv / top) * plot_h
            x = x0 + j * (bar_w + 8)
            parts.append(
                f'<rect x="{x}" y="{base - h:.1f}" width="{bar_w}" height="{h:.1f}"'
                f' fill="{colour}"><title>{_e(f"{fund} {side}: {pv}")}</title></rect>'
                f'<text x="{x + bar_w / 2}" y="{base - h - 4:.1f}" text-anchor="middle"'
                f' font-size="11">{_e(pv)}</text>'
            )
        parts.append(
            f'<text x="{x0 + bar_w + 4}" y="{base + 18}" text-anchor="middle" font-size="12">'
            f"{_e(fund)}</text>"
        )
    lx = width - 140
    parts.append(
        f'<rect x="{lx}" y="20" width="12" height="12" fill="#78909c"/>'
        f'<text x="{lx + 18}" y="31" font-size="12">current</text>'
        f'<rect x="{lx}" y="40" width="12" height="12" fill="#1565c0"/>'
        f'<text x="{lx + 18}" y="51" font-size="12">draft</text></svg>'
    )
    return "".join(parts)


def _kinds_table(total: HospitalLine) -> str:
    kinds = sorted(set(total.kinds_current) | set(total.kinds_draft))
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td class=n>{total.kinds_current.get(k, 0)}</td>"
        f"<td class=n>{total.kinds_draft.get(k, 0)}</td></tr>"
        for k in kinds
    )
    return (
        "<table><thead><tr><th>deviation kind</th><th>cases (current)</th>"
        f"<th>cases (draft)</th></tr></thead><tbody>{rows}</tbody></table>"
    )


_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f0f0f0; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total td { font-weight: bold; background: #fafafa; }
.gain { color: #2e7d32; } .loss { color: #c62828; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { font-weight: bold; }
"""


def html_report(run: SimulationRun) -> str:
    """The whole report as one HTML document: facts, charts, the per-hospital table."""
    res = run.result
    facts = {
        "city / clearing year": f"{run.city} / {run.clearing_year}",
        "simulation": f"#{run.seq} at {shown(run.created_at)}",
        "current rules": run.current_version or "none in force",
        "draft rules": run.draft_version,
        "point values": run.point_value_method,
        "cases": f"{res.total.cases} (skipped without facts: {run.skipped})",
        "time": f"{run.seconds:.1f} s",
    }
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts.items())
    head = "".join(f"<th>{_e(c)}</th>" for c in COLUMNS)
    body = []
    for ln in (*res.lines, res.total):
        cells = _row(ln, run.names)
        cls = "gain" if ln.delta > 0 else "loss" if ln.delta < 0 else ""
        tds = "".join(
            f'<td class="n{" " + cls if i in (6, 7) and cls else ""}">{_e(c)}</td>'
            if COLUMNS[i] in RIGHT
            else f"<td>{_e(c)}</td>"
            for i, c in enumerate(cells)
        )
        body.append(f"<tr{' class=total' if not ln.fixmedins_code else ''}>{tds}</tr>")
    pv_rows = "".join(
        f"<tr><td>{_e(f)}</td><td class=n>{_e(res.point_values_current.get(f, ''))}</td>"
        f"<td class=n>{_e(res.point_values_draft.get(f, ''))}</td></tr>"
        for f in sorted(set(res.point_values_current) | set(res.point_values_draft))
    )
    title = f"DIP rules simulation {run.city} {run.clearing_year} #{run.seq}"
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{_e(title)}</title>
<style>{_STYLE}</style></head><body>
<h1>{_e(title)}</h1>
<dl>{dl}</dl>
<h2>Payment delta per hospital (draft − current, yuan)</h2>
{_delta_chart(res.lines)}
<h2>Point value per fund (yuan per point)</h2>
{_pv_chart(res.point_values_current, res.point_values_draft)}
<table><thead><tr><th>fund</th><th>current</th><th>draft</th></tr></thead>
<tbody>{pv_rows}</tbody></table>
<h2>Deviation kinds</h2>
{_kinds_table(res.total)}
<h2>Per hospital</h2>
<table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
</body></html>
"""


def write_html_file(run: SimulationRun, path: Path) -> None:
    path.write_text(html_report(run), encoding="utf-8")
