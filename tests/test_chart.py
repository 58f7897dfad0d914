"""The timeline chart tells the truth (issue 19, item 2): a clock with no end is drawn up to
the moment its page describes, the due day and the days over or left are written on it,
justified lateness is drawn differently from unjustified lateness (not only in colour),
every mark is at least 3:1 against what it is drawn on, and every clock is said in words.

The layout is pure (``projections.export.chart.build_chart``); the store-level test draws a
recorded case through ``projections.api`` on both stores.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from projections import api
from projections.export.chart import (
    COLOURS,
    DRAWN_ON,
    PLOT_LEFT,
    PLOT_RIGHT,
    Chart,
    build_chart,
    day_words,
)
from projections.export.export_cases import load_template
from tests.conftest import FixedClock, open_ledger, scenario_lines

ROOT = Path(__file__).resolve().parents[1]
CASE = "RR-2026-004"


@dataclass
class _Entry:
    ref: str
    type: str
    occurred_at: str


def _entries(*days: str) -> list[_Entry]:
    return [_Entry(f"C-1#{i}", "CaseReferred", d) for i, d in enumerate(days, 1)]


def _clock(status: str, started: str, due: str, ended: str | None = None, **more: Any) -> Any:
    return {
        "clock": "rapid_review",
        "regime": "wt2023",
        "unit": "working_days",
        "status": status,
        "started": started,
        "due": due,
        "ended": ended,
        "justified": False,
        **more,
    }


def _x(chart: Chart, day: date) -> float:
    """Where ``day`` falls on the chart's axis, from its first and last day."""
    first, last = date.fromisoformat(chart.first_day), date.fromisoformat(chart.last_day)
    share = (day - first).days / (last - first).days
    return chart.plot_left + share * (chart.plot_right - chart.plot_left)


def _svg(chart: Chart, anchor: str = "c") -> str:
    macros = load_template("timeline_chart.html").make_module()
    return str(macros.timeline_svg(anchor, "C-1", chart))  # type: ignore[attr-defined]


# --- the moment ------------------------------------------------------------------------------


def test_an_overdue_clock_is_drawn_to_the_moment_not_to_the_last_entry() -> None:
    on = date(2026, 12, 4)
    chart = build_chart(
        _entries("2026-11-05", "2026-11-13"), [_clock("overdue", "2026-11-05", "2026-11-26")], on
    )
    (bar,) = chart.clocks
    assert bar.running and bar.over
    assert abs(bar.x_end - _x(chart, on)) < 0.01
    assert bar.x_end > max(m.x for m in chart.marks) + 100  # well past the last entry
    assert chart.on_x == bar.x_end and chart.on_day == "2026-12-04"
    assert date.fromisoformat(chart.last_day) > on  # the axis reaches the moment
    # 26 Nov 2026 is a Thursday: 27 Nov, 30 Nov, 1, 2, 3 and 4 Dec are six working days.
    assert bar.note == "due 26 Nov 2026; 6 working days over, not justified"
    assert "still running on 4 Dec 2026, overdue, 6 working days over, not justified" in bar.words


def test_a_running_clock_says_its_days_left_and_an_ended_one_does_not_stretch_the_axis() -> None:
    running = build_chart(
        _entries("2026-11-05"), [_clock("running", "2026-11-05", "2026-12-24")], date(2026, 12, 4)
    )
    (bar,) = running.clocks
    assert not bar.over and bar.running
    assert abs(bar.x_end - _x(running, date(2026, 12, 4))) < 0.01
    assert bar.note.endswith("; 14 working days left")
    closed = build_chart(
        _entries("2016-10-07"),
        [_clock("met", "2016-10-07", "2016-10-28", "2016-10-20")],
        datetime(2026, 12, 4, 9, tzinfo=UTC),
    )
    assert closed.on_x is None  # nothing runs to the moment: the axis keeps to the case
    assert date.fromisoformat(closed.last_day) < date(2016, 12, 1)
    assert abs(closed.clocks[0].x_end - _x(closed, date(2016, 10, 20))) < 0.01


