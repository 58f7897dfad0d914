"""Work the runner does in child processes: a big ``record``, an export, writers.

``python -m bench.child record URL FILE CLOCK`` records a JSON Lines file in one command
(one transaction); ``library`` saves the same events with the plain library in one
transaction, and ``raw`` inserts the rows a record stored with one ``executemany`` (the
baselines of the record, each in a process of its own for its memory);
``python -m bench.child export URL OUT`` exports the whole store to ``OUT`` and then
verifies the bundle (``verify OUT``, in a process of its own), each beside its streamed
baseline (:mod:`bench.export`); ``reindex URL`` rebuilds the cross-case index and
``sqlfold URL`` runs its baseline, the same fold in SQL (:mod:`bench.sqlfold`);
``writers PG_URL EVENTS OPS`` runs the PostgreSQL writers measurement alone.  Each
prints one JSON object: the seconds taken and the process's peak resident memory (for the
export, read before the verify starts; for the verify, summed over its processes).

:func:`worker` is the body of one process of the pool of concurrent writers.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB.

    Linux's ``VmHWM`` of this process's own address space.  Not ``ru_maxrss``: Linux
    carries the parent's high-water mark across fork and exec into it, so a child of a
    big parent would report the parent's size.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class BenchClock:
    """The ledger clock for the runner: a set time, moving on by ``tick`` at each call."""

    def __init__(self, start: datetime, tick: timedelta = timedelta(0)) -> None:
        self.now = start
        self.tick = tick

    def __call__(self) -> datetime:
        moment = self.now
        self.now = moment + self.tick
        return moment


def export_and_verify(url: str, out: str) -> dict[str, Any]:
    """Export the whole store to ``out`` and verify the bundle, timing each, with the
    streamed baselines of :mod:`bench.export` measured right before and right after
    each (their mean is the figure's baseline).  The verify runs in a fresh process of
    its own, as ``caseledger verify`` does (not forked from this one, whose pages its
    worker processes would share and count), and its peak memory is summed over its
    processes."""
    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store
    from projections.export.bundle import export_bundle

    from .export import TreeRss, export_baseline, verify_baseline

    bundle = Path(out)
    scratch = bundle.with_name(bundle.name + "-baseline")
    export_base = [export_baseline(url, None, scratch)]
    ledger = CaseLedger(parse_store(url))
    before = peak_rss_mb()
    forked = resource.getrusage(resource.RUSAGE_CHILDREN)  # the export's second process
    cpu = time.process_time()
    start = time.perf_counter()
    summary = export_bundle(ledger, out)
    exported = time.perf_counter() - start
    export_cpu = time.process_time() - cpu
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    second_cpu = (done.ru_utime + done.ru_stime) - (forked.ru_utime + forked.ru_stime)
    export_cpu += second_cpu  # the CPU time of both processes
    peak = peak_rss_mb()
    ledger.close()
    export_base.append(export_baseline(url, bundle, scratch))
    # the first baseline ran before there was a bundle to copy: the second's copy counts
    export_base[0]["copy_s"] = export_base[1]["copy_s"]
    export_base[0]["seconds"] += export_base[1]["copy_s"]
    verify_base = [verify_baseline(bundle)]
    command = [sys.executable, "-m", "bench.child", "verify", out]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryFile() as printed:
        proc = subprocess.Popen(command, stdout=printed)
        with TreeRss(proc.pid) as tree:
            proc.wait()
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        verify_cpu = (used.ru_utime + used.ru_stime) - (children.ru_utime + children.ru_stime)
        printed.seek(0)
        verified = orjson.loads(printed.read())
    verify_base.append(verify_baseline(bundle))
    export_base_s = sum(b["seconds"] for b in export_base) / len(export_base)
    verify_base_s = sum(b["seconds"] for b in verify_base) / len(verify_base)
    export_base_cpu = sum(b["cpu_s"] for b in export_base) / len(export_base)
    verify_base_cpu = sum(b["cpu_s"] for b in verify_base) / len(verify_base)
    return {
        "events": summary.events,
        "export_s": exported,
        "export_peak_rss_mb": peak,
        "rss_before_export_mb": before,
        "export_baseline_s": export_base_s,
        "export_baseline_runs": export_base,
        "export_ratio_baseline": exported / export_base_s,
        "export_cpu_s": export_cpu,
        "export_second_process_cpu_s": second_cpu,
        "export_baseline_cpu_s": export_base_cpu,
        "export_cpu_ratio_baseline": export_cpu / export_base_cpu,
        "verify_s": verified["verify_s"],
        "verify_baseline_s": verify_base_s,
        "verify_baseline_runs": verify_base,
        "verify_ratio_baseline": verified["verify_s"] / verify_base_s,
        "verify_cpu_s": verify_cpu,
        "verify_baseline_cpu_s": verify_base_cpu,
        "verify_cpu_ratio_baseline": verify_cpu / verify_base_cpu,
        "verify_peak_rss_total_mb": tree.peak_mb,
        "verify_processes": tree.processes,
        "verify_ok": verified["ok"],
        "verify_events": verified["events"],
        "verify_failure": verified["failure"],
    }


def verify_only(out: str) -> dict[str, Any]:
    """Verify the bundle ``out``; the seconds it took and the verdict."""
    from projections.export.verify import verify_bundle

    start = time.perf_counter()
    result = verify_bundle(out)
    return {
        "verify_s": time.perf_counter() - start,
        "ok": result.ok,
        "events": result.events,
        "failure": None if result.ok else str(result.failure),
    }


def enrolled_recorder(ledger: Any) -> Any:
    """The store's identity as recorder, enrolled (as a new store's first user) before
    anything is timed: on PostgreSQL the database takes the actor from the session."""
    if not ledger.register_state().initialised:
        from .generate import decision_makers

        who = ledger.identity()
        ledger.enrol(who, ["admin", "business-unit"], ledger.recorder_for_action("users"))
        for name, role in decision_makers():  # the approvers the generated delays name
            ledger.enrol(name, [role], ledger.recorder_for_action("users"))
    return ledger.recorder_for()


def reindex(url: str) -> dict[str, Any]:
    """``reindex`` (``CaseIndex.rebuild``) of the whole store: seconds, entries, and the
    process's peak memory before and after."""
    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store
    from projections.index.case_index import CaseIndex

    ledger = CaseLedger(parse_store(url))
    index = CaseIndex(ledger)
    before = peak_rss_mb()
    start = time.perf_counter()
    cpu = time.process_time()
    applied = index.rebuild()
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = peak_rss_mb()
    ledger.close()
    return {
        "events": applied,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": peak,
        "rss_before_mb": before,
    }


