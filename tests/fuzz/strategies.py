"""Hypothesis strategies for hostile uploads, shared by the schemathesis hooks
(tests/fuzz/schemathesis_hooks.py) and the feed formats' property tests
(tests/adapters/test_formats_hypothesis.py). The pieces are `tests.fuzz.corpus`'s.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from typing import Any

from hypothesis import strategies as st

from adapters import FORMATS
from tests.fuzz import corpus

hostile_values = st.one_of(
    st.sampled_from(corpus.HOSTILE_TEXTS),
    st.sampled_from(corpus.HOSTILE_NUMBERS),
    st.sampled_from(corpus.HOSTILE_SHAPES),
    st.sampled_from(range(len(corpus.RAW_JSON))).map(corpus.raw_marker),
    st.text(max_size=40),
    st.integers(),
    st.floats(),
)
hostile_texts = st.sampled_from(corpus.HOSTILE_TEXTS) | st.text(max_size=40)
_ACTIONS = ("set", "set", "set", "delete", "rename", "add")


@functools.lru_cache(maxsize=4096)
def _paths(seed: int, hospital: str, city: str, infno: str) -> list[tuple[Any, ...]]:
    """The paths of a sample list: its shape depends on the seed, not on the serial."""
    return list(corpus.leaf_paths(corpus.settlement(seed, hospital, city, infno=infno)))


@st.composite
def hostile_document(draw: st.DrawFn, hospital: str, city: str, infno: str | None = None) -> Any:
    """A valid list of `hospital` in `city`, damaged by up to four mutations (none: it is
    accepted). Serials collide now and then: duplicates and new revisions are exercised."""
    infno = infno or draw(st.sampled_from(("4101A", "4101")))
    seed = draw(st.integers(0, 1_000))
    serial = draw(st.integers(0, 100_000))
    document = corpus.settlement(seed, hospital, city, infno=infno, serial=serial)
    paths = _paths(seed, hospital, city, infno)
    mutations = [
        corpus.Mutation(
            paths[draw(st.integers(0, len(paths) - 1))],
            _ACTIONS[draw(st.integers(0, len(_ACTIONS) - 1))],
            draw(hostile_values),
        )
        for _ in range(draw(st.integers(0, 4)))
    ]
    return corpus.mutate(document, mutations, in_place=True)  # a fresh document


def plain_json(document: Any) -> bool:
    """Whether `requests` sends `document` as it is (no NaN, no raw JSON to splice in)."""
    try:
        text = json.dumps(document, allow_nan=False)
    except ValueError:
        return False
    return "@@RAW" not in text


@st.composite
def damaged(draw: st.DrawFn, body: Any, *, keep_documents: bool = False) -> Any:
    """`body` (a document, or bytes) as bytes, or one time in four its bytes damaged. With
    `keep_documents`, a document plain JSON can carry stays a document (schemathesis then
    reads it for the links of the stateful phase)."""
    if draw(st.integers(0, 3)):
        if keep_documents and not isinstance(body, bytes) and plain_json(body):
            return body
        return body if isinstance(body, bytes) else corpus.encode(body)
    raw = body if isinstance(body, bytes) else corpus.encode(body)
    return corpus.damage(raw, draw(st.sampled_from(corpus.BYTE_DAMAGE)), draw(st.integers()))


@st.composite
def hostile_rows(draw: st.DrawFn, hospital: str, city: str) -> tuple[list[str], list[list[str]]]:
    """A header and rows of valid lists, with up to four cells (header cells included)
    replaced by hostile text."""
    count = draw(st.integers(1, 4))
    documents = [
        corpus.settlement(draw(st.integers(0, 1_000)), hospital, city, serial=s)
        for s in draw(st.lists(st.integers(0, 100_000), min_size=count, max_size=count))
    ]
    header, rows = corpus.flat(documents)
    for _ in range(draw(st.integers(0, 4))):
        row = draw(st.sampled_from([header, *rows]))
        row[draw(st.integers(0, len(row) - 1))] = draw(hostile_texts)
    if draw(st.integers(0, 7)) == 0:  # a row longer or shorter than the header
        row = draw(st.sampled_from(rows))
        if draw(st.booleans()):
            row.extend(draw(st.lists(hostile_texts, min_size=1, max_size=3)))
        else:
            del row[draw(st.integers(0, len(row) - 1)) :]
    return header, rows


@st.composite
def xlsx_member_damage(draw: st.DrawFn, workbook: bytes) -> bytes:
    """`workbook` with one zip member dropped, or its XML damaged (then zipped again)."""
    source = zipfile.ZipFile(io.BytesIO(workbook))
    names = source.namelist()
    victim = draw(st.sampled_from(names))
    drop = draw(st.integers(0, 4)) == 0
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in names:
            data = source.read(name)
            if name == victim:
                if drop:
                    continue
                data = corpus.damage(
                    data, draw(st.sampled_from(corpus.BYTE_DAMAGE)), draw(st.integers())
                )
            target.writestr(name, data)
    return out.getvalue()


@st.composite
def hostile_upload(draw: st.DrawFn, fmt_name: str, hospital: str, city: str) -> bytes:
    """An upload in feed format `fmt_name`, hostile inside: bytes."""
    if fmt_name in ("csv", "xlsx"):
        header, rows = draw(hostile_rows(hospital, city))
        if fmt_name == "csv":
            return draw(damaged(corpus.csv_bytes(header, rows)))
        workbook = corpus.xlsx_bytes(header, rows)
        if draw(st.integers(0, 2)) == 0:
            return draw(xlsx_member_damage(workbook))
        return draw(damaged(workbook))
    documents = draw(st.lists(hostile_document(hospital, city), min_size=1, max_size=4))
    if fmt_name == "ndjson":
        lines = (corpus.encode(d).replace(b"\n", b" ") for d in documents)
        return draw(damaged(b"\n".join(lines)))
    shape = draw(st.sampled_from(("one", "array", "records")))
    if shape == "one":
        return draw(damaged(documents[0]))
    return draw(damaged(documents if shape == "array" else {"records": documents}))


@st.composite
def hostile_file(draw: st.DrawFn, hospital: str, city: str) -> tuple[str, bytes]:
    """(media type, body) of an upload in any registered feed format, hostile inside."""
    fmt = draw(st.sampled_from(list(FORMATS)))
    media_type = draw(st.sampled_from(fmt.media_types))
    return media_type, draw(hostile_upload(fmt.name, hospital, city))
