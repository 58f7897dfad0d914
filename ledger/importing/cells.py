"""Reading one tracker row's fields through the mapping: each field's cell, or its fallbacks'
or the mapping's default, typed by the field's kind (text, choice, date, moment, list,
bool), with where each value came from; a cell that cannot be read is a :class:`RowProblem`
naming the spreadsheet row, the column and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time

from ledger.catalogue.models import EARLIEST_DATE, LATEST_DATE
from ledger.errors import InputError
from ledger.importing.mapping import (
    BUILTIN_FALLBACKS,
    DATED_ITEM,
    FALSE_WORDS,
    FIELDS,
    ISO_FORMATS,
    NONE_WORDS,
    TRUE_WORDS,
    Cell,
    FieldSpec,
    TrackerMapping,
    match_key,
)
from ledger.importing.sheet import TrackerRow, blank_cell


class RowProblem(InputError):
    """One tracker row cannot be imported: its spreadsheet row, case, column and reason."""

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        line: int | None = None,
        case: str | None = None,
        code: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> None:
        self.case = case
        super().__init__(reason, field=field, line=line, code=code, params=params)

    def describe(self) -> str:
        where = f"row {self.line}" if self.line is not None else "a row"
        if getattr(self, "case", None):
            where += f" ({self.case})"
        if self.field:
            where += f", {self.field}"
        return f"{where}: {self.reason}"


def _format_example(fmt: str) -> str:
    return datetime(2016, 10, 3).strftime(fmt)


def _moment_text(moment: datetime, day_only: bool) -> str:
    if moment.tzinfo is not None:
        moment = moment.replace(tzinfo=None)  # a tracker's times are local (Europe/London)
    if day_only or moment.time() == time(0):
        return moment.date().isoformat()
    return moment.replace(microsecond=0).isoformat(
        timespec="minutes" if moment.second == 0 else "seconds"
    )


class RowReader:
    """Reads the tracker fields of one row through the mapping, remembering provenance."""

    def __init__(self, row: TrackerRow, mapping: TrackerMapping) -> None:
        self.row = row
        self.mapping = mapping
        self.cells = {match_key(k): v for k, v in row.cells.items()}
        self.case: str | None = None
        self.regime: str | None = None
        self.origin: dict[str, str] = {}  # tracker field -> "column `X`" / "the mapping"
        self.notes: dict[str, str] = {}  # tracker field -> why a fallback was used

    # -- errors and provenance --

    def problem(self, name: str | None, reason: str) -> RowProblem:
        where = None
        if name is not None:
            spec = self.mapping.fields.get(name)
            where = (
                f"column `{spec.column}`" if spec is not None and spec.column else f"fields.{name}"
            )
        return RowProblem(reason, field=where, line=self.row.number, case=self.case)

    def cell(self, column: str) -> Cell:
        return self.cells.get(match_key(column))

    # -- reading a field --

    def raw(self, name: str) -> tuple[Cell, str] | None:
        """The field's own non-blank cell, else its fallbacks' (recursively)."""
        return self._raw(name, set())

    def _raw(self, name: str, seen: set[str]) -> tuple[Cell, str] | None:
        seen.add(name)
        spec = self.mapping.fields.get(name)
        if spec is not None and spec.column is not None:
            value = self.cell(spec.column)
            if not blank_cell(value):
                mapped = self._mapped(spec, value)
                if not (isinstance(mapped, str) and mapped == ""):
                    return value, name
        fallback = spec.fallback if spec is not None and spec.fallback else None
        for other in fallback or BUILTIN_FALLBACKS.get(name, ()):
            if other in seen:
                continue
            found = self._raw(other, seen)
            if found is not None:
                return found
        return None

    @staticmethod
    def _mapped(spec: FieldSpec, value: Cell) -> object:
        if isinstance(value, str) and spec.values:
            return spec.values.get(match_key(value), value)
        return value

    def default(self, name: str) -> object:
        spec = self.mapping.fields.get(name)
        if spec is None:
            return None
        if self.regime is not None and self.regime in spec.by_regime:
            value = spec.by_regime[self.regime]
        else:
            value = spec.default
        if isinstance(value, str) and self.case is not None:
            return value.replace("{case}", self.case)
        if isinstance(value, list):
            return [v.replace("{case}", self.case or "") for v in value]
        return value

    def _remember(self, name: str, source: str | None, used_default: bool) -> None:
        if used_default:
            self.origin[name] = f"fields.{name} default"
            return
        assert source is not None
        column = self.mapping.fields[source].column
        self.origin[name] = f"column `{column}`"
        own = self.mapping.fields.get(name)
        if source == name or own is None:  # a built-in fallback of an unmapped field
            return
        human = name.replace("_", " ")
        if own.column:
            self.notes[name] = (
                f"the tracker has no `{own.column}` for this row, so the {human} was taken "
                f"from column `{column}`"
            )
        else:
            self.notes[name] = (
                f"the tracker does not record the {human}, so it was taken from column `{column}`"
            )

    def value(self, name: str) -> object:
        """The field's value (typed by its kind), a default, or None when absent."""
        info = FIELDS[name]
        found = self.raw(name)
        if found is None:
            value = self.default(name)
            if value is None:
                return None
            self._remember(name, None, True)
            return value
        cell, source = found
        self._remember(name, source, False)
        spec = self.mapping.fields[source]
        kind = info.kind
        if kind in ("date", "moment"):
            return self._date(source, cell, spec, day_only=kind == "date")
        if kind == "bool":
            return self._bool(source, cell, spec)
        if kind == "list":
            return self._list(name, source, cell, spec)
        text = self._text(cell)
        mapped = spec.values.get(match_key(text), text) if spec.values else text
        if kind == "choice":
            return self._choice(name, source, text, mapped, spec)
        return mapped

    @staticmethod
    def _text(cell: Cell) -> str:
        if isinstance(cell, bool):
            return "yes" if cell else "no"
        if isinstance(cell, float) and cell.is_integer():
            return str(int(cell))
        if isinstance(cell, datetime):
            return _moment_text(cell, False)
        if isinstance(cell, date):
            return cell.isoformat()
        # a cell's line breaks may be Windows ones (CSV, or Excel's _x000D_): the record
        # takes newlines only, carriage returns being control characters
        return str(cell).replace("\r\n", "\n").replace("\r", "\n").strip()

    def _choice(self, name: str, source: str, text: str, mapped: object, spec: FieldSpec) -> str:
        vocab = FIELDS[name].vocab
        if isinstance(mapped, str):
            for word in vocab:
                if match_key(word) == match_key(mapped):
                    return word
        known = ", ".join(repr(k) for k in spec.values) if spec.values else "none"
        raise self.problem(
            source,
            f"{text!r} is not a known {name.replace('_', ' ')}: add it to "
            f"[fields.{source}.values] (known: {known}) or write one of {', '.join(vocab)}",
        )

    def _bool(self, name: str, cell: Cell, spec: FieldSpec) -> bool:
        if isinstance(cell, bool):
            return cell
        text = self._text(cell)
        mapped = spec.values.get(match_key(text), text) if spec.values else text
        if isinstance(mapped, bool):
            return mapped
        if isinstance(mapped, str) and match_key(mapped) in TRUE_WORDS:
            return True
        if isinstance(mapped, str) and match_key(mapped) in FALSE_WORDS:
            return False
        raise self.problem(
            name, f"{text!r} is not yes or no: add it to [fields.{name}.values] as true or false"
        )

    def _date(self, name: str, cell: Cell, spec: FieldSpec, *, day_only: bool) -> str:
        formats = spec.formats or self.mapping.date_formats
        return self.parse_date(name, cell, formats, day_only=day_only)

    def parse_date(self, name: str, cell: Cell, formats: Sequence[str], *, day_only: bool) -> str:
        if isinstance(cell, datetime):
            return self._plausible(name, cell, repr(cell), day_only)
        if isinstance(cell, date):
            return self._plausible(name, datetime.combine(cell, time(0)), repr(cell), day_only)
        if isinstance(cell, bool):
            raise self.problem(name, f"{cell!r} is not a date")
        if isinstance(cell, int | float):
            if not self.mapping.excel_serial_dates:
                raise self.problem(
                    name,
                    f"{cell!r} is a number, not a date (if the tracker holds Excel serial "
                    "day numbers, set tracker.excel_serial_dates = true in the mapping)",
                )
            from openpyxl.utils.datetime import from_excel  # type: ignore[import-untyped]

            try:
                moment = from_excel(cell)
            except (ValueError, OverflowError, TypeError):
                moment = None
            if not isinstance(moment, datetime) or not 1 <= cell < 2_958_466:
                raise self.problem(name, f"{cell!r} is not an Excel serial date")
            return self._plausible(name, moment, repr(cell), day_only)
        text = self._text(cell)
        tried = list(dict.fromkeys([*formats, *ISO_FORMATS]))
        for fmt in tried:
            try:
                moment = datetime.strptime(text, fmt)
            except ValueError:
                continue
            if moment.year >= 1900:  # "03/10/16" read by %Y is the year 16: try on
                return self._plausible(name, moment, repr(text), day_only)
        examples = ", ".join(f"{f} (e.g. {_format_example(f)})" for f in formats)
        raise self.problem(name, f"{text!r} is not a date in the tracker's formats: {examples}")

    def _plausible(self, name: str, moment: datetime, shown: str, day_only: bool) -> str:
        if not EARLIEST_DATE <= moment.date() <= LATEST_DATE:
            raise self.problem(
                name,
                f"{shown} is not a plausible date (the ledger works with "
                f"{EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()})",
            )
        return _moment_text(moment, day_only)

    def _list(self, name: str, source: str, cell: Cell, spec: FieldSpec) -> list[str]:
        info = FIELDS[name]
        separator = spec.separator or self.mapping.list_separator
        text = self._text(cell)
        items: list[str] = []
        for part in text.replace("\r", "\n").replace(separator, "\n").split("\n"):
            item = part.strip()
            if FIELDS[source].dated_items and (dated := DATED_ITEM.match(item)):
                item = dated.group("name").strip().rstrip("-–:(").strip() or item
            if not item or match_key(item) in NONE_WORDS:
                continue
            mapped = spec.values.get(match_key(item), item) if spec.values else item
            if isinstance(mapped, str) and mapped == "":
                continue
            if not isinstance(mapped, str):
                raise self.problem(source, f"{item!r} maps to {mapped!r}, not a name")
            if info.agencies:
                mapped = self.mapping.agency_names.get(match_key(mapped), mapped)
            if info.vocab:
                mapped = self._choice(name, source, item, mapped, spec)
            if mapped not in items:
                items.append(mapped)
        return items

    # -- typed accessors --

    def text(self, name: str) -> str | None:
        value = self.value(name)
        assert value is None or isinstance(value, str)
        return value

    def strings(self, name: str) -> list[str]:
        value = self.value(name)
        assert value is None or isinstance(value, list)
        return list(value or [])

    def flag(self, name: str) -> bool | None:
        value = self.value(name)
        assert value is None or isinstance(value, bool)
        return value

    def need(self, name: str, what: str) -> str:
        value = self.text(name)
        if value is None:
            raise self.problem(name, self._missing(name, what))
        return value

    def _missing(self, name: str, what: str) -> str:
        spec = self.mapping.fields.get(name)
        if spec is None:
            return (
                f"{what} is needed but the mapping does not map fields.{name}: give it a "
                "column or a default"
            )
        return f"{what} is needed and this row has none (and the mapping gives no default)"
