"""How every `dipgw` command prints for people: one table helper, one CSV writer, one TOML view.

Tables are sized to where they go. A terminal gets its own width; a pipe or a CI log (no TTY,
where rich would assume 80 columns and cut every cell to a few characters) gets a fixed
generous width. A table that fits is printed as is; one that fits only when its cells wrap
is wrapped at word boundaries, never below a column's longest word; one that cannot fit even
then becomes a plain `key: value` record per row. No value is ever truncated.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import IO, Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = [
    "BOM",
    "NO_TTY_WIDTH",
    "Cell",
    "add_csv_arguments",
    "print_table",
    "to_toml",
    "write_csv",
]

NO_TTY_WIDTH = 200
"""The width assumed off a terminal: wide enough for the widest report, short of unreadable."""

Cell = str | Text
"""A cell: a `str` is printed literally (brackets in data are never markup); a `Text` for
colour."""

_PAD = 2  # one space either side of a cell (rich's default padding)


def _text(cell: Cell) -> Text:
    return cell if isinstance(cell, Text) else Text(cell)


def _extent(text: Text) -> tuple[int, int]:
    """(longest word, longest line) in terminal cells: a column's narrowest and widest."""
    plain = text.plain
    widest = max((cell_len(line) for line in plain.splitlines()), default=0)
    longest_word = max((cell_len(word) for word in plain.split()), default=1)
    return longest_word, max(widest, 1)


def _widths(columns: Sequence[str], rows: Sequence[Sequence[Text]]) -> list[tuple[int, int]]:
    extents = [_extent(Text(c)) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            low, high = _extent(cell)
            extents[i] = (max(extents[i][0], low), max(extents[i][1], high))
    return extents


def _allot(extents: Sequence[tuple[int, int]], room: int) -> list[int]:
    """Content widths summing to `room` (≥ the minima): each column gets its longest word,
    then the rest is shared in proportion to what each still lacks of its widest line."""
    widths = [low for low, _ in extents]
    spare = room - sum(widths)
    lacking = [high - low for low, high in extents]
    total = sum(lacking)
    if total:
        for i, lack in enumerate(lacking):
            widths[i] += min(lack, spare * lack // total)
    left = room - sum(widths)
    for i, (_, high) in enumerate(extents):  # rounding leftovers, first columns first
        add = min(left, high - widths[i])
        widths[i] += add
        left -= add
    return widths


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    right: Collection[str] = (),
    caption: str | None = None,
    console: Console | None = None,
) -> None:
    """Print rows under `columns` as a table, a wrapped table or `key: value` records, by
    what fits the width (the terminal's, else `NO_TTY_WIDTH`)."""
    console = console or Console()
    if not console.is_terminal:  # rich would assume 80 columns: a pipe gets a fixed width
        console = Console(file=console.file, width=NO_TTY_WIDTH)
    width = console.width
    texts = [[_text(c) for c in row] for row in rows]
    extents = _widths(columns, texts)
    frame = _PAD * len(columns) + len(columns) + 1  # padding and the vertical rules
    # Widths measured here are given to rich (which would measure every cell again).
    fixed = [high for _, high in extents]
    if sum(fixed) + frame > width:
        if sum(low for low, _ in extents) + frame > width:
            _print_records(title, columns, texts, caption, console)
            return
        fixed = _allot(extents, width - frame)
    table = Table(title=Text(title), caption=None if caption is None else Text(caption))
    for i, name in enumerate(columns):
        table.add_column(
            name,
            justify="right" if name in right else "left",
            overflow="fold",
            width=fixed[i],
        )
    for row in texts:
        table.add_row(*row)
    console.print(table)


def _print_records(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Text]],
    caption: str | None,
    console: Console,
) -> None:
    """One `key: value` line per non-empty cell, a blank line between rows: for a table too
    wide to wrap (a narrow terminal). Long values wrap under themselves, never cut."""
    console.print(Text(title, style="bold"))
    for row in rows:
        record = Table.grid(padding=(0, 1))
        record.add_column(no_wrap=True, style="bold")
        record.add_column(overflow="fold")
        for name, cell in zip(columns, row, strict=True):
            if cell.plain:
                record.add_row(Text(name + ":"), cell)
        console.print()
        console.print(record)
    if caption:
        console.print()
        console.print(Text(caption))


def add_csv_arguments(parser: Any, group: Any = None) -> None:
    """`--csv` (on `group`, e.g. exclusive with `--json`, else on `parser`) and `--no-bom`."""
    (group or parser).add_argument(
        "--csv",
        action="store_true",
        help="CSV on stdout, UTF-8 with a byte-order mark (Excel on Chinese Windows reads it)",
    )
    parser.add_argument(
        "--no-bom",
        action="store_true",
        help="with --csv: no byte-order mark (for tools that would read it as data)",
    )


BOM = "\ufeff"


def write_csv(text: str, *, bom: bool = True, stream: IO[str] | None = None) -> None:
    """CSV text to stdout, opened by a byte-order mark unless `bom` is False: without it Excel
    on Chinese Windows reads UTF-8 as GBK and garbles every hospital name."""
    out = stream or sys.stdout
    out.write((BOM if bom and text else "") + text)
    out.flush()


def to_toml(doc: Mapping[str, Any]) -> str:
    """A mapping of JSON-like values as TOML (as a city's policy file is written): scalars
    first, then tables and arrays of tables. None has no TOML form: such keys are left out."""
    return "\n".join(_toml_table(doc, ())) + "\n"


def _toml_key(key: str) -> str:
    bare = key and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)
    return key if bare else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{_toml_key(str(k))} = {_toml_value(v)}" for k, v in value.items() if v is not None
        )
        return "{" + (f" {inner} " if inner else "") + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _is_tables(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and bool(value)
        and all(isinstance(v, Mapping) for v in value)
    )


def _toml_table(doc: Mapping[str, Any], path: tuple[str, ...]) -> Iterator[str]:
    nested: list[tuple[str, Any]] = []
    for key, value in doc.items():
        if value is None:
            continue
        if (isinstance(value, Mapping) and value) or _is_tables(value):
            nested.append((str(key), value))
        else:
            yield f"{_toml_key(str(key))} = {_toml_value(value)}"
    for key, value in nested:
        name = ".".join(_toml_key(p) for p in (*path, key))
        if isinstance(value, Mapping):
            yield ""
            yield f"[{name}]"
            yield from _toml_table(value, (*path, key))
        else:
            for item in value:
                yield ""
                yield f"[[{name}]]"
                yield from _toml_table(item, (*path, key))
