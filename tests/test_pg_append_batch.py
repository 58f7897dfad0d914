"""The database's checks hold for every entry of one ``caseledger_append`` call.

``caseledger_append`` carries a case's head from one entry to the next entry of the same
case instead of reading it again, reads the policy again only when the role changes, and
writes each entry's reading scope from the body it has already parsed (issue 18: the
server's time per entry).  A modified client calling the function directly with several
entries must still meet every check a call per entry would make: each test is such a
call, and nothing of a refused call is stored.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from ledger.application import CaseLedger
from ledger.domain.case import case_id
from ledger.integrity.canonical import canonical_json, event_hash
from tests.conftest import Person, open_ledger, person, scenario_lines
from tests.test_db_authority import _now_z

#: The server dates these writers' entries by its own clock (tests/conftest.py).
pytestmark = pytest.mark.real_clock

CASE = "RR-2026-004"


def _entry(prev: dict[str, Any], who: Person, role: str, **fields: Any) -> dict[str, Any]:
    """The entry after ``prev`` in its case, chained and hashed as the ledger would."""
    body = {
        "type": "ContextRecorded",
        "case": prev["case"],
        "occurred_at": "2026-11-30",
        "topic": "other",
        "summary": "crafted",
        "seq": prev["seq"] + 1,
        "prev_hash": prev["hash"],
        "actor": who.name,
        "role": role,
        "recorded_at": _now_z(),
        "command_id": "00000000-0000-4000-8000-000000000000",
        **fields,
    }
    body["hash"] = event_hash(body)
    return body


def _append(who: Person, url: str, bodies: list[dict[str, Any]], **ids: Any) -> list[int]:
    """Call caseledger_append directly, as a modified client would, with these entries in
    one call (``ids`` maps an entry's index to the originator id to send for it)."""
    import psycopg
    from psycopg.types.json import Jsonb

    schema = url.partition("?schema=")[2]
    s = f'"{schema}"'
    rows = ", ".join(
        f"ROW(%s::uuid, %s::bigint, %s::text, %s::bytea)::{s}.stored_event_uuid" for _ in bodies
    )
    args: list[Any] = []
    for i, body in enumerate(bodies):
        args += [ids.get(f"id{i}", case_id(body["case"])), body["seq"], body["type"]]
        args.append(canonical_json(body))
    envelopes = [
        {
            **{k: b.get(k) for k in ("case", "seq", "type", "actor", "role", "prev_hash")},
            "hash": b["hash"],
            "recorded_at": b["recorded_at"],
            "agency": b.get("agency"),
            "regime": "wt2023",
        }
        for b in bodies
    ]
    with psycopg.connect(who.url.partition("?schema=")[0], autocommit=True) as conn:
        found = conn.execute(
            f"SELECT {s}.caseledger_append(ARRAY[{rows}], %s, %s::text[], %s::bigint[], "
            "%s::text[], %s::bytea[], %s::bytea[], %s::text[], %s::bigint[], %s::bytea[])",
            (*args, Jsonb(envelopes), [], [], [], [], [], [], [], []),
        ).fetchall()
    return [row[0] for row in found]


@pytest.fixture
def store(pg_url: str) -> tuple[CaseLedger, Person]:
    """The scenario's store and a writer enrolled as business unit and panel member."""
    led = open_ledger(pg_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    writer = person(pg_url, "bu.officer")
    led.enrol(writer.name, ["business-unit", "panel-member"], led.recorder_for("admin"))
    return led, writer


def _count(led: CaseLedger) -> int:
    return len(led.case_records(CASE))


def test_a_call_of_several_entries_of_one_case_is_stored_chained(
    store: tuple[CaseLedger, Person], pg_url: str
) -> None:
    led, writer = store
    before = _count(led)
    first = _entry(led.case_records(CASE)[-1], writer, "business-unit")
    second = _entry(first, writer, "business-unit", summary="next")
    third = _entry(second, writer, "business-unit", summary="and next")
    assert len(_append(writer, pg_url, [first, second, third])) == 3
    assert [r["hash"] for r in led.case_records(CASE)[before:]] == [
        first["hash"],
        second["hash"],
        third["hash"],
    ]
    assert led.verify().ok


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prev_hash": "f" * 64}, "moved on"),
        ({"seq_step": 2}, "moved on"),
    ],
    ids=["prev-hash", "seq-gap"],
)
def test_the_second_entry_of_a_case_in_one_call_is_checked_against_the_first(
    store: tuple[CaseLedger, Person], pg_url: str, change: dict[str, Any], message: str
) -> None:
    """The head carried from the call's first entry is that entry: a second entry that
    does not follow it (another prev_hash, a seq that skips one) is refused, and the first
    is not stored either (a time before it: the operator's test below, since anyone
    else's time must be the database's)."""
    import psycopg

    led, writer = store
    before = _count(led)
    first = _entry(led.case_records(CASE)[-1], writer, "business-unit")
    second = _entry(first, writer, "business-unit")
    step = change.pop("seq_step", None)
    if step is not None:
        second["seq"] = first["seq"] + step
    second.update(change)
    second["hash"] = event_hash({k: v for k, v in second.items() if k != "hash"})
    with pytest.raises(psycopg.Error, match=message):
        _append(writer, pg_url, [first, second])
    assert _count(led) == before and led.verify().ok


