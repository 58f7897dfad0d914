"""Personal data never inside the hashed record (issue 13 item 2), on both stores.

An entry whose hashed text holds a personal value recorded for its case is refused
(exit 2, nothing written, the field named): on the referral that carries the values, on
later entries, in ``record`` files, in corrections and through the tracker import; on
PostgreSQL also for a writer who may not read the values (the database's screen).  The
``subject`` is a pseudonymous reference.  The export looks for the values in every file
it wrote before it says none is there, and refuses a store whose old entry holds one.
"""

from __future__ import annotations

import re
import string
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.application import CaseLedger
from ledger.catalogue import models as catalogue
from ledger.domain.personal_screen import (
    _AT_ROOT,
    MIN_SCREENED_CHARS,
    Screen,
    _texts_of,
    date_forms,
    fold_words,
    hashed_strings,
    screen_of,
)
from ledger.store.locations import parse_store
from tests.conftest import FIXED_TODAY, SCENARIO, open_ledger, person, scenario_lines

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py);
#: the tests whose writers have login roles of their own run at the real date instead.
pytestmark = pytest.mark.usefixtures("fixed_today")

CASE = "RR-2026-004"  # the scenario: personal name "Kai Example", born 2025-08-14
NAME, DOB = "Kai Example", "2025-08-14"
REFERRAL = {
    "type": "CaseReferred",
    "case": "RR-2026-900",
    "occurred_at": "2026-05-02",
    "regime": "wt2023",
    "subject": "Child Z",
    "incident_date": "2026-05-01",
    "aware_date": "2026-05-02",
    "harm": "serious-harm",
    "abuse_or_neglect": "suspected",
    "home_area": "Northshire",
    "referrer": "Northshire Police",
    "route": "statutory",
    "summary": "Infant admitted.",
    "personal": {"name": "Zoe Sample", "date_of_birth": "2014-03-07"},
}
REFER_ARGS = [
    "refer",
    "RR-2026-900",
    "--regime",
    "wt2023",
    "--incident-date",
    "2026-05-01",
    "--aware-date",
    "2026-05-02",
    "--occurred-at",
    "2026-05-02",
    "--harm",
    "serious-harm",
    "--abuse-or-neglect",
    "suspected",
    "--home-area",
    "Northshire",
    "--referrer",
    "Northshire Police",
    "--route",
    "statutory",
    "--personal",
    "name=Zoe Sample",
]


def count(url: str) -> int:
    return int(open_ledger(url).count_events())


def record(cli: Any, url: str, lines: list[dict[str, Any]], *extra: str) -> Any:
    data = b"".join(orjson.dumps(line) + b"\n" for line in lines)
    return cli(["--store", url, "record", "-", *extra], stdin=data)


def context(summary: str, **more: Any) -> dict[str, Any]:
    return {
        "type": "ContextRecorded",
        "case": CASE,
        "occurred_at": "2026-08-01",
        "topic": "family",
        "summary": summary,
        **more,
    }


# --- the rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "written",
    [
        "2014-03-07",
        "07/03/2014",
        "7/3/2014",
        "7.3.14",
        "7 March 2014",
        "March 7, 2014",
        "7th March 2014",
        "07-03-2014",
        "the 7th of March 2014",
        "Friday 7 Mar 2014",
        "20140307",
    ],
)
def test_a_date_of_birth_is_found_in_every_usual_form(written: str) -> None:
    screen = screen_of([("date_of_birth", "2014-03-07")])
    assert screen.hit(f"Seen on {written} by the GP.") == "personal.date_of_birth"


@pytest.mark.parametrize("other", ["17/03/2014", "7 March", "03/07/2014", "2014-03-17", "7/3/2015"])
def test_other_dates_are_not_the_date_of_birth(other: str) -> None:
    assert screen_of([("date_of_birth", "2014-03-07")]).hit(f"Met on {other}.") is None


def test_day_and_month_are_never_swapped() -> None:
    screen = screen_of([("date_of_birth", "2014-11-01")])
    assert screen.hit("born 1/11/2014") == "personal.date_of_birth"
    assert screen.hit("met on 11/1/2014") is None