def sql_fold(url: str) -> dict[str, Any]:
    """The index's fold written in SQL (:mod:`bench.sqlfold`) on the same store: seconds
    and this process's peak memory (the database's own is not in it)."""
    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store

    from .sqlfold import sql_fold as fold

    ledger = CaseLedger(parse_store(url))
    before = peak_rss_mb()
    figures = fold(ledger)
    ledger.close()
    return {**figures, "peak_rss_mb": peak_rss_mb(), "rss_before_mb": before}


def record_file(url: str, path: str, clock: str) -> dict[str, Any]:
    """``record`` of a whole JSON Lines file in one command, on a store whose users are
    enrolled, the ledger clock set to ``clock``; the seconds it took and peak memory."""
    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store

    lines = Path(path).read_bytes().splitlines()
    ledger = CaseLedger(parse_store(url), clock=BenchClock(datetime.fromisoformat(clock)))
    recorder = enrolled_recorder(ledger)  # a real store has its users enrolled already
    before = peak_rss_mb()
    start = time.perf_counter()
    receipts = ledger.record_lines(lines, recorder)
    seconds = time.perf_counter() - start
    ledger.close()
    return {
        "events": len(receipts),
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
    }


def single_entries(store: str, ops: str, kept: str) -> dict[str, Any]:
    """``ops`` one-entry commands through the API, round the open cases of a copy of an
    SQLite store of ``bench.profile``'s ledger (seed 1, 20,000 events), each kept case
    state dropped before every command unless ``kept`` is ``kept`` (as a new process
    has none); the CPU and wall time per command.  Run by one version, then another,
    on the same store, it compares two versions of the write path."""
    import itertools
    import shutil

    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store

    from .generate import follow_up, open_cases, plan_ledger
    from .runner import after_horizon

    count = int(ops)
    with tempfile.TemporaryDirectory() as work:
        copy = str(Path(work) / "single.db")
        shutil.copy(store, copy)
        now = after_horizon()
        clock = BenchClock(now, timedelta(milliseconds=1))
        ledger = CaseLedger(parse_store(copy), clock=clock)
        recorder = enrolled_recorder(ledger)
        cases = open_cases(plan_ledger(1, 20_000))
        counter = itertools.count(10_000)
        lines = [
            follow_up(cases[i % len(cases)].ref, next(counter), now.date()) for i in range(count)
        ]
        wall, cpu = time.perf_counter(), time.process_time()
        for line in lines:
            if kept != "kept":
                ledger.__dict__.pop("_kept_heads_by_case", None)
            ledger.record_lines([line], recorder)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        ledger.close()
    return {
        "ops": count,
        "wall_ms_per_op": 1000 * wall / count,
        "cpu_ms_per_op": 1000 * cpu / count,
    }