def test_an_operators_second_entry_recorded_before_the_first_is_refused(pg_url: str) -> None:
    """The store's owner may date entries (an operator), but never before the case's
    previous entry, even when that entry is the one just carried in the same call."""
    import psycopg

    led = open_ledger(pg_url)
    led.record_lines(scenario_lines(), led.recorder_for())
    owner = Person(led.identity(), pg_url)
    before = _count(led)
    last = led.case_records(CASE)[-1]
    first = _entry(last, owner, "business-unit", recorded_at="2026-11-30T10:00:00.000000Z")
    second = _entry(first, owner, "business-unit", recorded_at="2026-11-30T09:59:59.999999Z")
    with pytest.raises(psycopg.Error, match="recorded before"):
        _append(owner, pg_url, [first, second])
    assert _count(led) == before and led.verify().ok


def test_a_second_entry_of_the_same_case_under_another_id_is_refused(
    store: tuple[CaseLedger, Person], pg_url: str
) -> None:
    import uuid

    import psycopg

    led, writer = store
    before = _count(led)
    first = _entry(led.case_records(CASE)[-1], writer, "business-unit")
    second = _entry(first, writer, "business-unit")
    with pytest.raises(psycopg.Error, match="referred already"):
        _append(writer, pg_url, [first, second], id1=uuid.uuid4())
    assert _count(led) == before


def test_the_policy_of_each_entrys_own_role_is_applied(
    store: tuple[CaseLedger, Person], pg_url: str
) -> None:
    """One writer, two roles in one call: the policy read for the first entry's role is
    not applied to the second's (a panel member may not record context)."""
    import psycopg

    led, writer = store
    before = _count(led)
    first = _entry(led.case_records(CASE)[-1], writer, "business-unit")
    second = _entry(first, writer, "panel-member")
    with pytest.raises(psycopg.Error, match="role panel-member\\) may not record ContextRecorded"):
        _append(writer, pg_url, [first, second])
    assert _count(led) == before
    allowed = _entry(
        led.case_records(CASE)[-1],
        writer,
        "panel-member",
        type="DiscussionHeld",
        forum="other",
        attendees=["A. Member"],
        summary="met",
    )
    allowed.pop("topic")
    allowed["hash"] = event_hash({k: v for k, v in allowed.items() if k != "hash"})
    after = _entry(allowed, writer, "business-unit")
    assert len(_append(writer, pg_url, [allowed, after])) == 2


def _scope(url: str, seq: int) -> tuple[Any, ...] | None:
    import psycopg
    from psycopg.sql import SQL, Identifier

    base, _, schema = url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        row = conn.execute(
            SQL(
                "SELECT case_ref, type, agency, corrects, personal FROM {}.caseledger_scope "
                "WHERE originator_id = %s AND seq = %s"
            ).format(Identifier(schema)),
            (case_id(CASE), seq),
        ).fetchone()
    return None if row is None else tuple(row)


def test_each_appended_entry_has_its_scope_and_a_correction_moves_its_targets(
    store: tuple[CaseLedger, Person], pg_url: str
) -> None:
    """The scope written from the parsed body is the one the trigger wrote before: the
    agency an entry names, and a correction of that agency moving its target's scope."""
    led, writer = store
    first = _entry(
        led.case_records(CASE)[-1],
        writer,
        "business-unit",
        type="AgencyViewGiven",
        agency="police",
        view="review",
    )
    for name in ("topic", "summary"):
        first.pop(name)
    first["hash"] = event_hash({k: v for k, v in first.items() if k != "hash"})
    fix = _entry(
        first,
        writer,
        "business-unit",
        type="EntryCorrected",
        corrects=f"{CASE}#{first['seq']}",
        changes={"agency": "health"},
        reason="wrong agency",
    )
    for name in ("topic", "summary"):
        fix.pop(name)
    fix["hash"] = event_hash({k: v for k, v in fix.items() if k != "hash"})
    _append(writer, pg_url, [first, fix])
    assert _scope(pg_url, first["seq"]) == (CASE, "AgencyViewGiven", "health", None, False)
    assert _scope(pg_url, fix["seq"]) == (CASE, "EntryCorrected", None, first["seq"], False)
    assert led.verify().ok