@pytest.mark.parametrize(
    "written",
    [
        "Zoe Sample",
        "ZOE SAMPLE",
        "zoe-sample",
        "ZoeSample",
        "Z o e  Sample",
        "Zoë Sample",
        "Sample, Zoe",
    ],
)
def test_a_name_is_found_whatever_its_case_spacing_or_accents(written: str) -> None:
    assert screen_of([("name", "Zoe Sample")]).hit(f"Seen with {written}.") == "personal.name"


def test_a_value_is_found_as_whole_words_only() -> None:
    screen = screen_of([("name", "Ann")])
    assert screen.hit("Ann was seen.") == "personal.name"
    assert screen.hit("The annual plan; planning.") is None
    assert screen_of([("name", "Zoe Sample")]).hit("Zoe was seen; samples taken.") is None


def test_short_values_are_not_looked_for() -> None:
    screen = screen_of([("initial", "K"), ("code", "Jo")])
    assert not screen
    assert screen.hit("Child K was seen by Jo.") is None


words = st.lists(
    st.text(string.ascii_letters, min_size=2, max_size=8), min_size=1, max_size=3
).filter(lambda ws: len("".join(ws)) >= MIN_SCREENED_CHARS)


@settings(max_examples=200, deadline=None)
@given(
    name=words,
    separators=st.lists(st.sampled_from([" ", "  ", "-", ".", "'", "", ". "]), min_size=3),
    upper=st.booleans(),
)
def test_any_spacing_and_case_of_a_name_is_found(
    name: list[str], separators: list[str], upper: bool
) -> None:
    written = "".join(w + separators[i % len(separators)] for i, w in enumerate(name))
    written = written.upper() if upper else written.lower()
    screen = screen_of([("name", " ".join(name))])
    assert screen.hit(f"Notes: {written} attended.") == "personal.name"


@settings(max_examples=200, deadline=None)
@given(
    born=st.dates(date(1950, 1, 1), date(2049, 12, 31)),
    other=st.dates(date(1950, 1, 1), date(2049, 12, 31)),
)
def test_every_form_of_a_date_is_found_and_no_other_date_is(born: date, other: date) -> None:
    screen = screen_of([("date_of_birth", born.isoformat())])
    for form in date_forms(born):
        assert screen.hit(f"On {form} seen.") == "personal.date_of_birth", form
    if other != born:
        for form in date_forms(other):
            assert screen.hit(f"On {form} seen.") is None, form


@settings(max_examples=100, deadline=None)
@given(value=st.text(min_size=1, max_size=2), text=st.text(max_size=60))
def test_a_value_too_short_never_refuses_anything(value: str, text: str) -> None:
    assert Screen().hit(text) is None
    assert screen_of([("initial", value)]).hit(text) is None or len(value.strip()) >= 2


# --- the quick test of a whole entry ----------------------------------------------------

#: Keys the walk treats apart (``personal``, ``changes``, a structured date, the empty
#: key, whose children keep an empty path) beside ordinary ones.
BODY_KEYS = st.sampled_from(["personal", "changes", "occurred_at", "due", "", "summary", "x"])
BODY_TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["2014-03-07", "2026-05-02T09:00:00+00:00", "Kai Example", "kai-EXAMPLE"]),
)
BODIES = st.recursive(
    st.one_of(BODY_TEXT, st.integers(), st.booleans(), st.none()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(BODY_KEYS, inner, max_size=4),
    max_leaves=12,
)


def _hit_string_by_string(screen: Screen, body: dict[str, Any]) -> tuple[str, str] | None:
    """The screen's answer as it was given before the quick test: each string folded
    and looked at on its own."""
    for where, text in hashed_strings(body):
        found = screen.hit(text)
        if found is not None:
            return where, found
    return None


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet=st.characters(max_codepoint=127)))
def test_ascii_text_folds_to_its_runs_of_letters_and_digits_lower_cased(text: str) -> None:
    """The quick fold of ASCII gives the rule's words: the runs of letters and digits
    (no ``_``), lower-cased, whatever separates them (controls, tabs, punctuation)."""
    assert fold_words(text) == re.findall(r"[^\W_]+", text.lower())


