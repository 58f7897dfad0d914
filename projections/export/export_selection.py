"""What an export selects and how it reads it: the filters by when things happened
(``occurred_at``) and by what the record showed at a time (``as_of``), and the store's
entries in global position order, as the canonical JSON lines of ``events.jsonl``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

import orjson

from ledger.catalogue.terms import LONDON, occurred_instant
from ledger.errors import LedgerError
from projections.fold import when

#: Up to this many named cases are read case by case and merged by position; more are
#: found by one pass over the store's global order.
MERGE_LIMIT: Final = 64


class StoreDoesNotVerify(LedgerError):
    """The store itself fails its hash chain while exporting (exit code 1)."""


class LedgerToExport(Protocol):
    """What the export needs of :class:`ledger.application.CaseLedger`."""

    clock: Any

    def iter_records(self, after: int = 0) -> Iterator[dict[str, Any]]: ...
    def case_records(self, ref: str) -> list[dict[str, Any]]: ...
    def personal_data(self, ref: str) -> Sequence[Any]: ...
    def check_personal_export(self) -> None: ...
    def has_case(self, ref: str) -> bool: ...


# --- times ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeBound:
    """A time given on the command line and the instant it was read as."""

    given: str
    instant: datetime

    def as_dict(self) -> dict[str, str]:
        return {"given": self.given, "instant": self.instant.astimezone(UTC).isoformat()}


def parse_moment(text: str | datetime, *, end_of_day: bool, name: str = "time") -> TimeBound:
    """Read a time per ``cli.md``: ``YYYY-MM-DD`` (Europe/London; the end of that day for
    an upper bound, its start for a lower one) or an ISO 8601 datetime (with offset, or
    Europe/London local time), seconds and fractions allowed: read by
    :func:`projections.fold.when.parse_moment`, as every other time option is."""
    if isinstance(text, datetime):
        moment = text if text.tzinfo else text.replace(tzinfo=LONDON)
        return TimeBound(moment.isoformat(), moment)
    value = text.strip()
    moment = when.parse_moment(value, name, upper=end_of_day)  # the one grammar of cli.md
    return TimeBound(value, moment)


def recorded_key(moment: datetime) -> str:
    """A time in the stored ``recorded_at`` form, so the two compare as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class ExportFilters:
    cases: tuple[str, ...] | None
    occurred_from: TimeBound | None
    occurred_to: TimeBound | None
    as_of: TimeBound | None

    @property
    def recorded_limit(self) -> str | None:
        return recorded_key(self.as_of.instant) if self.as_of else None

    def known(self, record: dict[str, Any], limit: str | None) -> bool:
        """Recorded by the as-of time (the record as it stood then)."""
        return limit is None or record["recorded_at"] <= limit

    def in_window(self, record: dict[str, Any]) -> bool:
        """Happened within ``--from``/``--to``."""
        if self.occurred_from is None and self.occurred_to is None:
            return True
        moment = occurred_instant(record["occurred_at"])
        if self.occurred_from is not None and moment < self.occurred_from.instant:
            return False
        return self.occurred_to is None or moment <= self.occurred_to.instant

    @property
    def narrowing(self) -> bool:
        return (
            self.occurred_from is not None or self.occurred_to is not None or self.as_of is not None
        )

    def describe(self) -> str:
        parts = []
        if self.cases is None:
            parts.append("every case in the store")
        else:
            parts.append(f"case{'s' if len(self.cases) > 1 else ''} {', '.join(self.cases)}")
        if self.occurred_from or self.occurred_to:
            lo = self.occurred_from.given if self.occurred_from else "the start"
            hi = self.occurred_to.given if self.occurred_to else "now"
            parts.append(f"entries that happened from {lo} to {hi}")
        else:
            parts.append("all their entries")
        if self.as_of:
            parts.append(f"as the record stood at {self.as_of.given}")
        return "Exported: " + ", ".join(parts) + "."

    def as_dict(self) -> dict[str, Any]:
        return {
            "cases": list(self.cases) if self.cases is not None else None,
            "occurred_from": self.occurred_from.as_dict() if self.occurred_from else None,
            "occurred_to": self.occurred_to.as_dict() if self.occurred_to else None,
            "as_of": self.as_of.as_dict() if self.as_of else None,
            "occurred_filter_rule": (
                "an entry is exported when its own stored occurred_at (a bare date meaning "
                "the start of that day, Europe/London) lies within [occurred_from, "
                "occurred_to]; a bare date given as occurred_to means the end of that day"
            ),
            "as_of_rule": "only entries with recorded_at up to as_of are exported",
        }


# --- the entries, in global order -----------------------------------------------------


def entries_in_order(
    ledger: LedgerToExport, cases: tuple[str, ...] | None
) -> Iterator[tuple[int, dict[str, Any], bytes]]:
    """``(position, record, line)`` of the records to consider, in global position order;
    ``line`` is the record's canonical JSON with its ``position``, and a newline."""
    if cases is None:
        raw = _raw_states(ledger)
        if raw is not None:
            yield from raw
            return
        records: Iterable[dict[str, Any]] = ledger.iter_records(0)
    elif len(cases) <= MERGE_LIMIT:
        records = heapq.merge(
            *(ledger.case_records(ref) for ref in cases), key=lambda r: int(r["position"])
        )
    else:
        wanted = set(cases)
        records = (r for r in ledger.iter_records(0) if r["case"] in wanted)
    dumps = orjson.dumps
    sort = orjson.OPT_SORT_KEYS
    for record in records:
        yield record["position"], record, dumps(record, option=sort) + b"\n"


_PREV: Final = b',"prev_hash":"'


def _raw_states(ledger: LedgerToExport) -> Iterator[tuple[int, dict[str, Any], bytes]] | None:
    """The fast path for a whole-store export: the store keeps each record as its
    canonical JSON (without ``position``), so the line is those bytes with
    ``"position":N`` put in its sorted place, just before ``prev_hash`` (no other field
    of the catalogue sorts between them), instead of decoding and re-encoding."""
    recorder = getattr(ledger, "recorder", None)
    mapper = getattr(ledger, "ledger_mapper", None)
    if not hasattr(recorder, "iter_states") or mapper is None:
        return None
    cipher = getattr(mapper, "cipher", None)
    compressor = getattr(mapper, "compressor", None)

    def generate() -> Iterator[tuple[int, dict[str, Any], bytes]]:
        loads = orjson.loads
        dumps = orjson.dumps
        sort = orjson.OPT_SORT_KEYS
        for position, state in recorder.iter_states(0):  # type: ignore[union-attr]
            plain = state
            if cipher is not None:
                plain = cipher.decrypt(plain)
            if compressor is not None:
                plain = compressor.decompress(plain)
            record = loads(plain)
            at = plain.rfind(_PREV)
            if at > 0 and plain[-1:] == b"}" and "position" not in record:
                line = b'%s,"position":%d%s\n' % (plain[:at], position, plain[at:])
                record["position"] = position
            else:  # not the stored form expected: encode it afresh
                record["position"] = position
                line = dumps(record, option=sort) + b"\n"
            yield position, record, line

    return generate()