def test_an_entry_the_owner_inserts_directly_still_gains_its_scope(pg_url: str) -> None:
    """Only caseledger_append writes the scope before its insert; any other insert (the
    owner's, triggers on) gains it from the trigger, as before."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    led = open_ledger(pg_url)
    led.record_lines(scenario_lines()[:3], led.recorder_for())
    last = led.case_records(CASE)[-1]
    forged = {k: v for k, v in last.items() if k not in ("position", "hash")}
    forged.update(seq=last["seq"] + 1, prev_hash=last["hash"], agency="education")
    forged["hash"] = event_hash(forged)
    base, _, schema = pg_url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            SQL(
                "INSERT INTO {}.caseledger_events (originator_id, originator_version, topic, "
                "state) VALUES (%s, %s, %s, %s)"
            ).format(Identifier(schema)),
            (case_id(CASE), forged["seq"], forged["type"], orjson.dumps(forged)),
        )
    found = _scope(pg_url, forged["seq"])
    assert found is not None and found[:3] == (CASE, forged["type"], "education")


@pytest.mark.parametrize("position", [0, 1], ids=["first", "second"])
def test_an_entry_without_a_role_is_refused_wherever_it_comes(
    store: tuple[CaseLedger, Person], pg_url: str, position: int
) -> None:
    """A null role (in the entry and its envelope) is no role the writer is enrolled as,
    and no policy is read for it: refused as the call's first entry and after another."""
    import psycopg

    led, writer = store
    before = _count(led)
    first = _entry(led.case_records(CASE)[-1], writer, "business-unit")
    second = _entry(first, writer, "business-unit")
    bodies = [first, second]
    bodies[position]["role"] = None
    bodies[position]["hash"] = event_hash(
        {k: v for k, v in bodies[position].items() if k != "hash"}
    )
    if position == 0:
        second["prev_hash"] = first["hash"]
        second["hash"] = event_hash({k: v for k, v in second.items() if k != "hash"})
    with pytest.raises(psycopg.Error, match="is not enrolled as"):
        _append(writer, pg_url, bodies)
    assert _count(led) == before


def test_the_carried_head_rests_on_the_provenance_tables_unique_keys(pg_url: str) -> None:
    """Carrying a case's head through a call is safe only because no other transaction can
    commit the case's next entry meanwhile: its provenance row would take the same
    ``(case_ref, seq)`` or ``(originator_id, seq)``. This fails if either key goes."""
    import psycopg

    open_ledger(pg_url)
    base, _, schema = pg_url.partition("?schema=")
    with psycopg.connect(base, autocommit=True) as conn:
        keys = conn.execute(
            "SELECT c.contype, array_agg(a.attname::text ORDER BY a.attname) "
            "FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "JOIN pg_namespace n ON n.oid = t.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (c.conkey) "
            "WHERE n.nspname = %s AND t.relname = 'caseledger_provenance' "
            "AND c.contype IN ('p', 'u') GROUP BY c.oid, c.contype",
            (schema,),
        ).fetchall()
    found = {(kind, tuple(columns)) for kind, columns in keys}
    assert ("p", ("originator_id", "seq")) in found
    assert ("u", ("case_ref", "seq")) in found


def _correction(prev: dict[str, Any], who: Person, corrects: str) -> dict[str, Any]:
    fix = _entry(
        prev,
        who,
        "business-unit",
        type="EntryCorrected",
        corrects=corrects,
        changes={"summary": "corrected"},
        reason="crafted",
    )
    for name in ("topic", "summary"):
        fix.pop(name)
    fix["hash"] = event_hash({k: v for k, v in fix.items() if k != "hash"})
    return fix


@pytest.mark.parametrize(
    "target",
    ["other-case", "itself", "later", "a-correction", "prefix-of-ref", "zero", "no-number"],
)
def test_a_correction_must_name_an_earlier_entry_of_its_own_case(
    store: tuple[CaseLedger, Person], pg_url: str, target: str
) -> None:
    """The read side applies a correction by its target's number alone: a correction that
    names another case ("Y#3" written in case X would change X#3 while saying Y#3), itself,
    a later entry or another correction is refused by the database, as by the client."""
    import psycopg

    led, writer = store
    before = _count(led)
    last = led.case_records(CASE)[-1]
    first = _entry(last, writer, "business-unit")
    ahead = [first]
    seq = first["seq"] + 1
    corrects = {
        "other-case": f"RR-2026-077#{first['seq']}",
        "itself": f"{CASE}#{seq}",
        "later": f"{CASE}#{seq + 1}",
        "prefix-of-ref": f"{CASE[:-1]}#{first['seq']}",
        "zero": f"{CASE}#0",
        "no-number": f"{CASE}#",
    }.get(target)
    if target == "a-correction":
        earlier = _correction(first, writer, f"{CASE}#{first['seq']}")
        ahead.append(earlier)
        corrects = f"{CASE}#{earlier['seq']}"
    assert corrects is not None
    fix = _correction(ahead[-1], writer, corrects)
    with pytest.raises(psycopg.Error, match="a correction must name an earlier entry"):
        _append(writer, pg_url, [*ahead, fix])
    assert _count(led) == before
    fine = _correction(ahead[-1], writer, f"{CASE}#{first['seq']}")
    assert len(_append(writer, pg_url, [*ahead, fine])) == len(ahead) + 1
