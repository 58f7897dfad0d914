"""The bundle's files for people: ``report.html`` (through the Jinja templates), a page per
case (``case-<REF>.html``) in a large bundle and, when personal data is included,
``personal.jsonl``, written one case at a time after the entries; and the CSV cells of
``timeline.csv``, whose rows the export writes with the entries.

``report.html`` opens with the overview across cases: one row per case (regime, stage,
decision in force, each clock's status, flags, QM2 gaps) in the urgency order of
``caseledger status`` (:func:`projections.fold.case_view.urgency`).  Up to
:data:`CASE_PAGES_ABOVE` cases (a parameter of the export) each case's full section
follows in ``report.html``; beyond, each case has its own page and the overview links to
it, so that no page grows too heavy to open (292 cases made a 24 MB report.html).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape
from markupsafe import Markup

from ledger.catalogue.terms import CRITERIA, occurred_instant
from ledger.errors import UsageError
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
    REGIME_SHORT,
    Entry,
    analyse_case,
    apply_corrections,
    citation,
    clock_name,
    limit_words,
    show_day,
    show_occurred,
    show_recorded,
    show_text,
    words,
)
from projections.fold.case_view import urgency

#: Up to this many cases, report.html has a full section per case (about 5 ms each);
#: beyond, it lists the cases, so a whole-store export of millions of entries stays fast.
REPORT_DETAIL_CASES: Final = 1000
#: Up to this many cases, report.html holds the overview and every case's full section;
#: beyond, each case gets its own page (``case-<REF>.html``) and report.html the overview
#: with a link to each.  Fifty full sections make a report.html of about 4 MB (a case
#: takes about 85 KB, the longest 290 KB): a browser opens it at once and it prints as one
#: document.  ``export_bundle(case_pages_above=...)`` chooses another threshold.
CASE_PAGES_ABOVE: Final = 50
#: How a case page's file name starts (``case-RR-2026-004.html``).
CASE_PAGE_PREFIX: Final = "case-"
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
        _ENV.filters["day"] = show_day
        _ENV.filters["limit_words"] = limit_words
        _ENV.filters["citation"] = citation
        _ENV.filters["words"] = words
        _ENV.filters["people"] = show_text
    return _ENV


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


def check_case_pages_above(value: Any) -> int:
    """``case_pages_above`` must be a whole number of cases, 0 or more (exit 2 if not)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(
            f"case_pages_above must be a whole number of cases, 0 or more, not {value!r}",
            field="case_pages_above",
        )
    return value


def _safe(ref: str) -> str:
    """A case reference as a file name or an HTML id: references hold only letters, digits,
    ``_``, ``-`` and ``/`` (``CASE_REF_PATTERN``); ``/``, the one a file name cannot
    hold, becomes ``~``, which no reference holds, so two references never meet."""
    return ref.replace("/", "~")


def page_names(refs: Sequence[str]) -> dict[str, str]:
    """Each case's page in a large bundle: ``case-<REF>.html`` with ``/`` written ``~``
    (``case-RR-2026-004.html``).  A reference that differs from an earlier one (in code
    point order) only in upper and lower case gets ``.2``, ``.3`` ... before ``.html``,
    so that no two pages share a name on a file system that ignores case (Windows, macOS);
    references hold no ``.``, so the names stay distinct."""
    taken: set[str] = set()
    names: dict[str, str] = {}
    for ref in sorted(refs):
        stem = CASE_PAGE_PREFIX + _safe(ref)
        name, n = f"{stem}.html", 1
        while name.casefold() in taken:
            n += 1
            name = f"{stem}.{n}.html"
        taken.add(name.casefold())
        names[ref] = name
    return names


def is_case_page(name: str) -> bool:
    """Whether a bundle file name is a case page (``case-....html``)."""
    return name.startswith(CASE_PAGE_PREFIX) and name.endswith(".html")


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
    case_pages: bool = False,
) -> tuple[int, list[dict[str, Any]], str]:
    """``report.html``, the case pages and ``personal.jsonl``, one case at a time.

    With ``detail`` report.html opens with the overview across cases, and each case gets
    its full section (decision, reasons, chart, clocks, QM2): in report.html, or with
    ``case_pages`` in a page of its own (:func:`page_names`) that the overview links to.
    Without ``detail``, the report lists the cases and says how to get one case's report.
    Returns the personal values written, the files in order (report.html, the pages by
    reference, personal.jsonl) and the report's form for the manifest's ``report``.
    """
    limit = filters.recorded_limit
    personal = HashingFile(work / PERSONAL_FILE) if include_personal else None
    pages = page_names(list(exported)) if detail and case_pages else {}
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
    case_template = load_template("report_case.html")
    page_template = load_template("report_case_page.html") if pages else None
    on = filters.occurred_to.instant if filters.occurred_to else None
    values = 0
    sections: list[str] = []
    overview: list[tuple[tuple[int, str, str], dict[str, Any]]] = []
    page_files: list[dict[str, Any]] = []
    page_bundle = {**bundle, "detail": detail, "pages": bool(pages)}
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
        link = pages[ref] if pages else f"#{context['anchor']}"
        row = _overview_row(ref, context, analysis, link)
        overview.append((urgency(row["status"]), row))
        if page_template is not None:
            page = HashingFile(work / pages[ref])
            page.write(page_template.render(bundle=page_bundle, c=context).encode("utf-8"))
            page_files.append(page.close())
        else:
            sections.append(case_template.render(c=context))
    overview.sort(key=lambda pair: pair[0])
    report = HashingFile(work / REPORT_FILE)
    report.write(
        load_template("report_head.html")
        .render(
            bundle={**page_bundle, "toc": toc, "overview": [row for _, row in overview]},
            page=None,
        )
        .encode("utf-8")
    )
    for section in sections:
        report.write(section.encode("utf-8"))
    report.write(load_template("report_foot.html").render(bundle=bundle).encode("utf-8"))
    files = [report.close(), *page_files]
    if personal is not None:
        files.append(personal.close())
    form = (
        "a page per case" if pages else "a section per case" if detail else "an index of the cases"
    )
    return values, files, form


