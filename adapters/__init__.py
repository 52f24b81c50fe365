"""Hospital feeds -> canonical records: national JSON envelopes (single and batch), NDJSON,
CSV/XLSX exports. Pure functions over bytes and streams; every record comes back as a
`DecodedRecord(position, envelope, errors)` and one bad record never sinks the rest.

The upload formats are declared once, in `FORMATS` (name, media types, extensions, reader):
the gateway's file endpoint, its checker, `dipgw validate` and /openapi.json iterate it.

Hostile input is bounded (`InputLimits`, `LimitExceeded`): spreadsheets by rows, columns,
cells, text and, for XLSX, the zip package, checked before and while parsing; JSON nested
too deeply to read is `JsonTooDeep` / a DEC_JSON record, never a RecursionError."""

from adapters._codestore import MANIFEST_NAME, load_code_store, read_table_rows
from adapters._flat import chinese_mapping, document_to_row, iter_csv, iter_xlsx, row_to_document
from adapters._formats import FORMATS, FeedFormat, FormatRegistry, read_records
from adapters._json import (
    decode_and_validate,
    decode_batch,
    decode_envelope,
    is_batch,
    split_batch,
    split_json,
)
from adapters._limits import JSON_MAX_DEPTH, InputLimits, JsonTooDeep, LimitExceeded
from adapters._ndjson import iter_ndjson, iter_ndjson_lines
from adapters._result import DecodedRecord, default_validator

__all__ = [
    "FORMATS",
    "JSON_MAX_DEPTH",
    "MANIFEST_NAME",
    "DecodedRecord",
    "FeedFormat",
    "FormatRegistry",
    "InputLimits",
    "JsonTooDeep",
    "LimitExceeded",
    "chinese_mapping",
    "decode_and_validate",
    "decode_batch",
    "decode_envelope",
    "default_validator",
    "document_to_row",
    "is_batch",
    "iter_csv",
    "iter_ndjson",
    "iter_ndjson_lines",
    "iter_xlsx",
    "load_code_store",
    "read_records",
    "read_table_rows",
    "row_to_document",
    "split_batch",
    "split_json",
]