@settings(max_examples=300, deadline=None)
@given(texts=st.lists(st.text(), max_size=6))
def test_folding_strings_joined_by_a_nul_gives_each_string_s_words(texts: list[str]) -> None:
    """The quick test's premise, for any text: no word runs across the separator and
    folding one string never depends on its neighbours."""
    each = [word for text in texts for word in fold_words(text)]
    assert fold_words("\x00".join(texts)) == each


@settings(max_examples=300, deadline=None)
@given(
    body=st.dictionaries(BODY_KEYS, BODIES, max_size=5),
    values=st.lists(
        st.tuples(st.sampled_from(["name", "date_of_birth", "address"]), BODY_TEXT), max_size=3
    ),
)
def test_an_entry_is_refused_exactly_when_one_of_its_strings_is(
    body: dict[str, Any], values: list[tuple[str, str]]
) -> None:
    """The quick test of the whole entry never changes the answer, nor which field and
    value a refusal names."""
    screen = screen_of(values)
    assert screen.hit_body(body) == _hit_string_by_string(screen, body)


@settings(max_examples=300, deadline=None)
@given(body=st.dictionaries(BODY_KEYS, BODIES, max_size=5))
def test_the_quick_walk_finds_the_strings_the_named_walk_finds(body: dict[str, Any]) -> None:
    """The screen's walk without fields takes every string the walk with fields does,
    in its order: the structured dates and the personal values' commitments left out at
    the same places (the top, ``changes``, and the empty key's children)."""
    found: list[str] = []
    _texts_of(body, _AT_ROOT, found)
    assert found == [text for _, text in hashed_strings(body)]


def test_a_name_split_across_two_strings_is_not_held_by_either() -> None:
    """The whole entry's words hold the name across two fields; no one field does."""
    screen = screen_of([("name", NAME)])
    body = {"type": "DiscussionHeld", "summary": "met Kai", "attendees": ["Example team"]}
    assert screen.hit_body(body) is None
    assert _hit_string_by_string(screen, body) is None


def test_an_entry_holding_the_name_deep_inside_is_refused_there() -> None:
    screen = screen_of([("name", NAME)])
    body = {"type": "DiscussionHeld", "summary": "ok", "attendees": ["Chair", "kai  EXAMPLE."]}
    assert screen.hit_body(body) == ("attendees[1]", "personal.name")
    assert screen.hit_body({**body, "attendees": ["Chair", "Kai Examples"]}) is None


# --- the subject ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "subject",
    [
        "Child K",
        "Child K (RR-2026-004)",
        "Child RR-2026-004",
        "Baby M",
        "Sibling 2",
        "C-2026-004",
        "Child (NS-RR-2019-02)",
        "Young person J",
    ],
)
def test_a_pseudonymous_subject_is_accepted(subject: str) -> None:
    catalogue.field_adapter("CaseReferred", "subject").validate_python(subject)


@pytest.mark.parametrize("subject", ["Zoe Sample", "Child Zoe", "Zoe", "ZoeSample", "child k"])
def test_a_name_as_subject_is_refused_saying_what_a_subject_is(
    store_url: str, cli: Any, subject: str
) -> None:
    result = record(cli, store_url, [{**REFERRAL, "subject": subject, "personal": None}])
    assert result.exit_code == 2
    assert "field `subject`" in result.stderr and "pseudonymous reference" in result.stderr
    assert count(store_url) == 0


def test_the_schema_carries_the_subject_rule() -> None:
    schema = catalogue.input_schema()
    assert catalogue.SUBJECT_PATTERN in orjson.dumps(schema).decode().replace("\\\\", "\\")


# --- refused on write -------------------------------------------------------------------


