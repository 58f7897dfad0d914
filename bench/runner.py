"""``python -m bench``: the issue's figures, on SQLite and on PostgreSQL, in one run.

For each store the runner builds a synthetic ledger of the chosen size through the real
``CaseLedger.record_lines`` (batches of 10,000 lines, one transaction each, the ledger
clock moving forward with the entries), then measures every figure of issue 6.  Each
ratio is taken against a raw baseline measured in the same run, on the same machine, at
equal durability (the baseline's connection gets the ``journal_mode`` and ``synchronous``
read from the ledger's own SQLite connection, or its ``synchronous_commit`` on
PostgreSQL), and every figure is the median of several repetitions.

A figure whose feature is not built yet (its import fails) is null, with the reason in
``reasons``; a figure whose measurement fails is null with the error as its reason, and
the run goes on.
"""

from __future__ import annotations

import compileall
import itertools
import multiprocessing
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson

from . import features
from .child import BenchClock, enrolled_recorder
from .features import Skipped, Unavailable
from .generate import (
    HORIZON,
    LedgerSpec,
    batches,
    follow_up,
    iter_lines,
    open_cases,
    plan_ledger,
)
from .stores import RAW_TABLE, RawBaseline, Target, pg_reachable, remove_tree

KEYS = (
    "append_single_ratio_raw",
    "append_batch_events_per_s",
    "append_batch_ratio_raw",
    "append_batch_ratio_library",
    "append_batch_memory_ratio_raw",
    "index_rebuild_events_per_s",
    "index_rebuild_ratio_sql",
    "index_rebuild_peak_rss_mb",
    "why_p50_ms",
    "cli_why_cold_ms",
    "cli_help_cold_ms",
    "cli_why_ratio_python",
    "cli_help_ratio_python",
    "status_all_ms",
    "delays_all_ms",
    "clocks_all_ms",
    "export_events_per_s",
    "verify_events_per_s",
    "export_peak_rss_mb",
    "export_ratio_baseline",
    "verify_ratio_baseline",
    "verify_peak_rss_total_mb",
    "pg_writers_4_vs_1",
)
"""The figures of issue 6, in its order (with issue 18's cold ``--help`` and the two cold
commands as multiples of ``python -c pass``, the record against the plain library saving
the same events and its peak memory against the raw baseline's, issue 18's export and
bundle verify as multiples of their streamed baselines, :mod:`bench.export`, with the
verifier's peak memory summed over its processes, and the rebuild's time as a multiple of
the same fold in SQL and its peak memory): exactly the keys of the JSON's top level."""

TARGETS: dict[str, tuple[str, float]] = {
    "append_single_ratio_raw": (">=", 0.6),
    "append_batch_events_per_s": (">=", 30_000),
    "append_batch_ratio_raw": (">=", 0.35),
    "append_batch_ratio_library": (">=", 1.5),
    "append_batch_memory_ratio_raw": ("<=", 1.2),
    "index_rebuild_events_per_s": (">=", 150_000),
    "index_rebuild_ratio_sql": ("<=", 1.5),
    "index_rebuild_peak_rss_mb": ("<=", 150),
    "why_p50_ms": ("<=", 5),
    "cli_why_cold_ms": ("<=", 250),
    "cli_help_cold_ms": ("<=", 250),
    "cli_why_ratio_python": ("<=", 6),
    "cli_help_ratio_python": ("<=", 6),
    "status_all_ms": ("<=", 150),
    "delays_all_ms": ("<=", 150),
    "clocks_all_ms": ("<=", 150),
    "export_events_per_s": (">=", 150_000),
    "verify_events_per_s": (">=", 150_000),
    "export_peak_rss_mb": ("<=", 150),
    "export_ratio_baseline": ("<=", 1.2),
    "verify_ratio_baseline": ("<=", 1.2),
    "verify_peak_rss_total_mb": ("<=", 300),
    "pg_writers_4_vs_1": (">=", 2.0),
}
PG_ONLY = ("pg_writers_4_vs_1",)
PG_LOAD_BATCH = 5_000
"""Lines per command when loading PostgreSQL: commands of about 6 MB (10,000 lines) have
been seen to hang in the library's pipelined insert (docs/performance.md); 5,000 have not."""
DELAY = ("IncidentNotified", "DecisionMade")
"""The interval ``delays_all_ms`` asks for: notification to decision (every regime's clock)."""
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ACTOR = "bench.loader"


def compile_sources() -> str:
    """Write the bytecode of the project's packages where it is missing, as a wheel's
    install does (pip compiles on install); an editable install never does, and with
    ``PYTHONDONTWRITEBYTECODE`` set (as here) every cold command would compile every
    module it imports again (about 40 ms of a cold ``why``).  What was done, for meta."""
    root = Path(__file__).resolve().parents[1]
    packages = [root / name for name in ("ledger", "projections", "cli")]
    if not all(p.is_dir() for p in packages):
        return "installed package (compiled by its installer)"
    ok = all(compileall.compile_dir(p, quiet=1) for p in packages)
    return "compiled before timing" if ok else "compiling failed: timed from source"


@dataclass(frozen=True)
class Settings:
    """One run's size and repetitions."""

    size: str
    events: int
    load_batch: int
    append_batch_lines: int
    single_ops: int
    reps: int
    batch_reps: int
    why_reps: int
    cli_reps: int
    writer_ops: int
    writer_reps: int
    seed: int = 1
    stores: tuple[str, ...] = ("sqlite", "postgres")
    pg_url: str = DEFAULT_PG_URL
    workdir: str = ""
    library_reference: bool = True
    only: str = ""  # run only the figures whose names start with this (and the load)


SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(
        events=3_000,
        load_batch=1_000,
        append_batch_lines=3_000,
        single_ops=20,
        reps=3,
        batch_reps=1,
        why_reps=5,
        cli_reps=2,
        writer_ops=20,
        writer_reps=1,
    ),
    "quick": dict(
        events=100_000,
        load_batch=10_000,
        append_batch_lines=100_000,
        single_ops=100,
        reps=5,
        batch_reps=1,
        why_reps=15,
        cli_reps=5,
        writer_ops=100,
        writer_reps=3,
    ),
    "full": dict(
        events=1_000_000,
        load_batch=10_000,
        append_batch_lines=100_000,
        single_ops=200,
        reps=5,
        batch_reps=3,
        why_reps=25,
        cli_reps=7,
        writer_ops=200,
        writer_reps=3,
    ),
}


def settings_for(size: str, **overrides: Any) -> Settings:
    """The settings of a named size, with any overrides (``events=...``)."""
    values: dict[str, Any] = {
        **SIZES[size],
        "library_reference": size != "tiny",
        **{k: v for k, v in overrides.items() if v is not None and v != ""},
    }
    values["append_batch_lines"] = min(values["append_batch_lines"], values["events"])
    return Settings(size=size, **values)


Log = Callable[[str], None]


def median(values: Sequence[float]) -> float:
    """The median (the middle value, or the mean of the two middle ones)."""
    return float(statistics.median(values))


def after_horizon(days: int = 1) -> datetime:
    """A ledger time after every generated entry: 09:00 UTC, ``days`` after the horizon."""
    return datetime.combine(HORIZON + timedelta(days=days), dtime(9), UTC)


class MeasurementFailed(RuntimeError):
    """What was measured failed (e.g. a child hung): reported as the figure's reason."""


# --- one store ----------------------------------------------------------------------------


