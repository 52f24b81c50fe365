"""The validator: decode (fast path first) and apply every rule as configured (ConfiguredRules)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import msgspec

from contracts._checks import RecordChecks
from contracts._codes import CodeTables
from contracts._crossrules import CrossRules
from contracts._dicts import Dictionaries
from contracts._errors import ValidationError
from contracts._fastpath import (
    INFNO_VALUES,
    relaxed_decoder,
    strict_envelope_type,
    typed_envelope_type,
)
from contracts._fieldrules import FieldRules
from contracts._fields import LIST_NODES, fields_of
from contracts._followon import group_follow_ons
from contracts._legacy import LEGACY_RULES, refine_legacy
from contracts._model import Envelope, Settlement
from contracts._normalise import is_legacy, normalise
from contracts._numbers import numbers_out_of_range, out_of_range
from contracts._raw import (
    convert_relaxed,
    field_at,
    is_temporal,
    raw_envelope_type,
    required_present,
    temporal_at,
    to_canonical,
    whole_nodes,
)
from contracts._rulebook import ConfiguredRules, RuleConfig

__all__ = ["Validator", "is_rejected"]

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
#: refusals of the sealed decoder only (`_refused_json`): an unknown key, a JSON type
#: (`Expected `int | null`, got `str``), which the strict decoder may skip or convert
_SEALED_ONLY = re.compile(r"^Object contains unknown field |^Expected `[^`]*`, got `")
#: strict decoders with relaxed fields per Validator (≈ 2 ms to build each)
_RELAXED_AT_MOST = 128


_RELAXABLE_NODES = ("setlinfo", *LIST_NODES)


@lru_cache(maxsize=256)
def _relaxed_nodes(relaxed: frozenset[tuple[str, str]]) -> tuple[str, ...]:
    """The record nodes (not the envelope) a relaxed set touches, in a fixed order."""
    return tuple(n for n in _RELAXABLE_NODES if any(node == n for node, _f in relaxed))


@lru_cache(maxsize=256)
def _split_relaxed(
    relaxed: frozenset[tuple[str, str]],
) -> tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]]:
    """(timestamps, text fields) of a relaxed set: few distinct sets, each split once."""
    times = frozenset(p for p in relaxed if is_temporal(p))
    return times, relaxed - times


def is_rejected(errors: list[ValidationError]) -> bool:
    """True when any error has severity reject (warnings alone accept a record)."""
    return any(e.severity == "reject" for e in errors)


def _record_path(path: str) -> str:
    """`$.input.diseinfo[2].diag_code` -> `diseinfo[2].diag_code`; `$.msgid` -> `msgid`."""
    path = path.lstrip(".")
    if path.startswith("input."):
        return path[len("input.") :]
    return path


class Validator:
    """Checks settlement lists against the national contract and one city's rule config.

    Build one per configuration and reuse it: construction compiles the fast-path decoder
    (a few milliseconds); validation is pure and thread-safe.
    """

    __slots__ = (
        "_checked",
        "_checked_sealed",
        "_checks",
        "_diag_codes",
        "_fast",
        "_fields",
        "_lenient",
        "_oprn_codes",
        "_relaxable_texts",
        "_required_nodes",
        "_sealed",
        "_sealed_classes",
        "_strict",
        "_strict_nodes",
        "_strict_relaxed",
        "_typed",
        "_value_nodes",
        "codes",
        "config",
        "dictionaries",
        "policy",
    )

    def __init__(
        self,
        config: RuleConfig | None = None,
        codes: CodeTables | None = None,
        dictionaries: Dictionaries | None = None,
        cross_rules: CrossRules | None = None,
    ) -> None:
        self.config = config or RuleConfig()
        self.policy = ConfiguredRules(self.config)
        self.codes = codes if codes is not None else CodeTables.load_bundled()
        self.dictionaries = dictionaries or Dictionaries.load_bundled()
        self._fields = FieldRules(self.policy, self.dictionaries)
        # list nodes that have anything to check, per fast/slow path and per flavour
        self._value_nodes = {
            fast: tuple(n for n in LIST_NODES if self._fields.has_values(n, fast))
            for fast in (False, True)
        }
        self._required_nodes = {
            legacy: tuple(n for n in LIST_NODES if self._fields.has_required(n, legacy))
            for legacy in (False, True)
        }
        # the cross-field rules (default: contracts._checks.CROSS_RULES), each behind its own
        # pre-check on both paths
        self._checks = RecordChecks(self.policy, self.codes, cross_rules)
        self._strict_nodes: dict[tuple[str, frozenset[str], bool], Any] = {}
        strict_type = strict_envelope_type(
            self.policy, self.dictionaries, nodes_built=self._strict_nodes
        )
        # strict decoders with some timestamps as text (one field, or whole nodes:
        # `whole_nodes`) or one text field unconstrained, sealed (tried first) or not: built
        # when first needed, at most _RELAXED_AT_MOST
        self._strict_relaxed: dict[
            tuple[frozenset[tuple[str, str]], bool], msgspec.json.Decoder[Any]
        ] = {}
        # text fields whose strict constraints are generic checks only (length, dictionary,
        # required): one of them refused is checked alone (`_strict_relaxed_json`)
        self._relaxable_texts = frozenset(
            (node, s.field)
            for node in ("setlinfo", *LIST_NODES)
            for s in fields_of(node)
            if s.type in ("str", "duration")
        )
        self._strict = msgspec.json.Decoder(strict_type, strict=False)
        # the fast path's first decoder: sealed (no unknown key, no float into an integer),
        # so a clean record needs no look for numbers out of range (`_numbers`)
        sealed_type = strict_envelope_type(
            self.policy, self.dictionaries, nodes_built=self._strict_nodes, sealed=True
        )
        self._sealed = msgspec.json.Decoder(sealed_type, strict=True)
        settlement_type = next(
            f.type for f in msgspec.structs.fields(sealed_type) if f.name == "input"
        )
        self._sealed_classes: dict[str, type] = {
            "envelope": sealed_type,
            "input": settlement_type,
            **{node: self._strict_nodes[node, frozenset(), True] for node in _RELAXABLE_NODES},
        }
        self._typed = msgspec.json.Decoder(typed_envelope_type(), strict=False)
        self._lenient = msgspec.json.Decoder(raw_envelope_type(), strict=False)
        diag = self.codes.diagnosis_table()
        oprn = self.codes.operation_table()
        self._diag_codes: Mapping[str, object] = {} if diag is None else diag.entries
        self._oprn_codes: Mapping[str, object] = {} if oprn is None else oprn.entries
        self._fast = self._fields.compile_fast_path(
            self._sealed.decode,
            self._refused_json,
            self._checks.check,
            diagnoses=self._diag_codes,
            operations=self._oprn_codes,
            unsealed=self._unsealed_json,
        )
        self._checked = self._fields.checks_after_decode()
        self._checked_sealed = self._fields.checks_after_sealed_decode()

    # -- public API ----------------------------------------------------------------------

    def validate(
        self,
        settlement: Settlement,
        *,
        received_at: datetime | None = None,
        mdtrtarea_admvs: str | None = None,
        fixmedins_code: str | None = None,
        insuplc_admdvs: str | None = None,
        infno: str | None = "4101A",
    ) -> list[ValidationError]:
        """Every finding on one settlement list (the envelope's `input`).

        The envelope fields that rules need are passed in: the treating region and the
        institution (format, institution inside region), the insured region, and the
        flavour (`infno`: 4101 requires its own fields and derives the summary). The record
        is normalised in place first (see `normalise`).
        """
        out: list[ValidationError] = []
        legacy = is_legacy(infno)
        self._generic(settlement, out)
        self._values(settlement, out)
        normalise(settlement, infno)
        self._required(settlement, legacy, out)
        self._checks.run(
            settlement,
            out,
            legacy=legacy,
            received_at=received_at,
            mdtrtarea_admvs=mdtrtarea_admvs,
            fixmedins_code=fixmedins_code,
            insuplc_admdvs=insuplc_admdvs,
            trusted_codes=self._codes_known(settlement),
        )
        if out:
            self._legacy(out, settlement)
            group_follow_ons(out, settlement)
        return out

    def validate_envelope(
        self, envelope: Envelope, *, received_at: datetime | None = None
    ) -> list[ValidationError]:
        """Every finding on a whole request: envelope fields plus the settlement list."""
        out: list[ValidationError] = []
        self._fields.check_generic(envelope, "envelope", "", out)
        self._envelope_python(envelope, out)
        out.extend(
            self.validate(
                envelope.input,
                received_at=received_at,
                mdtrtarea_admvs=envelope.mdtrtarea_admvs,
                fixmedins_code=envelope.fixmedins_code,
                insuplc_admdvs=envelope.insuplc_admdvs,
                infno=envelope.infno,
            )
        )
        return out

    def validate_decoded(
        self,
        envelope: Envelope,
        decode_errors: list[ValidationError],
        *,
        received_at: datetime | None = None,
    ) -> list[ValidationError]:
        """Decode errors of a leniently decoded envelope plus every rule finding on it.

        A timestamp that could not be read is reported once (FMT_DATETIME), not a second
        time as a missing required field.
        """
        bad = {e.field for e in decode_errors if e.rule == "FMT_DATETIME"}
        errors = list(decode_errors)
        try:
            found = self.validate_envelope(envelope, received_at=received_at)
        except ArithmeticError:  # as in `validate_json`
            tree = msgspec.to_builtins(envelope, builtin_types=(Decimal,))
            return [*errors, *self._out_of_range(out_of_range(tree) or ["$"])]
        for err in found:
            if not (err.rule == "REQ_FIELD" and err.field in bad):
                errors.append(err)
        return errors

    def decode(self, raw: bytes | str) -> tuple[Envelope | None, list[ValidationError]]:
        """Lenient decode of one JSON document into the canonical Envelope.

        Errors come in the common shape: DEC_JSON / DEC_SHAPE / DEC_TYPE (no record), or
        FMT_DATETIME for each unreadable timestamp (the record is returned, that field None).
        """
        if out_of_range := numbers_out_of_range(raw):
            return None, self._out_of_range(out_of_range)
        return self._decode_lenient(raw)

    def _decode_lenient(self, raw: bytes | str) -> tuple[Envelope | None, list[ValidationError]]:
        """`decode` without the look for numbers out of range (the caller did it)."""
        try:
            loose = self._lenient.decode(raw)
        except msgspec.ValidationError as exc:
            return None, [self._decode_error(str(exc))]
        except msgspec.DecodeError as exc:
            err = self.policy.error("DEC_JSON", "") or self._forced("DEC_JSON", "")
            detail = str(exc)
            return None, [msgspec.structs.replace(err, message_en=f"{err.message_en} ({detail})")]
        errors: list[ValidationError] = []
        return to_canonical(loose, self.policy, errors), errors

    def decode_object(self, obj: object) -> tuple[Envelope | None, list[ValidationError]]:
        """Like `decode`, from already-parsed data (a CSV row mapped onto the document)."""
        try:
            loose = msgspec.convert(obj, raw_envelope_type(), strict=False)
        except msgspec.ValidationError as exc:
            return None, [self._decode_error(str(exc))]
        errors: list[ValidationError] = []
        return to_canonical(loose, self.policy, errors), errors

    def validate_json(
        self, raw: bytes | str, *, received_at: datetime | None = None
    ) -> tuple[Envelope | None, list[ValidationError]]:
        """Decode and validate one JSON document: the hot path.

        Tries the strict decoder first; a record it accepts only needs the python-side
        rules. Anything else is decoded leniently and given the full engine, so the result
        is the same either way (only faster for clean records).
        """
        # = sealed strict decode, then _values(fast=True), normalise, _required and
        # RecordChecks.run(trusted_codes=True), unrolled into one generated function
        # (FieldRules.compile_fast_path); `_refused_json` when the sealed decoder refuses,
        # `_unsealed_json` when a values guard fails: numbers out of range are looked for
        # there, the only places one can hide
        try:
            envelope, errors = self._fast(raw, received_at)
        except ArithmeticError:  # a number no sum can hold (1E+999999999): found, and named
            return None, self._out_of_range(numbers_out_of_range(raw, always=True) or ["$"])
        if errors and envelope is not None:
            self._legacy(errors, envelope.input)
            group_follow_ons(errors, envelope.input)
        return envelope, errors

    def _refused_json(
        self, raw: bytes | str, received_at: datetime | None, refused: msgspec.DecodeError
    ) -> tuple[Envelope | None, list[ValidationError]]:
        """`_unsealed_json` for a document the sealed decoder refused, without decoding it
        again when the strict decoder would refuse it at the same place for the same reason.

        The strict decoder accepts all the sealed one does, with the same values, so it
        gets at least as far; it only reads on where sealing alone refused (an unknown key,
        a JSON type it converts: `_SEALED_ONLY`). Any other refusal (a value, a length, a
        malformed document) is its own, word for word.
        """
        message = str(refused)
        if _SEALED_ONLY.search(message) is not None:
            return self._unsealed_json(raw, received_at)
        # refused for a value: decoded sealed again with that field relaxed, so that the
        # look for numbers out of range is spared as on the clean path (`_strict_relaxed_json`)
        pair = field_at(message) if isinstance(refused, msgspec.ValidationError) else None
        tried = pair is not None and (is_temporal(pair) or pair in self._relaxable_texts)
        if tried and pair is not None:
            found = self._strict_relaxed_json(raw, received_at, pair, sealed=True)
            if found is not None:
                return found
        if out_of_range := numbers_out_of_range(raw):
            return None, self._out_of_range(out_of_range)
        return self._slow_json(raw, received_at, refused, relaxed_tried=tried)

    def _unsealed_json(
        self, raw: bytes | str, received_at: datetime | None
    ) -> tuple[Envelope | None, list[ValidationError]]:
        """A document the sealed decoder refused, or whose values need a closer look (see
        `FieldRules.compile_fast_path`): the fast path as it is without sealing.

        Numbers out of range looked for; then the strict decoder (unknown keys ignored, an
        integral float or a digit string into an integer field) and the fast path's checks,
        or the full engine, told what the strict decoder refused.
        """
        if out_of_range := numbers_out_of_range(raw):
            return None, self._out_of_range(out_of_range)
        try:
            envelope = self._strict.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return self._slow_json(raw, received_at, exc)
        found_checked: tuple[Envelope | None, list[ValidationError]] = self._checked(
            envelope, received_at
        )
        return found_checked

    def _slow_json(
        self,
        raw: bytes | str,
        received_at: datetime | None,
        refused: msgspec.DecodeError | None = None,
        *,
        relaxed_tried: bool = False,
    ) -> tuple[Envelope | None, list[ValidationError]]:
        """The full engine, for a document the strict decoder refused (`refused`, its error).

        First the typed decoder (canonical types, naive timestamps: what a record refused for
        a value still decodes into, without converting field by field). A timestamp it cannot
        read (malformed, an offset, a bare date, `""`) is read again as text in that field
        only (`_relaxed_json`); if the strict decoder already named a timestamp, the typed
        decode is skipped. Anything else, the lenient decoder, which reports wrong types.
        `validate_json` has already looked for numbers out of range. `relaxed_tried`: the
        sealed `_strict_relaxed_json` refused the record for a value (the unsealed one would
        refuse it at the same place).
        """
        if isinstance(refused, msgspec.ValidationError) and (pair := field_at(str(refused))):
            if not relaxed_tried and (is_temporal(pair) or pair in self._relaxable_texts):
                found = self._strict_relaxed_json(raw, received_at, pair)
                if found is not None:
                    return found
            if is_temporal(pair):
                return self._relaxed_json(raw, received_at, pair)
        try:
            typed = self._typed.decode(raw)
        except msgspec.ValidationError as exc:
            if pair := temporal_at(str(exc)):
                return self._relaxed_json(raw, received_at, pair)
            return self._lenient_json(raw, received_at)
        except msgspec.DecodeError:
            return self._lenient_json(raw, received_at)
        return typed, self.validate_decoded(typed, [], received_at=received_at)

    def _strict_relaxed_json(
        self,
        raw: bytes | str,
        received_at: datetime | None,
        pair: tuple[str, str],
        *,
        sealed: bool = False,
    ) -> tuple[Envelope | None, list[ValidationError]] | None:
        """A record the strict types refused only for timestamps and at most one text field:
        the fast path's checks.

        Decoded by the strict types with the failing timestamps as text (one field; from a
        second on, whole nodes) and the text field unconstrained; the timestamps converted
        (FMT_DATETIME as the lenient path reports them), the text field checked alone
        (`check_generic_field`: length, dictionary, required), then the fast path after its
        decode (`checked`): the full engine's generic checks have nothing else to find on
        such a record, and report in that order. What the full engine would report
        differently goes back to it: a required timestamp left empty (its REQ_FIELD is a
        generic check), a number no sum can hold. None: the strict types refuse more (a
        second text field, a number, a wrong type), or the decoders built are many.

        `sealed`: the decoder is sealed (`Validator._sealed` with the fields relaxed), so,
        as on the clean path, no number was rounded on the way; a refusal only sealing makes
        (`_SEALED_ONLY`), or a values guard that fails, hands the record to `_unsealed_json`
        as the fast path does.
        """
        relaxed = frozenset((pair,))
        while True:
            decoder = self._strict_relaxed_decoder(relaxed, sealed)
            if decoder is None:
                return None
            try:
                envelope: Any = decoder.decode(raw)
            except msgspec.ValidationError as exc:
                message = str(exc)
                if sealed and _SEALED_ONLY.search(message) is not None:
                    return self._unsealed_json(raw, received_at)
                more = field_at(message)
                if more is None or more in relaxed or not is_temporal(more):
                    return None
                times, texts = _split_relaxed(relaxed)
                relaxed = whole_nodes(times | {more}) | texts
                continue
            except msgspec.DecodeError:
                return None
            if sealed:
                self._as_sealed(envelope, relaxed)
            errors: list[ValidationError] = []
            times, texts = _split_relaxed(relaxed)
            if times:
                convert_relaxed(envelope, times, self.policy, errors)
                if not required_present(envelope, times):
                    found_all = self.validate_decoded(envelope, errors, received_at=received_at)
                    return envelope, found_all
            for node, field in texts:
                inp = envelope.input
                entries = [inp.setlinfo] if node == "setlinfo" else getattr(inp, node)
                self._fields.check_generic_field(entries, node, field, errors)
            try:
                if not sealed:
                    envelope, found = self._checked(envelope, received_at)
                elif (checked := self._checked_sealed(envelope, received_at)) is not None:
                    envelope, found = checked
                else:
                    return self._unsealed_json(raw, received_at)
            except ArithmeticError:
                return None
            bad = {e.field for e in errors if e.rule == "FMT_DATETIME"}
            errors.extend(e for e in found if not (e.rule == "REQ_FIELD" and e.field in bad))
            return envelope, errors

    def _as_sealed(self, envelope: Any, relaxed: frozenset[tuple[str, str]]) -> None:
        """Give a record a sealed relaxed decoder read the sealed decoder's classes.

        The relaxed classes differ from those only in the relaxed fields' types (same
        fields, same order, same layout: CPython checks it on assignment), and what those
        fields hold is checked (and converted) before the record is used. The checks then
        see one class per node whichever field was relaxed: CPython specialises attribute
        reads per class, and records of five classes in turn made every read slow (about
        12 % of a record with findings, measured).
        """
        classes = self._sealed_classes
        envelope.__class__ = classes["envelope"]
        inp = envelope.input
        inp.__class__ = classes["input"]
        for node in _relaxed_nodes(relaxed):
            if node == "setlinfo":
                inp.setlinfo.__class__ = classes["setlinfo"]
                continue
            cls = classes[node]
            for entry in getattr(inp, node):
                entry.__class__ = cls

    def _strict_relaxed_decoder(
        self, relaxed: frozenset[tuple[str, str]], sealed: bool = False
    ) -> msgspec.json.Decoder[Any] | None:
        """The strict (or sealed) decoder with `relaxed` unconstrained; None once
        `_RELAXED_AT_MOST` are built (a sender cycling through fields cannot make a Validator
        build on end)."""
        decoder = self._strict_relaxed.get((relaxed, sealed))
        if decoder is None:
            if len(self._strict_relaxed) >= _RELAXED_AT_MOST:
                return None
            strict_type = strict_envelope_type(
                self.policy, self.dictionaries, relaxed, nodes_built=self._strict_nodes,
                sealed=sealed,
            )  # fmt: skip
            decoder = self._strict_relaxed[relaxed, sealed] = msgspec.json.Decoder(
                strict_type, strict=sealed
            )
        return decoder

    def _relaxed_json(
        self, raw: bytes | str, received_at: datetime | None, pair: tuple[str, str]
    ) -> tuple[Envelope | None, list[ValidationError]]:
        """Decode with the timestamps that failed read as text, convert only those.

        The first failing field alone; at a second one, every timestamp of the nodes that
        failed (`whole_nodes`: few decoder types, built once); a refusal elsewhere, or again
        at a relaxed field (a wrong JSON type), goes to the lenient decoder. Same record and
        findings as the lenient path, without rebuilding every node and converting every
        timestamp (≈ 75 µs of a 4 KB list).
        """
        relaxed = frozenset((pair,))
        while True:
            try:
                envelope = relaxed_decoder(relaxed).decode(raw)
            except msgspec.ValidationError as exc:
                more = temporal_at(str(exc))
                if more is None or more in relaxed:
                    return self._lenient_json(raw, received_at)
                relaxed = whole_nodes(relaxed | {more})
                continue
            except msgspec.DecodeError:
                return self._lenient_json(raw, received_at)
            errors: list[ValidationError] = []
            convert_relaxed(envelope, relaxed, self.policy, errors)
            return envelope, self.validate_decoded(envelope, errors, received_at=received_at)

    def _lenient_json(
        self, raw: bytes | str, received_at: datetime | None
    ) -> tuple[Envelope | None, list[ValidationError]]:
        """`decode` + `validate_decoded`, numbers out of range already looked for."""
        envelope, errors = self._decode_lenient(raw)
        if envelope is None:
            return None, errors
        return envelope, self.validate_decoded(envelope, errors, received_at=received_at)

    # -- internals -----------------------------------------------------------------------

    def _codes_known(self, s: Settlement) -> bool:
        """Every diagnosis (`diseinfo`, `wm_dise_code`) and `oprninfo` code is in the latest
        tables: the code rules need no lookup (the fast path's generated test, for the full
        engine; the checks still look up when an older version is in force)."""
        diag = self._diag_codes
        code = s.setlinfo.wm_dise_code
        if code and code not in diag:
            return False
        for d in s.diseinfo:
            code = d.diag_code
            if code and code not in diag:
                return False
        oprn = self._oprn_codes
        for o in s.oprninfo:
            code = o.oprn_oprt_code
            if code and code not in oprn:
                return False
        return True

    def _legacy(self, errors: list[ValidationError], settlement: Settlement) -> None:
        """DIAG_UNKNOWN / OPRN_UNKNOWN of a legacy code -> DIAG_LEGACY / OPRN_LEGACY."""
        for err in errors:
            if err.rule in LEGACY_RULES:
                refine_legacy(errors, settlement, self.codes, self.policy)
                return

    def _decode_error(self, text: str) -> ValidationError:
        m = _AT.search(text)
        if m is None:
            return self.policy.error("DEC_SHAPE", "") or self._forced("DEC_SHAPE", "")
        path = _record_path(m.group("path"))
        err = self.policy.error("DEC_TYPE", path) or self._forced("DEC_TYPE", path)
        detail = text[: m.start()]
        return msgspec.structs.replace(err, message_en=f"{err.message_en} ({detail})")

    def _out_of_range(self, paths: list[str]) -> list[ValidationError]:
        return [self.decode_failure("DEC_TYPE", p, "number out of range") for p in paths]

    def decode_failure(
        self, rule: str, field: str = "", detail: str | None = None
    ) -> ValidationError:
        """A decode error (DEC_JSON, DEC_SHAPE, DEC_TYPE, DEC_ROW) for an adapter to report.

        `detail` (a parser message without data values) is appended to the English gloss.
        """
        err = self.policy.error(rule, field) or self._forced(rule, field)
        if detail:
            err = msgspec.structs.replace(err, message_en=f"{err.message_en} ({detail})")
        return err

    def _forced(self, rule: str, path: str) -> ValidationError:
        """Decode errors cannot be switched off: without a record there is nothing to accept."""
        meta = self.policy.rules[rule]
        return ValidationError(
            rule=rule,
            field=path,
            dimension=meta.dimension,
            severity="reject",
            message=meta.message.format(field=path),
            message_en=meta.message_en.format(field=path),
        )

    def _envelope_python(self, envelope: Envelope, out: list[ValidationError]) -> None:
        self._fields.check_values(envelope, "envelope", "", out)
        self._fields.check_required(envelope, "envelope", "", False, out)
        if envelope.infno and envelope.infno not in INFNO_VALUES:
            err = self.policy.error("ENV_INFNO", "infno")
            if err is not None:
                out.append(err)

    def _generic(self, s: Settlement, out: list[ValidationError]) -> None:
        fields = self._fields
        fields.check_generic(s.setlinfo, "setlinfo", "setlinfo.", out)
        for node in LIST_NODES:
            entries = getattr(s, node)
            if entries:
                fields.check_list_generic(entries, node, out)

    def _values(self, s: Settlement, out: list[ValidationError], fast: bool = False) -> None:
        fields = self._fields
        fields.check_values(s.setlinfo, "setlinfo", "setlinfo.", out, fast)
        for node in self._value_nodes[fast]:
            entries = getattr(s, node)
            if entries:
                fields.check_list_values(entries, node, out, fast)

    def _required(self, s: Settlement, legacy: bool, out: list[ValidationError]) -> None:
        fields = self._fields
        fields.check_required(s.setlinfo, "setlinfo", "setlinfo.", legacy, out)
        for node in self._required_nodes[legacy]:
            entries = getattr(s, node)
            if entries:
                fields.check_list_required(entries, node, legacy, out)