def test_the_referral_carrying_the_name_cannot_hold_it(store_url: str, cli: Any) -> None:
    as_subject = cli(
        ["--store", store_url, *REFER_ARGS, "--subject", "Zoe Sample", "--summary", "x y"]
    )
    assert as_subject.exit_code == 2 and "field `--subject`" in as_subject.stderr
    assert "line 1" not in as_subject.stderr
    in_summary = cli(
        [
            "--store",
            store_url,
            *REFER_ARGS,
            "--subject",
            "Child Z",
            "--summary",
            "ZOE  sample admitted.",
        ]
    )
    assert in_summary.exit_code == 2, in_summary.stdout
    assert "field `--summary`" in in_summary.stderr and "personal.name" in in_summary.stderr
    assert "Zoe" not in in_summary.stderr.replace("--personal", "")
    assert count(store_url) == 0


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (context(f"{NAME} lives with an aunt."), "summary"),
        (context("Born 14th August 2025, premature."), "summary"),
        (context("Seen.", note="DOB 14/08/25"), "note"),
        (
            {
                "type": "DiscussionHeld",
                "case": CASE,
                "occurred_at": "2026-08-01",
                "forum": "other",
                "attendees": ["Northshire Police", "kai-example"],
                "summary": "Met.",
            },
            "attendees[1]",
        ),
        (
            {
                "type": "EntryCorrected",
                "case": CASE,
                "occurred_at": "2026-08-01",
                "corrects": f"{CASE}#1",
                "changes": {"summary": "Kai Example, an infant, admitted."},
                "reason": "Fuller summary.",
            },
            "changes.summary",
        ),
    ],
)
def test_later_entries_of_the_case_are_screened(
    scenario_store: str, cli: Any, entry: dict[str, Any], field: str
) -> None:
    before = count(scenario_store)
    result = record(cli, scenario_store, [context("A clean line first."), entry])
    assert result.exit_code == 2
    assert f"line 2, field `{field}`" in result.stderr, result.stderr
    assert count(scenario_store) == before


def test_a_correction_that_adds_a_name_cannot_also_write_it(scenario_store: str, cli: Any) -> None:
    correction = {
        "type": "EntryCorrected",
        "case": CASE,
        "occurred_at": "2026-08-01",
        "corrects": f"{CASE}#1",
        "changes": {"personal": {"alias": "Kiki Lowe"}, "summary": "Known as Kiki Lowe."},
        "reason": "Alias learned.",
    }
    before = count(scenario_store)
    result = record(cli, scenario_store, [correction])
    assert result.exit_code == 2 and "personal.alias" in result.stderr
    later = record(
        cli, scenario_store, [{**correction, "changes": {"personal": {"alias": "Kiki Lowe"}}}]
    )
    assert later.exit_code == 0, later.stderr
    again = record(cli, scenario_store, [context("kiki lowe moved away.")])
    assert again.exit_code == 2 and "personal.alias" in again.stderr
    assert count(scenario_store) == before + 1


def test_values_given_earlier_in_the_same_command_count(store_url: str, cli: Any) -> None:
    later = {**context("Zoe Sample was seen."), "case": "RR-2026-900"}
    result = record(cli, store_url, [REFERRAL, later])
    assert result.exit_code == 2 and "line 2, field `summary`" in result.stderr
    assert count(store_url) == 0


def test_clean_entries_and_a_birth_on_the_incident_day_are_accepted(
    store_url: str, cli: Any
) -> None:
    newborn = {**REFERRAL, "personal": {"name": "Zoe Sample", "date_of_birth": "2026-05-01"}}
    result = record(cli, store_url, [newborn, {**context("Seen at home."), "case": "RR-2026-900"}])
    assert result.exit_code == 0, result.stderr


def test_the_tracker_import_refuses_a_name_as_subject(
    store_url: str, cli: Any, tmp_path: Path
) -> None:
    from tests.test_tracker import MAPPING, SAMPLE_CSV

    grid = SAMPLE_CSV.read_text(encoding="utf-8").splitlines()
    header, first = grid[0], grid[1]
    assert first.split(",")[1] == "Child A"
    tracker = tmp_path / "tracker.csv"
    tracker.write_text(header + "\r\n" + first.replace(",Child A,", ",Zoe Sample,", 1) + "\r\n")
    result = cli(["--store", store_url, "import-tracker", str(tracker), "--mapping", str(MAPPING)])
    assert result.exit_code == 2 and "subject" in result.stderr, result.stderr
    assert count(store_url) == 0