@dataclass
class StoreResult:
    """What one store's run found: figures, reasons for the nulls, and details."""

    figures: dict[str, float | None] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class StoreBench:
    """Builds the ledger on one store and measures every figure on it."""

    def __init__(self, settings: Settings, target: Target, spec: LedgerSpec, log: Log) -> None:
        self.settings = settings
        self.target = target
        self.spec = spec
        self.log = log
        self.result = StoreResult()
        self.clock = BenchClock(after_horizon())
        self.ledger = target.open(self.clock)
        self.recorder = enrolled_recorder(self.ledger)
        self.durability = target.durability(self.ledger)
        self.raw: RawBaseline = target.raw(self.durability)
        self.result.details["durability"] = self.durability
        self.result.details["baseline_durability"] = getattr(self.raw, "applied", None)
        self.now = after_horizon()

    # --- the run ----------------------------------------------------------------------

    def run(self) -> StoreResult:
        steps: list[tuple[tuple[str, ...], Callable[[], None]]] = [
            (
                (
                    "append_batch_events_per_s",
                    "append_batch_ratio_raw",
                    "append_batch_ratio_library",
                    "append_batch_memory_ratio_raw",
                ),
                self.append_batch,
            ),
            ((), self.load),
            (("append_single_ratio_raw",), self.append_single),
            (
                (
                    "index_rebuild_events_per_s",
                    "index_rebuild_ratio_sql",
                    "index_rebuild_peak_rss_mb",
                ),
                self.index_rebuild,
            ),
            (("status_all_ms", "delays_all_ms", "clocks_all_ms"), self.all_cases),
            (("why_p50_ms",), self.why),
            (
                (
                    "cli_why_cold_ms",
                    "cli_help_cold_ms",
                    "cli_why_ratio_python",
                    "cli_help_ratio_python",
                ),
                self.cli_why,
            ),
            (
                (
                    "export_events_per_s",
                    "verify_events_per_s",
                    "export_peak_rss_mb",
                    "export_ratio_baseline",
                    "verify_ratio_baseline",
                    "verify_peak_rss_total_mb",
                ),
                self.export,
            ),
        ]
        if self.target.kind == "postgres":
            steps.append((("pg_writers_4_vs_1",), self.pg_writers))
        if self.settings.library_reference:
            steps.append(((), self.library_reference))
        if self.settings.only:  # the steps without figures (the load) are kept
            steps = [s for s in steps if not s[0] or s[0][0].startswith(self.settings.only)]
        try:
            for keys, step in steps:
                self._step(keys, step)
        finally:
            self.raw.close()
        return self.result

    def _step(self, keys: tuple[str, ...], step: Callable[[], None]) -> None:
        name = step.__name__
        start = time.perf_counter()
        try:
            step()
        except Unavailable as exc:
            self.log(f"  {name}: not built: {exc}")
            for key in keys:
                if self.result.figures.get(key) is None:
                    self.result.figures[key] = None
                    self.result.reasons[key] = f"not built yet: {exc}"
        except Skipped as exc:
            self.log(f"  {name}: skipped: {exc}")
            for key in keys:
                self.result.figures[key] = None
                self.result.reasons[key] = f"skipped: {exc}"
        except Exception as exc:
            if name == "load":
                raise
            self.log(f"  {name} FAILED: {type(exc).__name__}: {exc}")
            if not isinstance(exc, MeasurementFailed):  # a bug of the runner: show where
                self.log(traceback.format_exc())
            for key in keys:
                self.result.figures[key] = None
                self.result.reasons[key] = f"the measurement failed: {type(exc).__name__}: {exc}"
        self.result.details.setdefault("step_seconds", {})[name] = round(
            time.perf_counter() - start, 2
        )

    def _set(self, key: str, value: float, digits: int = 3) -> None:
        self.result.figures[key] = round(value, digits)
        self.result.reasons.pop(key, None)
        self.log(f"  {key} = {self.result.figures[key]}")

    # --- building the ledger ----------------------------------------------------------

    def load(self) -> None:
        """Record the whole ledger in batches; export it once a tenth of it is in (the
        export's memory at two ledger sizes)."""
        settings = self.settings
        size = settings.load_batch
        if self.target.kind == "postgres":
            size = min(size, PG_LOAD_BATCH)
        loaded = 0
        early = settings.events // 10
        exported_early = False
        seconds = 0.0
        for moment, lines in batches(self.spec, size):
            self.clock.now = moment + timedelta(seconds=1)
            start = time.perf_counter()
            self.ledger.record_lines(lines, self.recorder)
            seconds += time.perf_counter() - start
            loaded += len(lines)
            if loaded % 100_000 < size:
                self.log(f"  loaded {loaded:,} events ({loaded / seconds:,.0f}/s)")
            if not exported_early and loaded >= early and loaded < settings.events:
                exported_early = True
                try:
                    self._export_child("tenth", loaded)
                except (Unavailable, MeasurementFailed) as exc:  # the load goes on
                    self.log(f"  export at a tenth of the size: {exc}")
                    self.result.details.setdefault("export", {})["tenth"] = str(exc)
        self.clock.now = after_horizon()
        self.clock.tick = timedelta(milliseconds=1)
        self.result.details["load"] = {
            "events": loaded,
            "seconds": round(seconds, 2),
            "events_per_s": round(loaded / seconds),
            "batch_lines": size,
        }
        self.log(f"  loaded {loaded:,} events in {seconds:.1f}s ({loaded / seconds:,.0f}/s)")

    # --- the write side -----------------------------------------------------------------

    def append_single(self) -> None:
        """One entry per command to open cases of realistic length, vs raw INSERT+COMMIT."""
        settings = self.settings
        cases = open_cases(self.spec)
        if not cases:
            raise RuntimeError("the generated ledger has no open case to append to")
        day = self.now.date()
        counter = itertools.count()
        for case in cases[:5]:  # warm up: connections, statements, first loads
            self.ledger.record_lines([follow_up(case.ref, next(counter), day)], self.recorder)
        ledger_rates: list[float] = []
        raw_rates: list[float] = []
        for _ in range(settings.reps):
            lines = [
                follow_up(cases[i % len(cases)].ref, next(counter), day)
                for i in range(settings.single_ops)
            ]
            position = self.target.last_position()
            start = time.perf_counter()
            for line in lines:
                self.ledger.record_lines([line], self.recorder)
            ledger_rates.append(len(lines) / (time.perf_counter() - start))
            rows = self.target.rows_after(position)
            assert len(rows) == len(lines), (len(rows), len(lines))
            raw_rates.append(len(rows) / self.raw.insert_each(rows))
        lengths = [c.length for c in cases]
        self.result.details["append_single"] = {
            "ledger_ops_per_s": round(median(ledger_rates), 1),
            "raw_ops_per_s": round(median(raw_rates), 1),
            "ledger_ms_per_op": round(1000 / median(ledger_rates), 3),
            "raw_ms_per_op": round(1000 / median(raw_rates), 3),
            "ledger_rates": [round(r, 1) for r in ledger_rates],
            "raw_rates": [round(r, 1) for r in raw_rates],
            "ops_per_rep": settings.single_ops,
            "cases": len(cases),
            "case_lengths": f"{min(lengths)}-{max(lengths)} (median {median(lengths):.0f})",
        }
        self._set("append_single_ratio_raw", median(ledger_rates) / median(raw_rates))

    def append_batch(self) -> None:
        """``record`` of the first N lines in one command (one transaction) on an empty
        store, in a child process, against two baselines measured in the same rounds:
        the plain library saving the same events in one transaction (a child process
        too), and a raw ``executemany`` of the rows the record stored, in one
        transaction, timed here and again in a child process for its peak memory.  The
        three alternate round by round, so the machine's load weighs on each alike."""
        settings = self.settings
        path = self.target.workdir / "batch.jsonl"
        rows_path = self.target.workdir / "batch-rows.jsonl"
        last = after_horizon()
        with path.open("wb") as f:
            for moment, line in itertools.islice(
                iter_lines(self.spec), settings.append_batch_lines
            ):
                f.write(line + b"\n")
                last = moment
        clock = (last + timedelta(seconds=1)).isoformat()
        runs: list[dict[str, Any]] = []
        library: list[dict[str, Any]] = []
        raw_children: list[dict[str, Any]] = []
        library_failed: str | None = None
        rows: list[Any] = []
        # Generous: ten times what the target (30,000/s) would take.
        limit = 60 + settings.append_batch_lines / 3_000
        try:
            for rep in range(settings.batch_reps):
                target = self.target.sibling(f"batch-{rep}")
                try:
                    # the store's tables and its users, untimed and in this process: a real
                    # record finds its users enrolled (enrolling loads the confusables
                    # table, ~20 MiB, which would count in the record's peak memory)
                    opened = target.open()
                    enrolled_recorder(opened)
                    opened.close()
                    runs.append(self._child("record", target.url, str(path), clock, timeout=limit))
                    if not rows:
                        rows = target.rows_after(0)
                        with rows_path.open("wb") as f:
                            for origin, version, topic, state in rows:
                                f.write(orjson.dumps([str(origin), version, topic, state.decode()]))
                                f.write(b"\n")
                finally:
                    target.drop()
                self.log(
                    f"  record of {runs[-1]['events']:,} lines: {runs[-1]['seconds']:.2f}s, "
                    f"peak RSS {runs[-1]['peak_rss_mb']:.0f} MiB"
                )
                if library_failed is None:
                    library_failed = self._library_batch(rep, path, limit, library)
                raw_target = self.target.sibling(f"batch-raw-{rep}")
                where = (
                    raw_target.url
                    if raw_target.kind == "sqlite"
                    else f"{raw_target.base_url}#{self.target.schema}"
                )
                try:
                    raw_children.append(
                        self._child(
                            "raw",
                            str(rows_path),
                            where,
                            orjson.dumps(self.durability).decode(),
                            timeout=limit,
                        )
                    )
                finally:
                    raw_target.drop()
                self.log(
                    f"  raw executemany (own process): {raw_children[-1]['seconds']:.2f}s, "
                    f"peak RSS {raw_children[-1]['peak_rss_mb']:.0f} MiB"
                )
        finally:
            path.unlink(missing_ok=True)
            rows_path.unlink(missing_ok=True)
        raw_times = []
        for _ in range(max(settings.reps, settings.batch_reps)):
            self.raw.reset()
            raw_times.append(self.raw.insert_many(rows))
        self.raw.reset()
        events = runs[0]["events"]
        ledger_rate = events / median([r["seconds"] for r in runs])
        raw_rate = len(rows) / median(raw_times)
        library_rate = (
            library[0]["events"] / median([r["seconds"] for r in library]) if library else None
        )
        ledger_peak = median([r["peak_rss_mb"] for r in runs])
        raw_peak = median([r["peak_rss_mb"] for r in raw_children])
        self.result.details["append_batch"] = {
            "lines": events,
            "ledger_seconds": [round(r["seconds"], 3) for r in runs],
            "ledger_events_per_s": round(ledger_rate),
            "ledger_peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in runs],
            "ledger_rss_before_mb": [round(r["rss_before_mb"], 1) for r in runs],
            "raw_seconds": [round(t, 4) for t in raw_times],
            "raw_events_per_s": round(raw_rate),
            "raw_child_seconds": [round(r["seconds"], 4) for r in raw_children],
            "raw_child_peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in raw_children],
            "library_seconds": [round(r["seconds"], 3) for r in library],
            "library_events_per_s": None if library_rate is None else round(library_rate),
            "library_failed": library_failed,
            "library_peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in library],
        }
        self._set("append_batch_events_per_s", ledger_rate, 0)
        self._set("append_batch_ratio_raw", ledger_rate / raw_rate)
        self._set("append_batch_memory_ratio_raw", ledger_peak / raw_peak)
        if library_rate is None:
            self.result.figures["append_batch_ratio_library"] = None
            self.result.reasons["append_batch_ratio_library"] = (
                f"the plain library's batch failed: {library_failed}"
            )
        else:
            self._set("append_batch_ratio_library", ledger_rate / library_rate)

    def _library_batch(
        self, rep: int, path: Path, limit: float, library: list[dict[str, Any]]
    ) -> str | None:
        """One round of the plain library saving the record's events in one transaction
        (appended to ``library``); why it failed, if it did (on PostgreSQL the
        library's pipelined insert of a large transaction can hang: docs/performance.md),
        which leaves the record's other figures measured."""
        plain = self.target.sibling(f"batch-library-{rep}")
        try:
            library.append(
                self._child(
                    "library",
                    plain.url,
                    str(path),
                    plain.kind,
                    plain.base_url,
                    plain.schema,
                    timeout=limit,
                )
            )
        except MeasurementFailed as exc:
            self.log(f"  plain library, same events: {exc}")
            return str(exc)
        finally:
            plain.drop()
        self.log(
            f"  plain library, same events: {library[-1]['seconds']:.2f}s, "
            f"peak RSS {library[-1]['peak_rss_mb']:.0f} MiB"
        )
        return None

    # --- the read side ----------------------------------------------------------------

    def index_rebuild(self) -> None:
        """``reindex``: the cross-case index rebuilt from position zero, in a child
        process (for its peak memory), rounds interleaved with the baseline: the same
        fold written in SQL on the same store (:mod:`bench.sqlfold`), run here on the
        ledger's own connection (on PostgreSQL its work is the server's)."""
        from .sqlfold import sql_fold

        features.case_index()
        events = self.settings.events
        timeout = 120 + events / 2_000
        rebuilds: list[dict[str, Any]] = []
        folds: list[dict[str, Any]] = []
        for _ in range(max(1, self.settings.batch_reps)):
            rebuilds.append(self._child("reindex", self.target.url, timeout=timeout))
            folds.append(sql_fold(self.ledger))
            self.log(
                f"  rebuilt the index from {rebuilds[-1]['events']:,} events in "
                f"{rebuilds[-1]['seconds']:.2f}s (CPU {rebuilds[-1]['cpu_seconds']:.2f}s, "
                f"peak RSS {rebuilds[-1]['peak_rss_mb']:.0f} MiB); the fold in SQL "
                f"{folds[-1]['seconds']:.2f}s"
            )
        applied = rebuilds[0]["events"]
        rates = [r["events"] / r["seconds"] for r in rebuilds]
        sql_rates = [f["milestones"] / f["seconds"] for f in folds]
        seconds = median([r["seconds"] for r in rebuilds])
        sql_seconds = median([f["seconds"] for f in folds])
        self.result.details["index_rebuild"] = {
            "events": applied,
            "events_per_s": [round(r) for r in rates],
            "seconds": [round(r["seconds"], 3) for r in rebuilds],
            "cpu_seconds": [round(r["cpu_seconds"], 3) for r in rebuilds],
            "peak_rss_mb": [round(r["peak_rss_mb"], 1) for r in rebuilds],
            "rss_before_mb": [round(r["rss_before_mb"], 1) for r in rebuilds],
            "baseline_sql_fold": {
                "what": "bench/sqlfold.py: milestones and case rows by INSERT ... SELECT",
                "events_per_s": [round(r) for r in sql_rates],
                "seconds": [round(f["seconds"], 3) for f in folds],
                "cases": folds[0]["cases"],
            },
            "ratio_sql_per_round": [
                round(r["seconds"] / f["seconds"], 3) for r, f in zip(rebuilds, folds, strict=True)
            ],
        }
        self._set("index_rebuild_events_per_s", median(rates), 0)
        self._set("index_rebuild_ratio_sql", seconds / sql_seconds)
        self._set("index_rebuild_peak_rss_mb", max(r["peak_rss_mb"] for r in rebuilds), 1)

    def all_cases(self) -> None:
        """``status --all``, ``delays`` and ``clocks`` over every case as the CLI answers
        them (:mod:`bench.queries`: the facade and its ``--json`` bytes, each in a process
        forked for it, so nothing kept from an earlier answer), from the caught-up index;
        ``status`` (the open cases, the command's default) beside them in the details."""
        case_index = features.case_index()
        case_index(self.ledger).catch_up()  # untimed: the index is current before timing
        for finder in (features.statuses, features.delays, features.clocks):
            finder()  # Unavailable (the figures null, with why) when not built yet
        keys = {
            "status_all": "status_all_ms",
            "delays": "delays_all_ms",
            "clocks": "clocks_all_ms",
            "status": None,
        }
        runs = self._child(
            self.target.url,
            self.now.isoformat(),
            str(self.settings.reps),
            *keys,
            timeout=600 + 60 * self.settings.reps,
            module="bench.queries",
        )
        details: dict[str, Any] = {"cases": len(self.spec.cases)}
        for query, key in keys.items():
            found = runs[query]
            if len({r["sha256"] for r in found}) != 1:
                raise MeasurementFailed(f"{query}: the answers differ between repetitions")
            summary = {
                label: median([r[label] for r in found])
                for label in ("cold_ms", "cold_cpu_ms", "warm_ms", "warm_cpu_ms")
            }
            details[query] = {**summary, "rows": found[0]["rows"], "bytes": found[0]["bytes"]}
            details[query]["runs"] = found
            if key is not None:
                self._set(key, summary["cold_ms"], 1)
        self.result.details["all_cases"] = details

    def why(self) -> None:
        """``why`` of a 300-event case, in-process, each time on a newly opened ledger."""
        why = features.why()
        case = max(self.spec.cases, key=lambda c: (c.length, -c.index))
        times = []
        for _ in range(self.settings.why_reps):
            ledger = self.target.open(BenchClock(self.now))
            try:
                start = time.perf_counter()
                answer = why(ledger, case.ref)
                payload = answer.as_dict() if hasattr(answer, "as_dict") else answer
                times.append((time.perf_counter() - start) * 1000)
            finally:
                ledger.close()
                self.target.ledgers.remove(ledger)
        assert payload["decision"] is not None, "the case has a decision"
        self.result.details["why"] = {
            "case": case.ref,
            "entries": case.length,
            "ms": [round(t, 2) for t in times],
        }
        self._set("why_p50_ms", median(times), 2)

    def cli_why(self) -> None:
        """``caseledger why CASE --json`` and ``caseledger --help`` end to end, each time a
        new process, interleaved in rounds with the baseline ``python -c pass`` (the same
        interpreter), so the two ratios compare runs under the same load."""
        features.cli_command("why")
        case = max(self.spec.cases, key=lambda c: (c.length, -c.index))
        compiled = compile_sources()
        script = Path(sys.executable).with_name("caseledger")
        caseledger = [str(script)] if script.exists() else [sys.executable, "-m", "cli.start"]
        commands = {
            "python": [sys.executable, "-c", "pass"],
            "help": [*caseledger, "--help"],
            "why": [*caseledger, "--store", self.target.url, "why", case.ref, "--json"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        outputs: dict[str, bytes] = {}
        for _ in range(self.settings.cli_reps):
            for name, command in commands.items():
                start = time.perf_counter()
                done = subprocess.run(command, capture_output=True, check=False)
                times[name].append((time.perf_counter() - start) * 1000)
                if done.returncode != 0:
                    failure = done.stderr.decode()[-300:]
                    raise MeasurementFailed(f"{name}: exit code {done.returncode}: {failure}")
                outputs[name] = done.stdout
        orjson.loads(outputs["why"])
        base = median(times["python"])
        self.result.details["cli_why"] = {
            "command": " ".join([*caseledger[:1], "--store", "URL", "why", case.ref, "--json"]),
            "ms": [round(t, 1) for t in times["why"]],
            "help_ms": [round(t, 1) for t in times["help"]],
            "python_pass_ms": [round(t, 1) for t in times["python"]],
            "python_pass_median_ms": round(base, 1),
            "bytecode": compiled,
        }
        self._set("cli_why_cold_ms", median(times["why"]), 1)
        self._set("cli_help_cold_ms", median(times["help"]), 1)
        self._set("cli_why_ratio_python", median(times["why"]) / base, 2)
        self._set("cli_help_ratio_python", median(times["help"]) / base, 2)

    # --- exports ------------------------------------------------------------------------

    def _child(self, *args: str, timeout: float, module: str = "bench.child") -> dict[str, Any]:
        """Run ``python -m MODULE ARGS`` (:mod:`bench.child` unless told); the JSON object
        it prints.

        The child is stopped if it takes longer than ``timeout`` seconds, or if it uses
        almost no CPU for :data:`STALL_SECONDS` (the PostgreSQL recorder's pipelined insert can
        hang for good, the client and the server each waiting for the other).
        """
        command = [sys.executable, "-m", module, *args]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(command, stdout=out, stderr=err)
            started = time.monotonic()
            samples: list[tuple[float, float]] = []  # (when, CPU seconds used so far)
            while proc.poll() is None:
                time.sleep(0.5)
                now = time.monotonic()
                cpu = _cpu_seconds(proc.pid)
                if cpu is not None:
                    samples.append((now, cpu))
                    samples = [s for s in samples if s[0] >= now - STALL_SECONDS]
                stalled = (
                    now - started > STALL_SECONDS
                    and len(samples) > 1
                    and samples[-1][1] - samples[0][1] < 0.05 * (samples[-1][0] - samples[0][0])
                )
                if stalled or now - started > timeout:
                    proc.kill()
                    proc.wait()
                    why = (
                        f"used almost no CPU for {STALL_SECONDS}s: it hung"
                        if stalled
                        else f"did not finish in {timeout:.0f}s"
                    )
                    raise MeasurementFailed(f"`{args[0]}` {why}")
            out.seek(0)
            err.seek(0)
            if proc.returncode != 0:
                raise MeasurementFailed(f"{args[0]} failed: {err.read().decode()[-800:]}")
            figures: dict[str, Any] = orjson.loads(out.read())
        return figures

    def _export_child(self, label: str, events: int) -> dict[str, Any]:
        """Export and verify the whole store in a child process; its figures."""
        features.export()
        out = self.target.workdir / f"export-{label}-{uuid.uuid4().hex[:6]}"
        try:
            # Generous: the export, its two baselines, the verify and its two baselines, at
            # 600 entries/s each (the slowest seen, on a machine loaded 10 times over, was
            # 1,400 for all of them together).
            figures = self._child("export", self.target.url, str(out), timeout=60 + events / 600)
        finally:
            remove_tree(out)
        figures["store_events"] = events
        self.result.details.setdefault("export", {})[label] = figures
        self.log(
            f"  export of {figures['events']:,} events: {figures['export_s']:.2f}s "
            f"(baseline {figures['export_baseline_s']:.2f}s), peak RSS "
            f"{figures['export_peak_rss_mb']:.0f} MiB; verify {figures['verify_s']:.2f}s "
            f"(baseline {figures['verify_baseline_s']:.2f}s), "
            f"{figures['verify_peak_rss_total_mb']:.0f} MiB in {figures['verify_processes']} "
            "process(es)"
        )
        return figures

    def export(self) -> None:
        """A whole-store export and its verify, in a child process (for its peak memory)."""
        runs = [self._export_child("full", self.settings.events)]
        if not runs[0]["verify_ok"]:
            raise MeasurementFailed(f"the bundle does not verify: {runs[0]['verify_failure']}")
        events = runs[0]["events"]
        self._set("export_events_per_s", events / runs[0]["export_s"], 0)
        self._set("verify_events_per_s", events / runs[0]["verify_s"], 0)
        self._set("export_peak_rss_mb", runs[0]["export_peak_rss_mb"], 1)
        self._set("export_ratio_baseline", runs[0]["export_ratio_baseline"], 2)
        self._set("verify_ratio_baseline", runs[0]["verify_ratio_baseline"], 2)
        self._set("verify_peak_rss_total_mb", runs[0]["verify_peak_rss_total_mb"], 1)

    # --- concurrency ----------------------------------------------------------------------

    def pg_writers(self) -> None:
        """PostgreSQL: 4 writer processes on different cases vs 1 (throughput ratio);
        and, to separate the library's table lock from the rest, raw psycopg writers
        with and without it."""
        settings = self.settings
        cases = open_cases(self.spec, limit=20)
        if len(cases) < 4:
            raise Skipped(f"{len(cases)} open case(s) in this ledger; the writers need 4")
        groups = [cases[w::4] for w in range(4)]
        counter = itertools.count()
        one: list[float] = []
        four: list[float] = []
        # the same commands, each append under the table lock the ledger took before
        locked: dict[int, list[float]] = {1: [], 4: []}
        cpu: dict[str, list[float]] = {}  # the writer processes' CPU ms per command
        raw: dict[tuple[bool, int], list[float]] = {}
        sync = str(self.durability.get("synchronous_commit", "on"))
        state = b"x" * 600  # about one stored entry
        with WriterPool(4) as pool:
            for rep in range(settings.writer_reps):
                start = after_horizon(2 + rep)
                for writers, rates, lock in (
                    (1, one, False),
                    (4, four, False),
                    (1, locked[1], True),
                    (4, locked[4], True),
                ):
                    tasks: list[tuple[Any, ...]] = []
                    for w in range(writers):
                        group = groups[w]
                        lines = [
                            follow_up(group[i % len(group)].ref, next(counter), start.date())
                            for i in range(settings.writer_ops + 1)
                        ]
                        tasks.append(("ledger", self.target.url, lines, start, lock))
                    rates.append(pool.run(tasks))
                    name = f"ledger_{'with_lock' if lock else 'no_lock'}_{writers}"
                    cpu.setdefault(name, []).append(pool.cpu_ms_per_op[-1])
                self.log(
                    f"  writers: 1 → {one[-1]:.0f} ops/s, 4 → {four[-1]:.0f} ops/s; "
                    f"with the old table lock 1 → {locked[1][-1]:.0f}, 4 → {locked[4][-1]:.0f}"
                )
                for lock in (False, True):
                    for writers in (1, 4):
                        self.raw.reset()
                        tasks = []
                        for _ in range(writers):  # each writer its own originator
                            oid = uuid.uuid4()
                            rows = [
                                (oid, v, "ContextRecorded", state)
                                for v in range(1, 2 * settings.writer_ops + 1)
                            ]
                            tasks.append(
                                (
                                    "raw",
                                    self.target.base_url,
                                    self.target.schema,
                                    RAW_TABLE,
                                    rows,
                                    lock,
                                    sync,
                                )
                            )
                        raw.setdefault((lock, writers), []).append(pool.run(tasks))
                        name = f"raw_{'with_lock' if lock else 'no_lock'}_{writers}"
                        cpu.setdefault(name, []).append(pool.cpu_ms_per_op[-1])
        self.raw.reset()
        diagnostics: dict[str, float] = {}
        for (lock, writers), rates in sorted(raw.items()):
            name = "with_lock" if lock else "without_lock"
            diagnostics[f"raw_{name}_{writers}_ops_per_s"] = round(median(rates), 1)
        for name in ("without_lock", "with_lock"):
            diagnostics[f"raw_{name}_4_vs_1"] = round(
                diagnostics[f"raw_{name}_4_ops_per_s"] / diagnostics[f"raw_{name}_1_ops_per_s"], 3
            )
        self.result.details["pg_writers"] = {
            "ops_per_writer": settings.writer_ops,
            "one_writer_ops_per_s": [round(r, 1) for r in one],
            "four_writers_ops_per_s": [round(r, 1) for r in four],
            "one_writer_with_table_lock_ops_per_s": [round(r, 1) for r in locked[1]],
            "four_writers_with_table_lock_ops_per_s": [round(r, 1) for r in locked[4]],
            "with_table_lock_4_vs_1": round(median(locked[4]) / median(locked[1]), 3),
            "writers_cpu_ms_per_op": cpu,
            **diagnostics,
        }
        self.log(f"  raw writers: {diagnostics}")
        self._set("pg_writers_4_vs_1", median(four) / median(one))

    # --- the plain library, for reference -------------------------------------------------

    def library_reference(self) -> None:
        """The plain ``eventsourcing`` library appending one event per command to
        aggregates of 100 events, vs the same raw baseline: the issue's reference point."""
        from .library import library_single

        figures = library_single(self.target, self.raw, self.settings)
        self.result.details["library_reference"] = figures
        for label, found in figures.items():
            self.log(f"  plain eventsourcing ({label}): single append ratio {found['ratio_raw']}")


class WriterPool:
    """Writer processes started once (``spawn``) and given one task each per run."""

    def __init__(self, size: int) -> None:
        from . import child

        ctx = multiprocessing.get_context("spawn")
        self.outbox: Any = ctx.Queue()
        self.inboxes: list[Any] = [ctx.Queue() for _ in range(size)]
        self.procs = [
            ctx.Process(target=child.worker, args=(inbox, self.outbox), daemon=True)
            for inbox in self.inboxes
        ]
        for proc in self.procs:
            proc.start()
        #: Each run's CPU time (user + sys) of its writer processes per operation, in ms.
        self.cpu_ms_per_op: list[float] = []

    def __enter__(self) -> WriterPool:
        return self

    def __exit__(self, *exc: object) -> None:
        for inbox in self.inboxes:
            inbox.put(None)
        for proc in self.procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.terminate()

    def run(self, tasks: Sequence[tuple[Any, ...]]) -> float:
        """Give the first ``len(tasks)`` workers a task each, start them together once
        all are ready, and return the total operations per second over the run."""
        for inbox, task in zip(self.inboxes, tasks, strict=False):
            inbox.put(task)
        for _ in tasks:
            self._get("ready")
        procs = self.procs[: len(tasks)]
        cpu = [_cpu_seconds(p.pid) or 0.0 for p in procs]
        for inbox in self.inboxes[: len(tasks)]:
            inbox.put("go")
        reports = [self._get(None) for _ in tasks]
        ops = sum(int(r[2]) for r in reports)
        used = sum((_cpu_seconds(p.pid) or 0.0) - c for p, c in zip(procs, cpu, strict=True))
        self.cpu_ms_per_op.append(round(1000 * used / max(ops, 1), 2))
        span = float(max(r[1] for r in reports) - min(r[0] for r in reports))
        return float(sum(r[2] for r in reports)) / span

    def _get(self, expected: str | None) -> Any:
        while True:
            try:
                message = self.outbox.get(timeout=5)
            except Exception:
                dead = [p.exitcode for p in self.procs if not p.is_alive()]
                if dead:
                    raise RuntimeError(f"a writer process exited ({dead})") from None
                continue
            if expected is not None and message != expected:
                raise RuntimeError(f"a writer reported {message!r}, not {expected!r}")
            return message


STALL_SECONDS = 30


def _cpu_seconds(pid: int) -> float | None:
    """The CPU time a process has used so far (None where there is no ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# --- the whole run ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    try:
        with open("/proc/meminfo") as f:
            total = next(line for line in f if line.startswith("MemTotal"))
        info["memory_gib"] = round(int(total.split()[1]) / 1024 / 1024, 1)
        with open("/proc/cpuinfo") as f:
            model = next((line for line in f if line.startswith("model name")), "")
        info["cpu"] = model.split(":", 1)[1].strip() if model else None
    except (OSError, StopIteration):
        pass
    for package in ("eventsourcing", "pydantic", "orjson", "psycopg"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            info[package] = None
    return info


def git_commit() -> str | None:
    """The commit measured, with ``+dirty`` when the working tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


def pg_version(url: str) -> str | None:
    """The PostgreSQL server's version."""
    import psycopg

    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else None


def run(settings: Settings, log: Log) -> dict[str, Any]:
    """Measure every figure on every chosen store; the JSON object ``--json`` prints."""
    began = time.perf_counter()
    spec = plan_ledger(settings.seed, settings.events)
    base = Path(settings.workdir) if settings.workdir else Path(tempfile.gettempdir())
    workdir = Path(tempfile.mkdtemp(prefix="caseledger-bench-", dir=base))
    results: dict[str, StoreResult | None] = {}
    skipped: dict[str, str] = {}
    info = machine()
    try:
        for kind in settings.stores:
            if kind == "postgres":
                reason = pg_reachable(settings.pg_url)
                if reason is not None:
                    skipped[kind] = reason
                    log(f"PostgreSQL skipped: {reason}")
                    continue
                info["postgres"] = pg_version(settings.pg_url)
                target = Target.postgres(settings.pg_url, workdir)
            else:
                target = Target.sqlite(workdir, "ledger")
            log(f"{kind}: {settings.events:,} events in {len(spec.cases):,} cases ({target.url})")
            try:
                results[kind] = StoreBench(settings, target, spec, log).run()
            finally:
                target.drop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return assemble(settings, spec, results, skipped, info, time.perf_counter() - began)


def assemble(
    settings: Settings,
    spec: LedgerSpec,
    results: dict[str, StoreResult | None],
    skipped: dict[str, str],
    info: dict[str, Any],
    elapsed: float,
) -> dict[str, Any]:
    """One JSON object: the issue's keys (SQLite's figures, and PostgreSQL's for the
    writers), ``reasons`` for every null, ``postgres`` with PostgreSQL's figures, ``meta``."""

    def figures_of(kind: str) -> tuple[dict[str, float | None], dict[str, str]]:
        result = results.get(kind)
        keys = [k for k in KEYS if (k in PG_ONLY) == (kind == "postgres") or kind == "postgres"]
        if result is None:
            why = skipped.get(kind, f"{kind} was not chosen (--stores)")
            return {k: None for k in keys}, {k: why for k in keys}
        figures = {k: result.figures.get(k) for k in keys}
        reasons = {k: result.reasons.get(k, "not measured") for k in keys if figures[k] is None}
        return figures, reasons

    sqlite_figures, sqlite_reasons = figures_of("sqlite")
    pg_figures, pg_reasons = figures_of("postgres")
    top: dict[str, Any] = {}
    reasons: dict[str, str] = {}
    for key in KEYS:
        source, why = (
            (pg_figures, pg_reasons)
            if key in PG_ONLY
            else (
                sqlite_figures,
                sqlite_reasons,
            )
        )
        top[key] = source.get(key)
        if key in why:
            reasons[key] = why[key]
    top["reasons"] = reasons
    top["postgres"] = {**pg_figures, "reasons": pg_reasons}
    lengths = [c.length for c in spec.cases]
    top["meta"] = {
        "machine": info,
        "commit": git_commit(),
        "store": {"top_level": "sqlite", "postgres": "postgres"},
        "sizes": {
            "size": settings.size,
            "events": settings.events,
            "cases": len(spec.cases),
            "case_length": {
                "min": min(lengths),
                "median": median(lengths),
                "max": max(lengths),
            },
            "open_cases": sum(1 for c in spec.cases if not c.closes),
            "seed": settings.seed,
        },
        "settings": asdict(settings),
        "targets": {k: f"{op} {v:g}" for k, (op, v) in TARGETS.items()},
        "durability": {
            kind: (r.details.get("durability") if r else None) for kind, r in results.items()
        },
        "details": {kind: (r.details if r else None) for kind, r in results.items()},
        "skipped": skipped,
        "elapsed_s": round(elapsed, 1),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return top


def met(key: str, value: float | None) -> bool | None:
    """Whether a figure meets its target (None when not measured)."""
    if value is None:
        return None
    op, target = TARGETS[key]
    return value >= target if op == ">=" else value <= target