def library_file(url: str, path: str, kind: str, base_url: str, schema: str) -> dict[str, Any]:
    """The plain ``eventsourcing`` library saving the events of a JSON Lines file in one
    transaction (:func:`bench.library.library_batch`); seconds and peak memory."""
    from .library import library_batch, library_env

    env = library_env(url, kind, base_url, schema)
    lines = Path(path).read_bytes().splitlines()
    before = peak_rss_mb()
    events, seconds = library_batch(env, lines)
    return {
        "events": events,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
    }


def raw_file(rows_path: str, target: str, durability: str) -> dict[str, Any]:
    """The raw baseline in a process of its own: one ``executemany`` of the stored rows
    in ``rows_path`` (JSON Lines ``[id, version, topic, state]``, what a ``record`` of
    the same input stored) in one transaction; seconds and peak memory, to compare the
    ledger's peak memory with.  ``target``: an SQLite file, or ``BASE_URL#SCHEMA``."""
    from uuid import UUID

    from .stores import PostgresRaw, SQLiteRaw

    settings = orjson.loads(durability)
    rows: list[Any] = []
    with open(rows_path, "rb") as f:
        for line in f:
            origin, version, topic, state = orjson.loads(line)
            rows.append((origin, version, topic, state.encode()))
    if "#" in target:
        base_url, schema = target.rsplit("#", 1)
        rows = [(UUID(r[0]), r[1], r[2], r[3]) for r in rows]
        raw: Any = PostgresRaw(base_url, schema, settings)
    else:
        raw = SQLiteRaw(Path(target), settings)
    try:
        before = peak_rss_mb()
        seconds = raw.insert_many(rows)
    finally:
        raw.close()
    return {
        "events": len(rows),
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
    }


def worker(inbox: Any, outbox: Any) -> None:
    """One writer process of the runner's pool (started once, with ``spawn``).

    Each task is ``("ledger", url, lines, start, locked)``: record ``lines[0]`` (warm-up:
    the connection, the enrolment), report ready, wait for ``"go"``, then record each
    other line as one command (as ``caseledger record`` of a one-line file does), with
    ``locked`` each command's append first taking the table lock the ledger took before
    its log had a settled position (:func:`_lock_appends`: the old design, measured
    beside the new in the same run); or
    ``("raw", base_url, schema, table, rows, lock, synchronous_commit)``: the same with
    psycopg INSERT and COMMIT of each row, optionally taking the library's
    ``LOCK TABLE ... IN EXCLUSIVE MODE`` first.  Each reports ``(began, ended, ops)``.
    """
    ledgers: dict[str, Any] = {}
    while True:
        task = inbox.get()
        if task is None:
            break
        if task[0] == "ledger":
            _, url, lines, start, locked = task
            run = _ledger_task(ledgers, url, lines, start, locked)
        else:
            run = _raw_task(*task[1:])
        outbox.put("ready")
        if inbox.get() != "go":
            raise RuntimeError("the runner's pool lost step")
        began = time.time()
        ops = run()
        outbox.put((began, time.time(), ops))
    for ledger in ledgers.values():
        ledger.close()


def _ledger_task(
    ledgers: dict[str, Any], url: str, lines: Sequence[bytes], start: datetime, locked: bool
) -> Any:
    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store

    ledger = ledgers.get(url)
    if ledger is None:
        ledger = ledgers[url] = CaseLedger(parse_store(url))
        ledger.ledger_recorder.bench_append = ledger.ledger_recorder._append
    _lock_appends(ledger, locked)
    ledger.clock = BenchClock(start, timedelta(milliseconds=1))
    recorder = enrolled_recorder(ledger)  # the store's identity, enrolled
    ledger.record_lines(lines[:1], recorder)

    def run() -> int:
        for line in lines[1:]:
            ledger.record_lines([line], recorder)
        return len(lines) - 1

    return run


