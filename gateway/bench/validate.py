"""Decode + validate throughput against the msgspec decode ceiling, on one core.

Three sets of the same realistic lists (contracts.samples): clean ones, the same lists with
one rejection each (the findings a HIS commonly gets wrong, in turn), and clean lists whose
diagnoses and operations are drawn from the full code tables. Also the cost of the code
tables themselves: load time, Validator build time and memory.

With `peer`, the obvious peer (gateway.bench.peer: pydantic v2 models of the envelope) decodes
and validates the same clean bytes in the same alternating rounds: `peer_records_per_s` and
`validate_ratio` (dipgw's clean rate ÷ the peer's; above 1, dipgw is faster).
"""

from __future__ import annotations

import gc
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import datetime
from typing import Any

from adapters.runtime.errors import DipgwError

__all__ = ["findings_documents", "full_table_documents", "run_benchmark", "table_costs"]

Doc = dict[str, Any]


def _best_rates(
    passes: list[tuple[Callable[[bytes], object], list[bytes]]], rounds: int
) -> list[float]:
    """Records per second of each (function, documents) pass: the fastest of `rounds`.

    The passes alternate (one of each per round), so that every figure sees the same
    machine: on a shared machine a burst of load then disturbs a pass of each rather than
    all the passes of one.
    """
    best = [float("inf")] * len(passes)
    for _ in range(rounds):
        for i, (func, docs) in enumerate(passes):
            start = time.perf_counter()
            for doc in docs:
                func(doc)
            best[i] = min(best[i], time.perf_counter() - start)
    return [len(docs) / b for b, (_f, docs) in zip(best, passes, strict=True)]


def _unknown_diagnosis(doc: Doc) -> None:
    doc["input"]["diseinfo"][2]["diag_code"] = "Z99.999x999"


def _unknown_operation(doc: Doc) -> None:
    doc["input"]["oprninfo"][0]["oprn_oprt_code"] = "99.9999x999"


def _dictionary_value(doc: Doc) -> None:
    doc["input"]["setlinfo"]["adm_way"] = "x"


def _missing_field(doc: Doc) -> None:
    doc["input"]["setlinfo"]["psn_name"] = ""


def _too_long(doc: Doc) -> None:
    doc["input"]["setlinfo"]["medcasno"] = "B" * 41


def _bad_timestamp(doc: Doc) -> None:
    doc["input"]["oprninfo"][1]["oprn_oprt_endtime"] = "2026/11/12 10:30"


#: one rejection each, in turn: codes, a dictionary value, a required field, a length, a
#: timestamp the national format does not allow
FINDINGS: tuple[Callable[[Doc], None], ...] = (
    _unknown_diagnosis,
    _unknown_operation,
    _dictionary_value,
    _missing_field,
    _too_long,
    _bad_timestamp,
)


def findings_documents(rng: random.Random, n: int, now: datetime) -> list[bytes]:
    """`n` realistic lists with one rejection each (`FINDINGS` in turn)."""
    import msgspec

    from contracts.samples import make_settlement

    out = []
    for i in range(n):
        doc = make_settlement(rng, now=now)
        FINDINGS[i % len(FINDINGS)](doc)
        out.append(msgspec.json.encode(doc))
    return out


def full_table_documents(rng: random.Random, n: int, now: datetime) -> list[bytes]:
    """`n` clean lists whose secondary diagnoses and operations are drawn from the whole
    bundled tables (codes of categories without a sex or age constraint)."""
    import msgspec

    from contracts import CodeTables
    from contracts._diagrules import constraints_by_category
    from contracts.samples import make_settlement

    tables = CodeTables.load_bundled()
    diag, oprn = tables.diagnosis_table(), tables.operation_table()
    assert diag is not None and oprn is not None
    constrained = constraints_by_category()
    diagnoses = sorted(c for c in diag.entries if c[:3] not in constrained)
    operations = sorted(oprn.entries)
    out = []
    for _ in range(n):
        doc = make_settlement(rng, now=now)
        for d in doc["input"]["diseinfo"][1:]:
            entry = diag.entries[rng.choice(diagnoses)]
            d["diag_code"], d["diag_name"] = entry.code, entry.name
        for o in doc["input"]["oprninfo"]:
            entry_o = oprn.entries[rng.choice(operations)]
            o["oprn_oprt_code"], o["oprn_oprt_name"] = entry_o.code, entry_o.name
        out.append(msgspec.json.encode(doc))
    return out