# --- PostgreSQL: a writer who may not read the values -----------------------------------


@pytest.mark.real_clock  # a writer with a login role of its own
def test_an_agency_writer_is_screened_by_the_database(scenario_store: str) -> None:
    if not scenario_store.startswith("postgresql://"):
        pytest.skip("the database's screen is PostgreSQL's")
    from ledger.errors import InputError

    owner = open_ledger(scenario_store)
    liaison = person(scenario_store, "police.liaison")
    owner.enrol(liaison.name, ["agency"], owner.recorder_for("admin"), agency="Northshire Police")
    reply = orjson.loads(scenario_lines()[8])
    mine = liaison.ledger()
    # they may not read the values: row security hides them from an agency's role, and
    # the database refuses them the keys whatever the client asks
    assert owner.personal_data(CASE) and mine.personal_data(CASE) == []
    with pytest.raises(Exception, match="export-personal"):
        mine.ledger_recorder.select_personal_keys(mine.personal_key(CASE))
    before = owner.count_events()
    for summary in ("Kai EXAMPLE was known to us.", "DOB 14.8.25 on our file."):
        with pytest.raises(InputError) as refused:
            mine.record_lines(
                [orjson.dumps({**reply, "summary": summary})], liaison.recorder("agency")
            )
        assert refused.value.field == "summary" and "database's screen" in str(refused.value)
    assert owner.count_events() == before
    mine.record_lines(
        [orjson.dumps({**reply, "summary": "Known to us."})], liaison.recorder("agency")
    )
    assert owner.count_events() == before + 1


@pytest.mark.real_clock  # a writer with a login role of its own
def test_the_screen_digests_are_hidden_and_go_only_with_their_entries(scenario_store: str) -> None:
    if not scenario_store.startswith("postgresql://"):
        pytest.skip("PostgreSQL only")
    import psycopg

    liaison = person(scenario_store, "police.liaison")
    base, _, schema = liaison.url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f'SELECT * FROM "{schema}".caseledger_personal_screen')
    owner_base = scenario_store.partition("?schema=")[0]
    with psycopg.connect(owner_base, autocommit=True) as conn:
        kept = conn.execute(
            f'SELECT count(*) FROM "{schema}".caseledger_personal_screen'
        ).fetchone()
        assert kept is not None and kept[0] > 15  # the name both ways, the date in every form
    with psycopg.connect(base, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.Error, match="screen digests go only"):
            conn.execute(
                f'SELECT "{schema}".caseledger_put_screen(%s, %s, %s, %s, %s)',
                ([CASE], [1], [b"0" * 16], [3], [b"x" * 32]),
            )


# --- the export checks ------------------------------------------------------------------


class _OlderLedger(CaseLedger):
    """The ledger as it was before the screen (an old entry, or one an operator wrote)."""

    name = CaseLedger.name  # the same store tables

    def _refuse_personal_in_text(self, *args: Any, **kwargs: Any) -> None:
        return None


def test_the_export_says_it_checked(scenario_store: str, cli: Any, tmp_path: Path) -> None:
    out = tmp_path / "bundle"
    result = cli(["--store", scenario_store, "export", "--out", str(out)])
    assert result.exit_code == 0, result.stderr
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["personal_data"]["checked"] is True
    assert "looked for every personal value" in manifest["personal_data"]["statement"]
    assert "looked for every name and date of birth" in (out / "report.html").read_text()
    assert "found none" in (out / "VERIFY.md").read_text()


