"""The national contract of dipgw: settlement-list Structs, dictionaries, code tables, rules.

Pure code: no asyncio, no network, no database; the only I/O is reading this package's own
data files. See contracts/README.md for the field-path convention, the rule list, the
upload shape of identity/summary fields and what the bundled code tables cover.
"""

from contracts._certno import certno_check_char, is_valid_certno
from contracts._codes import (
    OPRN_CLASSES,
    CodeImportError,
    CodeTable,
    CodeTables,
    DiagnosisCode,
    OperationCode,
    OprnClass,
    diagnosis_table_from_csv,
    import_nhsa_rows,
    is_diagnosis_format,
    is_operation_format,
    normalise_code,
    operation_table_from_csv,
    tables_from_manifest,
)
from contracts._dicts import Dictionaries
from contracts._errors import (
    DIMENSIONS,
    ContractError,
    Dimension,
    Problem,
    Reason,
    Severity,
    ValidationError,
)
from contracts._fields import FieldSpec, field_specs, fields_by_node, fields_of, spec_of
from contracts._mask import mask_personal, mask_value, redact_document
from contracts._model import (
    Bldinfo,
    Diseinfo,
    Envelope,
    Icuinfo,
    Iteminfo,
    Oprninfo,
    Opspdiseinfo,
    Payinfo,
    Setlinfo,
    Settlement,
)
from contracts._national import (
    Input4101,
    Input4101A,
    Response,
    Setlinfo4101,
    Setlinfo4101A,
)
from contracts._normalise import normalise
from contracts._regions import city_of
from contracts._rulebook import RuleConfig, RuleMeta, rulebook
from contracts._timefmt import (
    CST,
    display_zone,
    in_display_zone,
    parse_date,
    parse_duration,
    parse_time,
    set_display_zone,
    shown,
    shown_or_none,
)
from contracts._timeliness import LAG_BUCKETS, LAG_EDGES_H, lag_bucket, lag_percentile
from contracts._validator import Validator, is_rejected

__all__ = [
    "CST",
    "DIMENSIONS",
    "LAG_BUCKETS",
    "LAG_EDGES_H",
    "OPRN_CLASSES",
    "Bldinfo",
    "CodeImportError",
    "CodeTable",
    "CodeTables",
    "ContractError",
    "DiagnosisCode",
    "Dictionaries",
    "Dimension",
    "Diseinfo",
    "Envelope",
    "FieldSpec",
    "Icuinfo",
    "Input4101",
    "Input4101A",
    "Iteminfo",
    "OperationCode",
    "OprnClass",
    "Oprninfo",
    "Opspdiseinfo",
    "Payinfo",
    "Problem",
    "Reason",
    "Response",
    "RuleConfig",
    "RuleMeta",
    "Setlinfo",
    "Setlinfo4101",
    "Setlinfo4101A",
    "Settlement",
    "Severity",
    "ValidationError",
    "Validator",
    "certno_check_char",
    "city_of",
    "diagnosis_table_from_csv",
    "display_zone",
    "field_specs",
    "fields_by_node",
    "fields_of",
    "import_nhsa_rows",
    "in_display_zone",
    "is_diagnosis_format",
    "is_operation_format",
    "is_rejected",
    "is_valid_certno",
    "lag_bucket",
    "lag_percentile",
    "mask_personal",
    "mask_value",
    "normalise",
    "normalise_code",
    "operation_table_from_csv",
    "parse_date",
    "parse_duration",
    "parse_time",
    "redact_document",
    "rulebook",
    "set_display_zone",
    "shown",
    "shown_or_none",
    "spec_of",
    "tables_from_manifest",
]