def table_costs() -> dict[str, float]:
    """Load time of the bundled code tables (from the package data, uncached), build time
    of a Validator over them, and the memory both hold (tracemalloc, a separate run)."""
    from importlib import resources

    from contracts import CodeTables, Validator
    from contracts._codes import maps_from_manifest, tables_from_manifest

    base = resources.files("contracts").joinpath("data/codes")
    manifest = base.joinpath("manifest.toml").read_text(encoding="utf-8")

    def read(name: str) -> bytes:
        return base.joinpath(name).read_bytes()

    def load() -> CodeTables:
        diag, oprn = tables_from_manifest(manifest, read)
        dmap, omap = maps_from_manifest(manifest, read)
        return CodeTables(diag, oprn, diagnosis_map=dmap, operation_map=omap)

    Validator()  # everything else a first Validator loads (dictionaries, rules) out of the way
    gc.collect()
    start = time.perf_counter()
    tables = load()
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    Validator(codes=tables)
    built = time.perf_counter() - start
    del tables
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tables = load()
    validator = Validator(codes=tables)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del validator, tables
    return {
        "codes_load_s": round(loaded, 3),
        "validator_build_s": round(built, 3),
        "codes_memory_mb": round(held / 2**20, 1),
    }


class PeerMissing(DipgwError, RuntimeError):
    """The peer cannot run here (pydantic v2 is not installed)."""


def run_benchmark(
    records: int = 5000, rounds: int = 5, seed: int = 20261124, *, peer: bool = False
) -> dict[str, Any]:
    """Every figure from documents built once, in one process on one core."""
    import msgspec

    from gateway.bench.peer import PYDANTIC_MISSING, pydantic_available

    if peer and not pydantic_available():
        raise PeerMissing(PYDANTIC_MISSING)

    from contracts import Envelope, Validator, is_rejected
    from contracts.samples import make_envelope_bytes

    rng = random.Random(seed)
    now = datetime(2026, 11, 24, 9, 30, 0)
    docs = [make_envelope_bytes(rng, now=now) for _ in range(records)]
    with_findings = findings_documents(rng, records, now)
    full = full_table_documents(rng, records, now)
    costs = table_costs()
    validator = Validator()
    decoder = msgspec.json.Decoder(Envelope, strict=False)
    received_at = now

    def validate(doc: bytes) -> object:
        return validator.validate_json(doc, received_at=received_at)

    def rejected(batch: list[bytes]) -> int:
        return sum(
            1 for doc in batch if is_rejected(validator.validate_json(doc, received_at=now)[1])
        )

    counts = [rejected(docs), rejected(with_findings), rejected(full)]
    passes = [(decoder.decode, docs), (validate, docs), (validate, with_findings), (validate, full)]
    peer_figures: dict[str, Any] = {}
    if peer:
        from gateway.bench.peer import validate as peer_validate

        passes.append((peer_validate.validator(), docs))
        peer_figures["peer_rejected"] = peer_validate.rejected(docs)
    rates = _best_rates(passes, rounds)
    decode_rate, full_rate, findings_rate, table_rate = rates[:4]
    if peer:
        peer_figures["peer_records_per_s"] = round(rates[4])
        peer_figures["validate_ratio"] = round(full_rate / rates[4], 3)
    return {
        "records": records,
        "avg_bytes": round(sum(map(len, docs)) / len(docs)),
        "rejected": counts[0],
        "records_per_s": round(full_rate),
        "decode_only_records_per_s": round(decode_rate),
        "ratio": round(full_rate / decode_rate, 3),
        "with_findings_records_per_s": round(findings_rate),
        "with_findings_rejected": counts[1],
        "with_findings_ratio": round(findings_rate / full_rate, 3),
        "full_tables_records_per_s": round(table_rate),
        "full_tables_rejected": counts[2],
        **peer_figures,
        **costs,
        "python": sys.version.split()[0],
        "msgspec": msgspec.__version__,
    }
