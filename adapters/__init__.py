"""Hospital feeds -> canonical records: national JSON envelopes (single and batch), NDJSON,
CSV/XLSX exports. Pure functions over bytes and streams; every record comes back as a
`DecodedRecord(position, envelope, errors)` and one bad record never sinks the rest."""

from adapters._codestore import MANIFEST_NAME, load_code_store, read_table_rows
from adapters._flat import chinese_mapping, iter_csv, iter_xlsx, row_to_document
from adapters._json import decode_and_validate, decode_batch, decode_envelope, split_batch
from adapters._ndjson import iter_ndjson, iter_ndjson_lines
from adapters._result import DecodedRecord, default_validator

__all__ = [
    "MANIFEST_NAME",
    "DecodedRecord",
    "chinese_mapping",
    "decode_and_validate",
    "decode_batch",
    "decode_envelope",
    "default_validator",
    "iter_csv",
    "iter_ndjson",
    "iter_ndjson_lines",
    "iter_xlsx",
    "load_code_store",
    "read_table_rows",
    "row_to_document",
    "split_batch",
]