def _anchor(ref: str) -> str:
    return "case-" + _safe(ref)


_GAP_ANSWERS: Final = ("no", "partly", "unclear")
#: Clocks the overview names on one line (``Met: Notification, Rapid review``): nothing
#: about them needs a look; the others (overdue, late, running) get a line each.
_QUIET: Final = ("met", "withdrawn")


def _overview_row(ref: str, context: dict[str, Any], analysis: Any, link: str) -> dict[str, Any]:
    """One case's row of the overview across cases: what ``report_overview.html`` shows,
    and the case's ``status`` row it is sorted by."""
    status = analysis.status or {
        "case": ref,
        "stage": "",
        "overdue": [],
        "open_requests": [],
        "next_deadline": None,
    }
    regime = str(status.get("regime") or "")
    decision = context["decision"]
    gaps = [
        {"question": q["question"], "answer": q["answer"]}
        for q in context["quality"] or []
        if q["answer"] in _GAP_ANSWERS
    ]
    overdue_replies = sum(1 for r in status["open_requests"] if r.get("overdue"))
    return {
        "ref": ref,
        "link": link,
        "regime": REGIME_SHORT.get(regime, regime),
        "stage": status.get("stage") or "",
        "decision": (
            {"outcome": decision["outcome_label"], "occurred_at": decision["occurred_at"]}
            if decision
            else None
        ),
        "clocks": [k for k in context["clocks"] if k["status"] not in _QUIET],
        "quiet": {
            status: [k["label"] for k in context["clocks"] if k["status"] == status]
            for status in _QUIET
        },
        "overdue_replies": overdue_replies,
        "flags": list(analysis.why.get("flags") or []),
        "gaps": gaps,
        "status": status,
    }


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
    facts: list[tuple[str, str | Markup]] = []
    if referral:
        regime = str(referral.get("regime", ""))
        facts += [
            ("Child (pseudonymous reference)", str(referral.get("subject", ""))),
            ("Regime", REGIME_LABELS.get(regime, regime)),
            ("Harm", words(referral.get("harm", ""))),
            ("Abuse or neglect", words(referral.get("abuse_or_neglect", ""))),
            ("Incident date", show_day(referral.get("incident_date", ""))),
            ("Local authority aware", show_day(referral.get("aware_date", ""))),
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
        expected = show_day(delay.get("expected_by")) if delay.get("expected_by") else ""
        reason = Markup("delay approved by {by}: {why} (expected by {when}; {ref})").format(
            by=delay.get("approved_by"),
            why=delay.get("reason"),
            when=expected or "no date given",
            ref=delay.get("ref"),
        )
    elif clock.get("not_justified_reason"):
        reason = f"not justified: {clock['not_justified_reason']}"
    status = str(clock.get("status") or "")
    judgement: str | Markup = ""
    if justified:
        judgement = Markup("justified: {}").format(reason) if reason else "justified"
    elif status in ("late", "overdue"):
        judgement = reason or "not justified"
    words = str(clock.get("words") or str(clock.get("clock") or "").replace("_", " "))
    return {
        "title": str(clock.get("title") or clock.get("clock") or ""),
        "label": words[:1].upper() + words[1:],
        "name": clock_name(words, clock.get("limit"), clock.get("unit")),
        "limit": limit_words(clock.get("limit"), clock.get("unit")),
        "source": citation(str(clock.get("source") or "")),
        "clock": str(clock.get("clock") or clock.get("name") or ""),
        "started": clock.get("started") or "",
        "due": clock.get("due") or "",
        "ended": clock.get("ended"),
        "status": str(clock.get("status") or ""),
        "justified": bool(justified),
        "justifiable": bool(clock.get("justifiable")),
        "working_days_over": clock.get("working_days_over"),
        "reason": reason,
        "judgement": judgement,
    }


def _personal_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()