def test_days_over_count_working_days_across_bank_holidays_and_calendar_days_otherwise() -> None:
    # Christmas 2026: Friday 25 Dec and Monday 28 Dec (Boxing Day's substitute) are holidays.
    late = _clock("late", "2026-12-01", "2026-12-24", "2026-12-29")
    months = {**late, "clock": "review_completion", "unit": "calendar_months"}
    chart = build_chart([], [late, months], date(2027, 1, 5))
    assert chart.clocks[0].note.endswith("1 working day over, not justified")
    assert chart.clocks[1].note.endswith("5 days over, not justified")


@settings(max_examples=150, deadline=None)
@given(
    start=st.dates(date(2015, 1, 1), date(2030, 1, 1)),
    allowed=st.integers(0, 200),
    ran=st.integers(0, 400),
    ended=st.booleans(),
    justified=st.booleans(),
)
def test_every_bar_lies_on_the_axis_and_ends_where_its_clock_does(
    start: date, allowed: int, ran: int, ended: bool, justified: bool
) -> None:
    due, end = start + timedelta(days=allowed), start + timedelta(days=ran)
    late = end > due
    status = ("late" if late else "met") if ended else ("overdue" if late else "running")
    clock = _clock(status, start.isoformat(), due.isoformat(), end.isoformat() if ended else None)
    clock["justified"] = justified and late
    chart = build_chart(_entries(start.isoformat()), [clock], end)
    (bar,) = chart.clocks
    assert PLOT_LEFT <= bar.x_start <= bar.x_on_time <= bar.x_end <= PLOT_RIGHT
    assert abs(bar.x_end - _x(chart, end)) < 0.01
    assert bar.over == late and bar.running == (not ended)
    assert abs(bar.x_due - _x(chart, due)) < 0.01
    assert f"due {day_words(due)}" in bar.note
    assert ("over" in bar.note) == late
    assert ("ended " if ended else f"still running on {day_words(end)}") in bar.words


# --- justified and unjustified lateness -------------------------------------------------------


class _Parts(HTMLParser):
    """The SVG's elements with their attributes, and the text of its ``desc``."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.desc = ""
        self._in_desc = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        self._in_desc = tag == "desc"

    def handle_endtag(self, tag: str) -> None:
        self._in_desc = False

    def handle_data(self, data: str) -> None:
        if self._in_desc:
            self.desc += data

    def having(self, css: str) -> list[dict[str, str]]:
        return [a for _, a in self.elements if css in a.get("class", "").split()]


def test_justified_and_unjustified_lateness_differ_in_pattern_and_outline() -> None:
    clocks = [
        _clock("late", "2016-10-07", "2016-11-07", "2016-11-24", justified=True),
        {**_clock("late", "2016-11-24", "2017-05-24", "2017-06-30"), "clock": "review_completion"},
    ]
    parts = _Parts()
    parts.feed(_svg(build_chart(_entries("2016-10-04"), clocks, date(2026, 12, 4)), "case-x"))
    (justified,) = parts.having("over-justified")
    (unjustified,) = parts.having("over-unjustified")
    assert justified["fill"] == "url(#case-x-hatch)"  # a hatch, not a colour
    assert justified.get("stroke-dasharray")  # in a dashed outline
    assert unjustified["fill"] == COLOURS["late"] and "stroke-dasharray" not in unjustified
    pattern = [a for tag, a in parts.elements if tag == "pattern"]
    assert [p["id"] for p in pattern] == ["case-x-hatch"]
    assert "justified by an approved delay" in parts.desc and "not justified" in parts.desc


def test_the_text_equivalent_says_every_clock() -> None:
    clocks = [
        _clock("met", "2026-02-13", "2026-03-06", "2026-03-06"),
        {**_clock("overdue", "2026-03-06", "2026-09-06"), "clock": "review_completion"},
    ]
    chart = build_chart(_entries("2026-02-09", "2026-03-06"), clocks, date(2026, 12, 4))
    parts = _Parts()
    parts.feed(_svg(chart))
    svg = parts.elements[1][1]
    assert svg["role"] == "img" and svg["aria-describedby"] == "c-svgd"
    assert parts.desc.startswith("2 entries from 9 Feb 2026 to 6 Mar 2026")
    for words in (
        "Rapid review: started 13 Feb 2026, due 6 Mar 2026, ended 6 Mar 2026, met.",
        "Review completion: started 6 Mar 2026, due 6 Sep 2026, still running on 4 Dec 2026",
    ):
        assert words in parts.desc
    region = parts.elements[0][1]
    assert region["role"] == "region" and region["tabindex"] == "0" and region["aria-label"]


# --- contrast ---------------------------------------------------------------------------------


def _luminance(colour: str) -> float:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)

    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    """The WCAG 2 contrast ratio of two ``#rrggbb`` colours."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_contrast_ratio_is_computed_as_wcag_defines_it() -> None:
    assert round(contrast("#000000", "#ffffff"), 2) == 21.0
    assert contrast("#777777", "#ffffff") < 4.5 < contrast("#767676", "#ffffff")
    assert contrast("#28a197", "#f8f8f8") < 3  # the old teal lane: too pale on its band


