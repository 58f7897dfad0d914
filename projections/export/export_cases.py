"""The bundle's files for people: ``report.html`` (through the Jinja templates) and, when
personal data is included, ``personal.jsonl``, written one case at a time after the entries;
and the CSV cells of ``timeline.csv``, whose rows the export writes with the entries.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape

from ledger.catalogue.models import CRITERIA, LONDON, occurred_instant
from ledger.integrity.canonical import GENESIS_HASH, canonical_json, personal_commitments
from projections.export.chart import build_chart
from projections.export.export_files import PERSONAL_FILE, REPORT_FILE, HashingFile
from projections.export.export_selection import ExportFilters, LedgerToExport, StoreDoesNotVerify
from projections.export.report import (
    CRITERION_LABELS,
    FACTOR_LABELS,
    OUTCOME_LABELS,
    QM2_QUESTIONS,
    REGIME_LABELS,
    Entry,
    analyse_case,
    apply_corrections,
)

#: Up to this many cases, report.html has a full section per case (about 5 ms each);
#: beyond, it lists the cases, so a whole-store export of millions of entries stays fast.
REPORT_DETAIL_CASES: Final = 1000
QUOTE: Final = '"'
QUOTES: Final = '""'
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


@dataclass(slots=True)
class CaseState:
    """What the export tracks per case while streaming (never the entries themselves)."""

    count: int = 0
    first_seq: int = 0
    last_seq: int = 0
    last_hash: str = GENESIS_HASH
    gaps: list[list[int]] = field(default_factory=list)
    store_seq: int = 0
    store_hash: str = GENESIS_HASH
    personal_seqs: set[int] = field(default_factory=set)

    def manifest(self) -> dict[str, Any]:
        return {
            "events": self.count,
            "first_seq": self.first_seq,
            "head": {"seq": self.last_seq, "hash": self.last_hash},
            "store_head": {"seq": self.store_seq, "hash": self.store_hash},
            "is_current_head": self.last_seq == self.store_seq,
            "complete": not self.gaps and self.first_seq == 1,
            "gaps": self.gaps,
        }


_ENV: Environment | None = None


def _templates() -> Environment:
    global _ENV
    if _ENV is None:
        _ENV = Environment(
            loader=PackageLoader("projections", "templates"),
            autoescape=select_autoescape(enabled_extensions=("html",), default=False),
            undefined=StrictUndefined,
            trim_blocks=False,
            lstrip_blocks=False,
            keep_trailing_newline=True,
        )
        _ENV.filters["occurred"] = show_occurred
        _ENV.filters["recorded"] = show_recorded
    return _ENV


def show_occurred(value: Any) -> str:
    """An ``occurred_at`` for people: the date, or date and London time to the minute."""
    text = str(value or "")
    if len(text) <= 10:
        return text
    try:
        moment = datetime.fromisoformat(text).astimezone(LONDON)
    except ValueError:
        return text
    return moment.strftime("%Y-%m-%d %H:%M")


def show_recorded(value: Any) -> str:
    """A ``recorded_at`` for people: UTC to the second."""
    text = str(value or "")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def load_template(name: str) -> Template:
    return _templates().get_template(name)


TIMELINE_COLUMNS: Final = (
    "ref",
    "case",
    "seq",
    "position",
    "type",
    "occurred_at",
    "recorded_at",
    "actor",
    "role",
    "corrects",
    "summary",
    "hash",
)
"""One row per line of ``events.jsonl``, in the same order; a correction names the entry
it corrects in ``corrects`` (the report shows entries with corrections applied)."""


def csv_line(values: Sequence[Any]) -> str:
    return ",".join(_csv_field(v) for v in values) + "\r\n"


def _csv_field(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace('"', '""') + '"'


def text_cell(value: str) -> str:
    """Spreadsheet-safe text: a cell that would start a formula begins with ``'``."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def write_case_files(
    ledger: LedgerToExport,
    work: Path,
    filters: ExportFilters,
    exported: dict[str, CaseState],
    cutoff: int,
    include_personal: bool,
    bundle: dict[str, Any],
    now: datetime,
    detail: bool,
) -> tuple[int, list[dict[str, Any]]]:
    """``report.html`` and ``personal.jsonl``, one case at a time.

    With ``detail`` each case gets its full section (decision, reasons, chart, clocks,
    QM2); without, the report lists the cases and says how to get one case's report.
    """
    limit = filters.recorded_limit
    report = HashingFile(work / REPORT_FILE)
    personal = HashingFile(work / PERSONAL_FILE) if include_personal else None
    toc = [
        {
            "ref": ref,
            "anchor": _anchor(ref),
            "entries": st.count,
            "first_seq": st.first_seq,
            "last_seq": st.last_seq,
            "store_seq": st.store_seq,
            "gaps": ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in st.gaps),
        }
        for ref, st in exported.items()
    ]
    report.write(
        load_template("report_head.html")
        .render(bundle={**bundle, "toc": toc, "detail": detail})
        .encode()
    )
    case_template = load_template("report_case.html")
    on = filters.occurred_to.instant if filters.occurred_to else None
    values = 0
    for ref, state in exported.items():
        if not detail and not (personal is not None and state.personal_seqs):
            continue
        records = [
            r
            for r in ledger.case_records(ref)
            if r["position"] <= cutoff and filters.known(r, limit)
        ]
        entries = apply_corrections(records)
        chosen = [e for e, r in zip(entries, records, strict=True) if filters.in_window(r)]
        if len(chosen) != state.count:
            raise StoreDoesNotVerify(
                f"case {ref} changed while it was being exported; export again"
            )
        in_bundle = {e.seq for e in chosen}
        for e in entries:
            e.in_bundle = e.seq in in_bundle
        personal_rows: list[dict[str, Any]] = []
        if personal is not None and state.personal_seqs:
            by_seq = {r["seq"]: personal_commitments(r) for r in records}
            for row in ledger.personal_data(ref):
                if row.seq in state.personal_seqs and row.field in by_seq.get(row.seq, {}):
                    line = {
                        "case": ref,
                        "seq": row.seq,
                        "field": row.field,
                        "value": orjson.loads(row.value),
                        "salt": bytes(row.salt).hex(),
                    }
                    personal.write(canonical_json(line) + b"\n")
                    personal_rows.append(line)
                    values += 1
        if not detail:
            continue
        analysis = analyse_case(
            records, as_of=filters.as_of.instant if filters.as_of else None, on=on, now=now
        )
        context = _case_context(
            ref, records, entries, chosen, analysis, personal_rows, filters, on or now
        )
        report.write(case_template.render(c=context).encode("utf-8"))
    report.write(load_template("report_foot.html").render(bundle=bundle).encode("utf-8"))
    files = [report.close()]
    if personal is not None:
        files.append(personal.close())
    return values, files