def test_the_export_refuses_a_store_whose_old_entry_holds_the_name(
    scenario_store: str, cli: Any, tmp_path: Path
) -> None:
    older = _OlderLedger(parse_store(scenario_store))
    try:
        me = older.recorder_for("business-unit")
        older.record_lines([orjson.dumps(context("Kai  example moved to Westmoor."))], me)
    finally:
        older.close()
    out = tmp_path / "bundle"
    result = cli(["--store", scenario_store, "export", "--out", str(out)])
    assert result.exit_code == 1
    assert "events.jsonl" in result.stderr and CASE in result.stderr
    assert "summary" in result.stderr and "personal.name" in result.stderr
    assert "Kai" not in result.stderr
    assert not out.exists() and not [p for p in tmp_path.iterdir() if "bundle" in p.name]
    with_personal = cli(
        [
            "--store",
            scenario_store,
            "export",
            "--out",
            str(tmp_path / "p"),
            "--include-personal-data",
        ]
    )
    assert with_personal.exit_code == 0, with_personal.stderr


def test_an_exporter_who_may_not_read_the_values_says_it_could_not_check(
    scenario_store: str, tmp_path: Path
) -> None:
    if not scenario_store.startswith("postgresql://"):
        pytest.skip("on SQLite every exporter can read the values")
    from projections.export.bundle import export_bundle

    owner = open_ledger(scenario_store)
    inspector = person(scenario_store, "inspector.jones", "reader")
    owner.enrol(inspector.name, ["inspector"], owner.recorder_for("admin"))
    export_bundle(inspector.ledger(), tmp_path / "b")
    manifest = orjson.loads((tmp_path / "b" / "manifest.json").read_bytes())
    assert manifest["personal_data"]["checked"] is False
    assert "could not check" in manifest["personal_data"]["statement"]
    assert "could not check" in (tmp_path / "b" / "report.html").read_text()
    assert "could **not**" in (tmp_path / "b" / "VERIFY.md").read_text()
    assert SCENARIO.is_file()