def test_every_mark_is_3_to_1_against_what_it_is_drawn_on() -> None:
    low = {
        (mark, ground, round(contrast(COLOURS[mark], COLOURS[ground]), 2))
        for mark, grounds in DRAWN_ON.items()
        for ground in grounds
        if contrast(COLOURS[mark], COLOURS[ground]) < 3
    }
    assert not low
    # What the SVG draws is what was checked: every fill and stroke of a mark is one of them.
    clocks = [
        _clock("met", "2026-02-13", "2026-03-06", "2026-03-05"),
        _clock("late", "2026-02-13", "2026-03-06", "2026-03-20", justified=True),
        _clock("overdue", "2026-03-06", "2026-04-06"),
        _clock("running", "2026-03-06", "2026-12-24"),
    ]
    lanes = ["CaseReferred", "InformationRequested", "DiscussionHeld", "DecisionMade"]
    entries = [_Entry(f"C-1#{i}", t, "2026-03-01") for i, t in enumerate(lanes, 1)]
    parts = _Parts()
    parts.feed(_svg(build_chart(entries, clocks, date(2026, 12, 4))))
    checked = {COLOURS[name] for name in DRAWN_ON}
    grounds = {COLOURS[name] for name in ("paper", "band", "allowed", "grid")}
    for tag, attrs in parts.elements:
        if "mark" in attrs.get("class", "").split() or tag in ("rect", "line", "path"):
            for name in ("fill", "stroke"):
                value = attrs.get(name, "")
                if value.startswith("#"):
                    assert value in checked | grounds, (tag, attrs)


def test_no_style_sheet_overrides_the_charts_own_colours() -> None:
    """The chart's colours are presentation attributes, which any CSS rule would beat:
    neither the report's nor the web view's sheet colours ``svg.timeline``."""
    sheets = {
        "report_head.html": (ROOT / "projections" / "templates" / "report_head.html").read_text(),
        "web.css": (ROOT / "cli" / "web" / "static" / "web.css").read_text(),
    }
    for name, text in sheets.items():
        for rule in re.findall(r"([^{}]*svg\.timeline[^{}]*)\{([^}]*)\}", text):
            assert not re.search(r"\b(fill|stroke)\s*:", rule[1]), (name, rule)


# --- through the API, on both stores ----------------------------------------------------------


def test_the_web_pages_chart_reaches_the_date_it_is_asked_about(store_url: str) -> None:
    """The scenario up to its last discussion: the rapid review has started and not ended;
    the chart of ``api.timeline_chart`` draws it to whichever ``on`` the page asks about."""
    lines = [line for line in scenario_lines() if b'"DecisionMade"' not in line][:14]
    led = open_ledger(store_url, FixedClock(datetime(2026, 9, 1, 9, 0, tzinfo=UTC)))
    led.record_lines(lines, led.recorder_for())
    for on, status in (("2026-03-04", "running"), ("2026-03-20", "overdue"), (None, "overdue")):
        drawn = api.timeline_chart(api.timeline(led, CASE, on=on), api.clocks(led, CASE, on=on))
        (bar,) = [b for b in drawn.chart.clocks if b.label == "Rapid review"]
        day = date.fromisoformat(on) if on else date(2026, 9, 1)
        assert bar.status == status and bar.running
        assert abs(bar.x_end - _x(drawn.chart, day)) < 0.01, (on, bar)
        assert f'data-on="{day.isoformat()}"' in drawn.svg("timeline")
    led.close()