def _anchor(ref: str) -> str:
    return "case-" + re.sub(r"[^A-Za-z0-9_-]", "-", ref)


def _case_context(
    ref: str,
    records: list[dict[str, Any]],
    entries: list[Entry],
    chosen: list[Entry],
    analysis: Any,
    personal_rows: list[dict[str, Any]],
    filters: ExportFilters,
    moment: datetime,
) -> dict[str, Any]:
    """Everything ``report_case.html`` shows for one case; ``moment`` is the one its
    clocks were computed on (the chart draws a running clock up to it)."""
    by_ref = {e.ref: e for e in entries}

    def entry(value: str) -> dict[str, Any]:
        found = by_ref.get(value)
        if found is None:
            return {
                "ref": value,
                "in_bundle": False,
                "occurred_at": "",
                "summary": "(not in the record as exported)",
            }
        return {
            "ref": found.ref,
            "in_bundle": found.in_bundle,
            "occurred_at": found.occurred_at,
            "summary": found.summary,
        }

    referral = entries[0].body if entries and entries[0].type == "CaseReferred" else {}
    facts: list[tuple[str, str]] = []
    if referral:
        regime = str(referral.get("regime", ""))
        facts += [
            ("Child (pseudonymous reference)", str(referral.get("subject", ""))),
            ("Regime", REGIME_LABELS.get(regime, regime)),
            ("Harm", str(referral.get("harm", ""))),
            ("Abuse or neglect", str(referral.get("abuse_or_neglect", ""))),
            ("Incident date", str(referral.get("incident_date", ""))),
            ("Local authority aware", str(referral.get("aware_date", ""))),
            ("Home area", str(referral.get("home_area", ""))),
            ("Other areas lived in", ", ".join(referral.get("other_areas") or []) or "none"),
            ("Referred by", f"{referral.get('referrer', '')} ({referral.get('route', '')})"),
            ("Summary", str(referral.get("summary", ""))),
        ]
    else:
        facts.append(("Referral", "the case's referral is not in this bundle"))
    if any(e.type == "CaseClosed" for e in entries):
        facts.append(("Status", "closed"))
    why = analysis.why
    decision = why.get("decision")
    decision_ctx: dict[str, Any] | None = None
    criteria: list[dict[str, str]] = []
    factors: list[dict[str, str]] = []
    if decision:
        outcome = str(decision.get("outcome", ""))
        decided_by = decision.get("decided_by") or []
        decision_ctx = {
            **entry(str(decision.get("ref", ""))),
            "outcome": outcome,
            "outcome_label": OUTCOME_LABELS.get(outcome, outcome),
            "occurred_at": decision.get("occurred_at", ""),
            "recorded_at": decision.get("recorded_at", ""),
            "decided_by": ", ".join(decided_by) if isinstance(decided_by, list) else decided_by,
            "rationale": decision.get("rationale") or "",
            "nature": decision.get("nature"),
        }
        given_criteria = dict(decision.get("criteria") or {})
        regime = str(referral.get("regime") or why.get("regime") or "")
        names = [n for n in CRITERIA.get(regime, ()) if n in given_criteria]
        names += [n for n in given_criteria if n not in names]
        for name in names:
            finding = given_criteria[name] or {}
            criteria.append(
                {
                    "name": name,
                    "label": CRITERION_LABELS.get(name, name),
                    "finding": str(finding.get("finding", "")),
                    "reason": str(finding.get("reason", "")),
                }
            )
        given = dict(decision.get("factors") or {})
        for name, label in FACTOR_LABELS.items():
            factors.append({"label": label, "text": str(given.get(name) or "")})
    quality = None
    if analysis.quality is not None:
        quality = []
        for q in analysis.quality:
            number = int(q.get("question", 0))
            quality.append(
                {
                    "question": number,
                    "text": QM2_QUESTIONS.get(number, ""),
                    "answer": str(q.get("answer", "")),
                    "evidence": list(q.get("evidence") or []),
                    "explanation": str(q.get("explanation") or ""),
                }
            )
    ordered = sorted(chosen, key=lambda e: (occurred_instant(e.occurred_at), e.seq))
    subset_note = ""
    if len(chosen) != len(entries):
        subset_note = "entries outside the export's filters are marked 'not in this bundle'"
    return {
        "ref": ref,
        "anchor": _anchor(ref),
        "facts": facts,
        "personal": (
            [
                {
                    "field": p["field"],
                    "value": _personal_text(p["value"]),
                    "ref": f"{ref}#{p['seq']}",
                }
                for p in personal_rows
            ]
            if personal_rows
            else None
        ),
        "record_count": len(records),
        "subset_note": subset_note,
        "as_of": filters.as_of.given if filters.as_of else None,
        "decision": decision_ctx,
        "criteria": criteria,
        "factors": factors,
        "superseded": [entry(r) for r in why.get("superseded") or []],
        "relied_on": [entry(r) for r in why.get("relied_on") or []],
        "known_then": [entry(r) for r in why.get("known_then") or []],
        "learned_since": [entry(r) for r in why.get("learned_since") or []],
        "flags": [
            f"{f}: {analysis.flag_texts[f]}" if f in analysis.flag_texts else str(f)
            for f in why.get("flags") or []
        ],
        "clocks": [_clock_row(k) for k in analysis.clocks],
        "open_requests": analysis.open_requests,
        "quality": quality,
        "sources": analysis.sources,
        "entries": ordered,
        "chart": build_chart(ordered, analysis.clocks, moment),
    }


def _clock_row(clock: dict[str, Any]) -> dict[str, Any]:
    justified = bool(clock.get("justified"))
    delay = clock.get("delay") if isinstance(clock.get("delay"), dict) else None
    reason = ""
    if justified and delay:
        reason = (
            f"delay approved by {delay.get('approved_by')}: {delay.get('reason')} "
            f"(expected by {delay.get('expected_by')}; {delay.get('ref')})"
        )
    elif clock.get("not_justified_reason"):
        reason = f"not justified: {clock['not_justified_reason']}"
    limit = ""
    if clock.get("limit") and clock.get("unit"):
        limit = f"{clock['limit']} {str(clock['unit']).replace('_', ' ')}"
    return {
        "title": str(clock.get("title") or clock.get("clock") or ""),
        "limit": limit,
        "source": str(clock.get("source") or ""),
        "clock": str(clock.get("clock") or clock.get("name") or ""),
        "started": clock.get("started") or "",
        "due": clock.get("due") or "",
        "ended": clock.get("ended"),
        "status": str(clock.get("status") or ""),
        "justified": bool(justified),
        "reason": str(reason) if reason else "",
    }


def _personal_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
