"""The inspector's report (issue 19, items 1 and 3): the overview across cases at the top of
``report.html`` in the urgency order of ``caseledger status``; a large bundle's page per case
(``case-<REF>.html``), each in the manifest, so that both verifiers check it and refuse one
changed, added or taken away; and words for people in every page (no ``(check)`` markers,
no module names, ``1 calendar month``, every date as ``6 Mar 2026`` in a no-wrap span).

The stores are real (an SQLite file, a PostgreSQL schema); the cases are made to cover each
urgency: overdue, due soon, met, closed, justified and unjustified lateness, and references
that a file name must take care over (a ``/``, two that differ only in case).
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import api as ledger_api
from ledger.catalogue.fields import CASE_REF_PATTERN
from ledger.errors import UsageError
from projections import api
from projections.export.bundle import export_bundle
from projections.export.export_cases import CASE_PAGES_ABOVE, page_names
from projections.export.report import (
    citation,
    clock_name,
    limit_words,
    show_day,
    show_occurred,
    show_recorded,
)
from projections.export.verify_common import name_problem
from tests.conftest import FixedClock, open_ledger
from tests.test_clocks import decided, delayed, event, notified, record, referral
from tests.test_export import both_verdicts, manifest_of

PARTNERS = ["Northshire County Council", "Northshire ICB", "Northshire Police"]
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
OVERVIEW_ROW = re.compile(r'<tr class="overview-row" data-case="([^"]+)">')
#: A count of one with a plural unit: "1 calendar months", "1 working days".
ONE_PLURAL = re.compile(r"(?<![\d.,])1 (?:calendar|working) (?:months|days)\b")


def cases_of_every_urgency() -> list[dict[str, Any]]:
    """Seven cases, recorded on 1 Sep 2026 (the ``clock`` fixture's day): two overdue,
    one due soon, one met, one closed, one justified late and one unjustified late, under
    references with a ``/`` and two that differ only in case."""
    return [
        # Notified 20 Aug: the rapid review (15 working days) is due 10 Sep, running.
        referral("SOON-1", "2026-08-18"),
        notified("SOON-1", "2026-08-20"),
        # Notified in June, no rapid review sent: overdue.
        referral("NS/2026/7", "2026-06-01"),
        notified("NS/2026/7", "2026-06-03"),
        # Notified late (aware 2 Feb, notified 20 Feb) and the review sent on time.
        referral("late-b", "2026-02-02"),
        notified("late-b", "2026-02-20"),
        decided("late-b", "2026-03-06", "no-review", decided_by=PARTNERS),
        event("RapidReviewSent", "late-b", "2026-03-06", to=["national-panel"]),
        # A delay approved in time justifies a late rapid review.
        referral("LATE-B", "2026-02-02"),
        notified("LATE-B", "2026-02-04"),
        delayed("LATE-B", "2026-02-20"),
        decided("LATE-B", "2026-03-13", "no-review", decided_by=PARTNERS),
        event("RapidReviewSent", "LATE-B", "2026-03-13", to=["national-panel"]),
        # Everything on time, no review: nothing running.
        referral("MET-1", "2026-03-02"),
        notified("MET-1", "2026-03-03"),
        decided("MET-1", "2026-03-10", "no-review", decided_by=PARTNERS),
        event("RapidReviewSent", "MET-1", "2026-03-10", to=["national-panel"]),
        # Overdue too, and earlier: notified in May, nothing since.
        referral("AAA-OLD", "2026-05-01"),
        notified("AAA-OLD", "2026-05-05"),
        # Closed.
        referral("CLOSED-1", "2026-01-05"),
        notified("CLOSED-1", "2026-01-06"),
        decided("CLOSED-1", "2026-01-20", "no-review", decided_by=PARTNERS),
        event("RapidReviewSent", "CLOSED-1", "2026-01-20", to=["national-panel"]),
        event("CaseClosed", "CLOSED-1", "2026-02-01", reason="No review; learning shared."),
    ]


@pytest.fixture
def many_cases(store_url: str, clock: FixedClock) -> str:
    record(store_url, clock, cases_of_every_urgency())
    return store_url


def overview_order(html: str) -> list[str]:
    start = html.index('<section class="overview"')
    return OVERVIEW_ROW.findall(html[start : html.index("</section>", start)])


def status_order(led: Any) -> list[str]:
    """``caseledger status --include-closed``, most urgent first."""
    return [row["case"] for row in api.status(led, include_closed=True).rows]


def pages_of(bundle: Path) -> list[Path]:
    """Every page for people in a bundle: report.html and the case pages."""
    return [bundle / "report.html", *sorted(bundle.glob("case-*.html"))]


def assert_words_for_people(html: str, where: str) -> None:
    assert "(check)" not in html, where
    assert "projections." not in html, where
    found = ONE_PLURAL.search(html)
    assert found is None, (where, html[max(0, found.start() - 80) : found.end() + 20])
    # Every ISO date the templates used to print is now in words ("2026-03-06" is gone
    # from the text people read; ids, hashes and the CSV keep their own forms).  The
    # chart's SVG (timeline_chart.html, drawn by projections/export/chart.py) is left to
    # the chart's own tests.
    text = re.sub(r"<svg\b.*?</svg>", " ", html, flags=re.DOTALL)
    text = re.sub(r"<[^>]+>", " ", text)
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", text) is None, (
        where,
        re.findall(r".{40}\b20\d\d-\d\d-\d\d\b.{20}", text)[:3],
    )


# --- the overview -----------------------------------------------------------------------


def test_the_overview_lists_every_case_in_the_order_of_status(
    many_cases: str, clock: FixedClock, tmp_path: Path
) -> None:
    led = open_ledger(many_cases, clock)
    export_bundle(led, tmp_path / "b")
    expected = status_order(led)
    led.close()
    html = (tmp_path / "b" / "report.html").read_text()
    order = overview_order(html)
    assert order == expected
    assert set(order) == set(manifest_of(tmp_path / "b")["cases"])
    # The two overdue cases first (the older deadline first), then the one due soon.
    assert order[:3] == ["AAA-OLD", "NS/2026/7", "SOON-1"]
    # Each row links to the case's section in report.html.
    for ref in order:
        anchor = "case-" + ref.replace("/", "~")
        assert f'href="#{anchor}"' in html and f'<article class="case" id="{anchor}"' in html
    # The caption says the order.
    assert "Most urgent first, in the order of <code>caseledger status</code>" in html
    # Lateness says whether it is justified, in working days.
    row = html[html.index('data-case="LATE-B"') :]
    row = row[: row.index("</tr>")]
    assert "Rapid review (15 working days)" in row and "justified" in row
    assert re.search(r"\d+ working days? over", row)
    late_b = html[html.index('data-case="late-b"') :]
    late_b = late_b[: late_b.index("</tr>")]
    assert "Notification (5 working days)" in late_b and "not justified" in late_b
    assert_words_for_people(html, "report.html")


def test_the_demo_overview_is_in_the_order_of_status(tmp_path: Path) -> None:
    demo = ledger_api.record_demo(tmp_path)
    led = ledger_api.open_store(str(demo.path))
    try:
        api.export(led, out_path=tmp_path / "b")
        expected = status_order(led)
    finally:
        led.close()
    html = (tmp_path / "b" / "report.html").read_text()
    assert overview_order(html) == expected and len(expected) == 4
    assert_words_for_people(html, "demo report.html")


# --- a page per case ----------------------------------------------------------------------


def test_a_large_bundle_has_a_page_per_case_each_in_the_manifest(
    many_cases: str, clock: FixedClock, tmp_path: Path
) -> None:
    led = open_ledger(many_cases, clock)
    bundle = tmp_path / "b"
    export_bundle(led, bundle, case_pages_above=3)
    expected = status_order(led)
    led.close()
    manifest = manifest_of(bundle)
    assert manifest["report"] == "a page per case"
    names = page_names(list(manifest["cases"]))
    assert names["NS/2026/7"] == "case-NS~2026~7.html"
    assert names["LATE-B"] == "case-LATE-B.html" and names["late-b"] == "case-late-b.2.html"
    listed = [f["path"] for f in manifest["files"]]
    assert [p for p in listed if p.startswith("case-")] == sorted(names.values())
    assert listed.index("report.html") + 1 == listed.index(sorted(names.values())[0])
    assert {p.name for p in bundle.glob("case-*.html")} == set(names.values())
    ours, _ = both_verdicts(bundle)
    assert ours["ok"], ours
    report = (bundle / "report.html").read_text()
    assert overview_order(report) == expected
    assert '<article class="case"' not in report  # the sections are on the pages
    for ref, name in names.items():
        assert f'href="{name}"' in report
        page = (bundle / name).read_text()
        heading = f'<article class="case" id="case-{ref.replace("/", "~")}"'
        assert page.count('<article class="case"') == 1 and heading in page
        after = page[page.index(heading) :]
        assert re.match(r'<article[^>]*>\s*<h2 id="[^"]+">Case ' + re.escape(ref) + "</h2>", after)
        assert 'href="report.html"' in page
    for path in pages_of(bundle):
        assert_words_for_people(path.read_text(), path.name)


def test_a_case_page_changed_added_or_taken_away_fails_both_verifiers(
    many_cases: str, clock: FixedClock, tmp_path: Path
) -> None:
    led = open_ledger(many_cases, clock)
    original = tmp_path / "b"
    export_bundle(led, original, case_pages_above=0)
    led.close()
    page = "case-MET-1.html"

    changed = tmp_path / "changed"
    shutil.copytree(original, changed)
    text = (changed / page).read_text().replace("Decided on the criteria.", "Decided otherwise.")
    (changed / page).write_text(text)
    ours, _ = both_verdicts(changed)
    assert not ours["ok"] and ours["first_bad"] == page and "SHA-256" in ours["failure"]

    extra = tmp_path / "extra"
    shutil.copytree(original, extra)
    shutil.copy(extra / page, extra / "case-FORGED.html")
    ours, _ = both_verdicts(extra)
    assert not ours["ok"] and ours["first_bad"] == "case-FORGED.html"
    assert "not listed" in ours["failure"]

    missing = tmp_path / "missing"
    shutil.copytree(original, missing)
    (missing / page).unlink()
    ours, _ = both_verdicts(missing)
    assert not ours["ok"] and ours["first_bad"] == page and "missing" in ours["failure"]


def test_a_zipped_large_bundle_holds_its_case_pages(
    sqlite_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    record(sqlite_url, clock, cases_of_every_urgency())
    led = open_ledger(sqlite_url, clock)
    summary = export_bundle(led, tmp_path / "b.zip", case_pages_above=0)
    led.close()
    assert sum(f["path"].startswith("case-") for f in summary.files) == 7
    ours, _ = both_verdicts(tmp_path / "b.zip")
    assert ours["ok"], ours


def test_a_bundle_with_case_pages_is_replaced_whole(
    sqlite_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    """``replace`` takes an earlier bundle with case pages for one of its own (its manifest
    lists them), and the new bundle, one report.html, keeps no page of the old one."""
    record(sqlite_url, clock, cases_of_every_urgency())
    led = open_ledger(sqlite_url, clock)
    export_bundle(led, tmp_path / "b", case_pages_above=0)
    assert len(list((tmp_path / "b").glob("case-*.html"))) == 7
    export_bundle(led, tmp_path / "b", replace=True)
    led.close()
    assert not list((tmp_path / "b").glob("case-*.html"))
    assert both_verdicts(tmp_path / "b")[0]["ok"]


def test_a_small_bundle_keeps_every_case_in_report_html(
    many_cases: str, clock: FixedClock, tmp_path: Path
) -> None:
    led = open_ledger(many_cases, clock)
    export_bundle(led, tmp_path / "b")
    led.close()
    assert CASE_PAGES_ABOVE >= 7
    assert not list((tmp_path / "b").glob("case-*.html"))
    assert manifest_of(tmp_path / "b")["report"] == "a section per case"
    assert (tmp_path / "b" / "report.html").read_text().count('<article class="case"') == 7


@pytest.mark.parametrize("bad", [-1, 2.5, "50", True])
def test_the_page_threshold_must_be_a_whole_number(
    sqlite_url: str, tmp_path: Path, bad: Any
) -> None:
    led = open_ledger(sqlite_url)
    with pytest.raises(UsageError, match="case_pages_above"):
        export_bundle(led, tmp_path / "b", case_pages_above=bad)
    led.close()
    assert not (tmp_path / "b").exists()


@given(st.lists(st.from_regex(CASE_REF_PATTERN.strip("^$"), fullmatch=True), max_size=30))
def test_page_names_are_plain_distinct_names_whatever_the_references(refs: list[str]) -> None:
    names = page_names(refs)
    assert set(names) == set(refs)
    folded = [n.casefold() for n in names.values()]
    assert len(set(folded)) == len(folded)  # distinct even where case is ignored
    for name in names.values():
        assert name.startswith("case-") and name.endswith(".html")
        assert "/" not in name and name_problem(name) is None
    assert page_names(list(reversed(refs))) == names  # the same whatever the order given


# --- words for people ---------------------------------------------------------------------


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2999, 12, 31)))
def test_every_day_is_written_in_one_form(day: date) -> None:
    shown = str(show_day(day.isoformat()))
    assert shown == str(show_day(day))
    inner = re.fullmatch(r'<span class="date"[^>]*>(.*)</span>', shown)
    assert inner is not None and "nowrap" in shown
    text = inner.group(1)
    assert text == f"{day.day} {MONTHS[day.month - 1]} {day.year}"
    assert datetime.strptime(text, "%d %b %Y").date() == day  # the C locale reads it back
    assert str(show_occurred(day.isoformat())) == shown


@given(
    st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2090, 12, 31),
        timezones=st.just(UTC),
    )
)
def test_every_moment_is_written_in_one_form(moment: datetime) -> None:
    london = moment.astimezone(ZoneInfo("Europe/London"))
    occurred = str(show_occurred(moment.isoformat()))
    day = f"{london.day} {MONTHS[london.month - 1]} {london.year}"
    assert occurred.endswith(f">{day}, {london:%H:%M}</span>"), occurred
    recorded = str(show_recorded(moment.isoformat().replace("+00:00", "Z")))
    utc_day = f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}"
    assert recorded.endswith(f">{utc_day}, {moment:%H:%M} UTC</span>"), recorded


def test_what_is_not_a_date_is_shown_as_it_is_escaped() -> None:
    assert str(show_day("<b>soon</b>")) == "&lt;b&gt;soon&lt;/b&gt;"
    assert show_day(None) == "" and show_day("") == ""


def test_units_and_clock_names_read_as_people_say_them() -> None:
    assert limit_words(1, "calendar_months") == "1 calendar month"
    assert limit_words(6, "calendar_months") == "6 calendar months"
    assert limit_words(1, "working_days") == "1 working day"
    assert limit_words(15, "working_days") == "15 working days"
    assert clock_name("rapid review", 15, "working_days") == "Rapid review (15 working days)"
    assert clock_name("SCR decision", 1, "calendar_months") == "SCR decision (1 calendar month)"


def test_sources_are_citations_without_check_markers() -> None:
    source = (
        "Working Together 2018, chapter 4 (the rapid review within 15 working days of the "
        "notification; paragraph number (check)); Child Safeguarding Practice Review Panel "
        "practice guidance, described as non-statutory (check)"
    )
    assert citation(source) == (
        "Working Together 2018, chapter 4 (the rapid review within 15 working days of the "
        "notification); Child Safeguarding Practice Review Panel practice guidance, "
        "described as non-statutory"
    )
    assert citation("Working Together 2015, chapter 4 (paragraph number (check))") == (
        "Working Together 2015, chapter 4"
    )
    # The rule packs keep the markers (the bundle's rules.json carries them too).
    from projections.assess.rules import shipped_rule_pack

    assert any("(check)" in c.source for c in shipped_rule_pack("wt2018").clocks)


def test_a_one_month_clock_and_a_generated_store_read_as_people_say_them(
    store_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    """A wt2015 case (its SCR decision is due in 1 calendar month) beside the others,
    exported as one page and as a page per case: the words hold in every page."""
    events = [
        *cases_of_every_urgency(),
        referral("SCR-2016-9", "2016-03-01", "wt2015"),
        notified("SCR-2016-9", "2016-03-02", "wt2015"),
        decided("SCR-2016-9", "2016-05-02", "review", "wt2015", decided_by=["LSCB chair"]),
    ]
    record(store_url, clock, events)
    led = open_ledger(store_url, clock)
    export_bundle(led, tmp_path / "one")
    export_bundle(led, tmp_path / "pages", case_pages_above=0)
    led.close()
    html = (tmp_path / "one" / "report.html").read_text()
    assert "SCR decision (1 calendar month)" in html
    assert '<td class="d">1 calendar month</td>' in html
    for bundle in (tmp_path / "one", tmp_path / "pages"):
        for path in pages_of(bundle):
            assert_words_for_people(path.read_text(), f"{bundle.name}/{path.name}")
    # The clocks' words in the bundle's rules.json are the packs' own, markers and all.
    assert "(check)" in (tmp_path / "one" / "rules.json").read_text()


def test_the_web_view_writes_limits_as_the_report_does(tmp_path: Path) -> None:
    """``caseledger serve``'s case page of the demo's wt2015 case: its SCR decision is due in
    "1 calendar month", as the report says, never "1 calendar months"."""
    from starlette.testclient import TestClient

    from cli.web.app import create_app
    from cli.web.config import WebConfig

    demo = ledger_api.record_demo(tmp_path)
    with TestClient(create_app(WebConfig(store=str(demo.path)))) as client:
        page = client.get("/cases/SCR-2016-011", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "(1 calendar month)" in page.text and "(6 calendar months)" in page.text
    assert ONE_PLURAL.search(page.text) is None


def test_personal_data_shown_on_a_case_page_only_when_included(
    scenario_store: str, tmp_path: Path
) -> None:
    """A case page is a file of the bundle like report.html: it shows the child's name only
    in a bundle that includes personal data, and the export's screen finds none otherwise."""
    from tests.test_export import CASE, NAME

    led = open_ledger(scenario_store)
    export_bundle(led, tmp_path / "with", include_personal_data=True, case_pages_above=0)
    export_bundle(led, tmp_path / "without", case_pages_above=0)
    led.close()
    page = f"case-{CASE}.html"
    assert NAME in (tmp_path / "with" / page).read_text()
    assert all(NAME not in p.read_text() for p in pages_of(tmp_path / "without"))
    assert both_verdicts(tmp_path / "with")[0]["ok"]