@pytest.mark.real_clock  # a writer with a login role of its own
def test_the_database_screens_what_a_client_without_the_screen_writes(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unencrypted PostgreSQL store screens the clear entries of a writer who may not
    read the personal values: the ledger's own write path with its screen removed still
    cannot write a recorded name or date of birth into the hashed record, neither in a
    later entry nor in the referral that gives the values; clean entries still go in."""
    from ledger.domain.policy import default_policy_text
    from ledger.errors import StoreUnavailable

    owner = open_ledger(pg_url)
    owner.record_lines(scenario_lines(), owner.recorder_for())
    liaison = person(pg_url, "police.liaison")
    owner.enrol(liaison.name, ["agency"], owner.recorder_for("admin"), agency="Northshire Police")
    officer = person(pg_url, "bu.officer")
    owner.enrol(officer.name, ["business-unit"], owner.recorder_for("admin"))
    monkeypatch.setattr(CaseLedger, "_refuse_personal_in_text", lambda *args: None)
    reply = orjson.loads(scenario_lines()[8])
    agency_ledger = liaison.ledger()
    before = owner.count_events()
    for summary in ("Kai EXAMPLE was known to us.", "Born 14 August 2025.", "example, kai"):
        with pytest.raises(StoreUnavailable, match="database's screen"):
            agency_ledger.record_lines(
                [orjson.dumps({**reply, "summary": summary})], liaison.recorder("agency")
            )
    # a business unit whose role may not export personal data is screened too, the
    # referral against the values it gives itself
    text = default_policy_text().replace(
        'actions = ["hold", "checkpoint", "export-personal"]', 'actions = ["hold", "checkpoint"]'
    )
    owner.set_policy(
        text, "officers may not export personal data", owner.recorder_for("admin"), "test"
    )
    unit = officer.ledger()
    accented = {**REFERRAL, "personal": {"name": "Zoë Sämple"}, "summary": "ZOE SAMPLE, admitted."}
    for referral in ({**REFERRAL, "summary": "Zoe Sample was admitted."}, accented):
        with pytest.raises(StoreUnavailable, match="database's screen"):
            unit.record_lines([orjson.dumps(referral)], officer.recorder("business-unit"))
    assert owner.count_events() == before
    agency_ledger.record_lines(
        [orjson.dumps({**reply, "summary": "Known to us."})], liaison.recorder("agency")
    )
    unit.record_lines([orjson.dumps(REFERRAL)], officer.recorder("business-unit"))
    # a writer who may export the values is not screened by the database (their client is)
    owner.record_lines(
        [orjson.dumps(context("Kai Example, as the school knew him."))], owner.recorder_for()
    )
    assert owner.count_events() == before + 3 and owner.verify().ok


LATIN_TEXT = st.text(
    alphabet=st.sampled_from(
        list(string.ascii_letters + string.digits + " .,-'/()!?\t")
        + list("ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöøùúûüýÿ")
        + list("ĀāĂăĆćČčĎďĒēĘęĚěĞğĪīŁłŃńŇňŌōŐőŘřŚśŠšŢţŤťŪūŮůŰűŹźŻżŽž")
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(text=LATIN_TEXT)
def test_the_database_folds_text_as_the_ledger_does(pg_schema_url: str, text: str) -> None:
    """One folding rule: the database's ``caseledger_fold`` gives what
    ``ledger.domain.personal_screen.folded`` gives, for ASCII and accented Latin text."""
    import psycopg

    from ledger.domain.personal_screen import folded

    base, schema = pg_schema_url
    with psycopg.connect(base) as conn:
        (got,) = conn.execute(f'SELECT "{schema}".caseledger_fold(%s)', (text,)).fetchone()  # type: ignore[misc]
    assert got == folded(text)


@pytest.fixture(scope="module")
def pg_schema_url() -> Any:
    """A PostgreSQL store's connection and schema, made once for the folding property."""
    import os
    import uuid

    import psycopg

    url = os.environ.get("CASELEDGER_TEST_POSTGRES")
    if not url:
        pytest.skip("no PostgreSQL server configured (CASELEDGER_TEST_POSTGRES)")
    schema = "fold_" + uuid.uuid4().hex[:12]
    led = CaseLedger(parse_store(f"{url}?schema={schema}"), clock=lambda: FIXED_TODAY)
    led.record_lines(scenario_lines(), led.recorder_for())
    led.close()
    yield url, schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.mark.parametrize(
    "summary",
    [
        "Kai\nExample moved to Westmoor.",  # a line break inside the name (JSON "\n")
        "KAI-EXAMPLE moved.",
        "Kaï Exämple moved.",  # not ASCII: the full screen decides
        "She said: \u201cKai Example\u201d.",
    ],
)
def test_the_export_finds_the_name_however_the_line_is_written(
    scenario_store: str, cli: Any, tmp_path: Path, summary: str
) -> None:
    """The export reads its files a line at a time and screens in full only the lines
    that could hold a value: a value written across an escaped line break, with
    accents, or beside an escape is still found."""
    older = _OlderLedger(parse_store(scenario_store))
    try:
        older.record_lines([orjson.dumps(context(summary))], older.recorder_for("business-unit"))
    finally:
        older.close()
    result = cli(["--store", scenario_store, "export", "--out", str(tmp_path / "bundle")])
    assert result.exit_code == 1, result.stdout
    assert "events.jsonl" in result.stderr and "personal.name" in result.stderr


def test_a_value_across_a_line_break_of_another_file_is_found(tmp_path: Path) -> None:
    """Outside events.jsonl a file is read a line at a time, each with the line before:
    a name the report wraps onto the next line is found."""
    from projections.export.personal_check import PersonalCheck, PersonalDataInBundle, scan_file

    check = PersonalCheck()
    check.everywhere.add("name", NAME, dates=False, label="case X, personal.name")
    check.values = 1
    report = tmp_path / "report.html"
    report.write_text("<p>Lorem ipsum\n" * 1000 + "<p>seen with Kai\n<b>Example</b>\n")
    with pytest.raises(PersonalDataInBundle, match=r"report\.html holds case X"):
        scan_file(check, report)
    report.write_text("<p>Kai came; then another child.\n" * 10)
    scan_file(check, report)