def _lock_appends(ledger: Any, locked: bool) -> None:
    """Make the ledger's appends take ``LOCK TABLE caseledger_events IN EXCLUSIVE MODE``
    first (as ``caseledger_append`` did before the settled position), or not: through
    ``bench_locked_append``, a wrapper of the bench's own in the bench's schema (made
    once, by the database superuser the bench runs as), which locks and then calls the
    ledger's function in the same transaction, as the same session user."""
    from psycopg.sql import SQL, Identifier

    recorder = ledger.ledger_recorder
    if not locked:
        recorder._append = recorder.bench_append
        return
    schema = Identifier(recorder.datastore.schema)
    args = (
        "{s}.stored_event_uuid[], jsonb, text[], bigint[], text[], bytea[], bytea[], "
        "text[], bigint[], bytea[]"
    )
    with recorder.datastore.transaction(commit=True) as curs:
        curs.execute("SELECT pg_advisory_xact_lock(hashtext('bench_locked_append'))")
        curs.execute(
            SQL(
                "CREATE OR REPLACE FUNCTION {s}.bench_locked_append(" + args + ") "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $f$ BEGIN "
                "LOCK TABLE {s}.caseledger_events IN EXCLUSIVE MODE; "
                "RETURN QUERY SELECT * FROM {s}.caseledger_append("
                "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10); END $f$"
            ).format(s=schema)
        )
    recorder._append = SQL(
        "SELECT * FROM {s}.bench_locked_append(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "AS caseledger_append"
    ).format(s=schema)


def _raw_task(
    base_url: str,
    schema: str,
    table_name: str,
    rows: Sequence[tuple[Any, int, str, bytes]],
    lock: bool,
    synchronous_commit: str,
) -> Any:
    import psycopg
    from psycopg.sql import SQL, Identifier

    table = SQL("{}.{}").format(Identifier(schema), Identifier(table_name))
    insert = SQL(
        "INSERT INTO {} (originator_id, originator_version, topic, state) VALUES (%s,%s,%s,%s)"
    ).format(table)
    locking = SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table)
    conn = psycopg.connect(base_url)
    conn.execute(SQL("SET synchronous_commit = {}").format(SQL(synchronous_commit)))
    conn.commit()

    def run() -> int:
        with conn, conn.cursor() as cur:
            for row in rows:
                if lock:
                    cur.execute(locking)
                cur.execute(insert, row)
                conn.commit()
        return len(rows)

    return run


def writers_only(pg_url: str, events: str, ops: str) -> dict[str, Any]:
    """The runner's PostgreSQL writers measurement alone (``pg_writers``), on a fresh
    schema loaded with a ledger of ``events`` entries, ``ops`` commands per writer, 3
    repetitions; the schema is dropped afterwards."""
    from . import runner
    from .generate import plan_ledger
    from .stores import Target

    settings = runner.settings_for(
        "tiny", events=int(events), writer_ops=int(ops), writer_reps=3, stores=("postgres",)
    )
    with tempfile.TemporaryDirectory() as workdir:
        target = Target.postgres(pg_url, Path(workdir))
        try:
            bench = runner.StoreBench(
                settings, target, plan_ledger(settings.seed, settings.events), lambda m: None
            )
            bench.load()
            bench.pg_writers()
        finally:
            target.drop()
    return {
        "pg_writers_4_vs_1": bench.result.figures.get("pg_writers_4_vs_1"),
        "pg_writers": bench.result.details["pg_writers"],
    }


def main(argv: list[str]) -> None:
    """``python -m bench.child export URL OUT``, ``... record URL FILE CLOCK``,
    ``... library URL FILE KIND BASE_URL SCHEMA``, ``... raw ROWS TARGET DURABILITY``,
    ``... writers PG_URL EVENTS OPS`` or ``... single STORE OPS kept|fresh``."""
    if len(argv) == 3 and argv[0] == "export":
        figures = export_and_verify(argv[1], argv[2])
    elif len(argv) == 2 and argv[0] == "verify":
        figures = verify_only(argv[1])
    elif len(argv) == 4 and argv[0] == "record":
        figures = record_file(argv[1], argv[2], argv[3])
    elif len(argv) == 2 and argv[0] in ("reindex", "sqlfold"):
        figures = reindex(argv[1]) if argv[0] == "reindex" else sql_fold(argv[1])
    elif len(argv) == 6 and argv[0] == "library":
        figures = library_file(*argv[1:])
    elif len(argv) == 4 and argv[0] == "raw":
        figures = raw_file(argv[1], argv[2], argv[3])
    elif len(argv) == 4 and argv[0] == "writers":
        figures = writers_only(argv[1], argv[2], argv[3])
    elif len(argv) == 4 and argv[0] == "single":
        figures = single_entries(argv[1], argv[2], argv[3])
    else:
        raise SystemExit(
            "usage: python -m bench.child export URL OUT | verify OUT | record URL FILE CLOCK "
            "| reindex URL | sqlfold URL | library URL FILE KIND BASE_URL SCHEMA "
            "| raw ROWS TARGET DURABILITY | writers PG_URL EVENTS OPS "
            "| single STORE OPS kept|fresh"
        )
    sys.stdout.buffer.write(orjson.dumps(figures) + b"\n")


if __name__ == "__main__":
    main(sys.argv[1:])
