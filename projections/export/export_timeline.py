"""The export's ``timeline.csv`` rows and the personal-data screen of its entries, made
beside its pass over the store: in the same process for a small store, and for a large
one in a second process fed the batches of ``events.jsonl`` lines as they are written.

Why a second process: the pass's Python per entry (each row's ``describe`` text, the
screen of each line for its case's personal values) is most of an export's time, and
the reading of the store cannot share a core with it in one process (the GIL).  With
two cores the store is read, checked and written in one process while the other makes
the rows and the screen, so the wall clock of the pass is nearly halved.  Both do the
same work on the same lines: the bundle is byte for byte the same either way, and the
same first refusal is raised (:class:`~projections.export.personal_check.EntryScreen`).

The second process is forked (it inherits the code already imported; it never touches
the store: the parent reads each case's personal values and sends them with the first
batch holding the case) and is fed through a pipe by a thread, so that the parent
waits only when a few batches are queued.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

import orjson

from ledger.errors import StoreUnavailable
from projections.export.export_cases import QUOTE, QUOTES, TIMELINE_COLUMNS, csv_line, text_cell
from projections.export.export_files import HashingFile
from projections.export.personal_check import (
    EntryScreen,
    PersonalCheck,
    PersonalDataInBundle,
    add_everywhere,
    read_personal_values,
    refuse_entry,
    refuse_in_file,
    scan_file,
    split_point,
)
from projections.export.report import describe

PIPELINE_ABOVE = 20_000
"""A store of more entries than this is exported with the rows and the screen in a
second process (fewer: starting it would cost more than it saves)."""

#: Batches queued for the second process before the export waits for it.
_QUEUED: Final = 4


def timeline_rows(records: Iterable[dict[str, Any]]) -> str:
    """The ``timeline.csv`` rows of the entries (RFC 4180, text quoted; only free text
    can hold a quote), one a line."""
    rows = []
    for record in records:
        ref = record["case"]
        actor = str(record.get("actor", ""))
        summary = describe(record)
        rows.append(
            f'"{ref}#{record["seq"]}","{ref}",{record["seq"]},{record["position"]},'
            f'"{record["type"]}","{record["occurred_at"]}",'
            f'"{record["recorded_at"]}","{text_cell(actor).replace(QUOTE, QUOTES)}",'
            f'"{record.get("role", "")}","{record.get("corrects", "")}",'
            f'"{text_cell(summary).replace(QUOTE, QUOTES)}","{record["hash"]}"\r\n'
        )
    return "".join(rows)


class EntryRows:
    """The rows and the screen made in this process, batch by batch."""

    def __init__(self, path: Path, screen: EntryScreen | None) -> None:
        self._timeline = HashingFile(path, background=True)
        self._timeline.write(csv_line(TIMELINE_COLUMNS).encode())
        self._screen = screen

    def add(
        self, first_line: int, joined: bytes, lines: Sequence[bytes], records: list[dict[str, Any]]
    ) -> None:
        """A batch: ``lines`` (``joined`` together) are lines ``first_line`` on of
        ``events.jsonl``, decoded as ``records``."""
        self._timeline.write(timeline_rows(records).encode())
        if self._screen is not None:
            self._screen.screen(first_line, [r["case"] for r in records], lines, records)

    def close(self) -> dict[str, Any]:
        """``timeline.csv`` written: its manifest record."""
        return self._timeline.close()

    def abort(self) -> None:
        """The export failed: stop (the caller removes the files)."""
        if not self._timeline.closed:
            self._timeline.close()

    @property
    def complete(self) -> bool:
        """Whether every entry was screened as it was written."""
        return self._screen is not None and self._screen.complete

    def first_refusal(self) -> tuple[int, str] | None:
        """The first line found holding a value of its case, and what the refusal says."""
        return None if self._screen is None else self._screen.first

    def finish(self, refs: Iterable[str]) -> PersonalCheck:
        """The whole personal-data check of the exported cases (see EntryScreen.finish)."""
        assert self._screen is not None
        return self._screen.finish(refs)

    def raise_first(self, check: PersonalCheck) -> None:
        """Refuse the bundle for the first line holding a value of its case, if any."""
        refuse_entry(check, self.first_refusal())

    def start_timeline_scan(self, check: PersonalCheck, refs: Sequence[str]) -> None:
        """Made by :meth:`scan_timeline` in this process."""

    def scan_timeline(self, check: PersonalCheck) -> None:
        """Fail if ``timeline.csv`` holds a personal value (:func:`scan_file`)."""
        scan_file(check, self._timeline.path)

    def end(self) -> None:
        """Nothing is left running."""


class _Row(NamedTuple):
    field: str
    value: bytes


class _SentValues:
    """The personal values the parent read and sent, as the second process's screen
    reads them (``personal_data``); a case the parent could not read raises as it did."""

    def __init__(self) -> None:
        self.sent: dict[str, list[tuple[str, bytes]] | str] = {}

    def personal_data(self, ref: str) -> list[_Row]:
        values = self.sent.get(ref, "the case's values were not sent")
        if isinstance(values, str):
            raise StoreUnavailable(values)
        return [_Row(name, value) for name, value in values]

    def opened(self, ref: str) -> list[tuple[str, Any]]:
        """``(field, value)`` of a case's values, as the export reads them."""
        return [(row.field, orjson.loads(row.value)) for row in self.personal_data(ref)]


def _second_process(conn: Any, path: str, screening: bool) -> None:
    """The second process: decode each batch of lines, write the rows, screen the lines;
    at the end send back ``timeline.csv``'s record and the screen's outcome (or the
    error that stopped it)."""
    values = _SentValues()
    result: tuple[Any, ...]
    try:
        rows = EntryRows(Path(path), EntryScreen(values) if screening else None)
        loads = orjson.loads
        while (batch := conn.recv()) is not None:
            first_line, sent, joined = batch
            values.sent.update(sent)
            lines = [line + b"\n" for line in joined.split(b"\n")[:-1]]
            rows.add(first_line, joined, lines, [loads(line) for line in lines])
        result = ("done", rows.close(), rows.complete, rows.first_refusal())
    except BaseException as exc:  # sent back and raised by the export
        result = ("error", exc)
    _send(conn, result)
    # Then, if asked, the scan of timeline.csv's first half for every exported case's
    # values (the same check as the export's, from the same values).
    while result[0] == "done" and (ask := conn.recv()) is not None:
        _, refs, end = ask
        try:
            check = PersonalCheck()
            for ref in refs:
                add_everywhere(check, ref, values.opened(ref))
            scan_file(check, Path(path), end=end)
            result = ("done", None)
        except PersonalDataInBundle as exc:
            result = ("done", exc.params["where"])
        except BaseException as exc:  # sent back and raised by the export
            result = ("error", exc)
        _send(conn, result)
    conn.close()


def _send(conn: Any, result: tuple[Any, ...]) -> None:
    try:
        conn.send(result)
    except Exception as exc:  # e.g. the error would not pickle: sent as its text
        conn.send(("error", RuntimeError(f"the export's second process failed: {exc!r}")))


class PipedEntryRows:
    """:class:`EntryRows` in a second process, fed by a thread through a pipe."""

    def __init__(self, ledger: Any, path: Path, screening: bool) -> None:
        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_second_process, args=(child, str(path), screening), daemon=True
        )
        self._process.start()
        child.close()
        self._ledger = ledger
        self._screening = screening
        self._values: dict[str, list[tuple[str, Any]]] = {}
        self._unreadable = False
        self._complete = False
        self._first: tuple[int, str] | None = None
        self._path = path
        self._split: int | None = None
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=_QUEUED)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._feed, name="export-rows", daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        while (batch := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._conn.send(batch)
                except BaseException as exc:  # the process is gone: said at close
                    self._error = exc

    def add(
        self, first_line: int, joined: bytes, lines: Sequence[bytes], records: list[dict[str, Any]]
    ) -> None:
        """As :meth:`EntryRows.add`; the lines go to the second process, with the
        personal values of each case first seen in the batch."""
        sent: dict[str, list[tuple[str, bytes]] | str] = {}
        if self._screening and not self._unreadable:
            values = self._values
            for record in records:
                ref = record["case"]
                if ref in values or ref in sent:
                    continue
                try:
                    rows = self._ledger.personal_data(ref)
                except StoreUnavailable as exc:  # as EntryScreen: checked afterwards
                    sent[ref] = str(exc)
                    self._unreadable = True
                    break
                sent[ref] = [(row.field, row.value) for row in rows]
                values[ref] = [(row.field, orjson.loads(row.value)) for row in rows]
        if self._error is not None:  # the second process stopped: say why
            self._queue.put(None)
            self._thread.join()
            self._result()
        self._queue.put((first_line, sent, joined))

    def close(self) -> dict[str, Any]:
        """Wait for the second process: ``timeline.csv``'s record (or its error)."""
        self._queue.put(None)
        self._thread.join()
        if self._error is None:
            try:
                self._conn.send(None)
            except OSError:
                pass  # it stopped early: its result (an error) is waiting
        _, timeline, self._complete, self._first = self._result()
        return dict(timeline)

    def _result(self) -> tuple[Any, ...]:
        """The second process's result once its batches are sent: raise its error."""
        try:
            result: tuple[Any, ...] = self._conn.recv()
        except Exception as exc:  # it died, or its result would not unpickle
            self.abort()
            raise RuntimeError(
                f"the export's second process ended without its result ({exc!r}; exit "
                f"code {self._process.exitcode})"
            ) from None
        if result[0] == "error":
            self.end()
            raise result[1]
        return result

    def start_timeline_scan(self, check: PersonalCheck, refs: Sequence[str]) -> None:
        """Have the second process scan the first half of ``timeline.csv`` for the
        values of the exported cases ``refs`` (the check's), if it holds them all."""
        if check.made and check.values and all(ref in self._values for ref in refs):
            self._split = split_point(self._path)
            self._conn.send(("scan", list(refs), self._split))

    def scan_timeline(self, check: PersonalCheck) -> None:
        """:meth:`EntryRows.scan_timeline`: the second half here, the first there; the
        first half's refusal first."""
        if self._split is None:
            scan_file(check, self._path)
            return
        mine: PersonalDataInBundle | None = None
        try:
            scan_file(check, self._path, start=self._split)
        except PersonalDataInBundle as exc:
            mine = exc
        _, where = self._result()
        self._split = None
        if where is not None:
            refuse_in_file(where)
        if mine is not None:
            raise mine

    def end(self) -> None:
        """Let the second process end (it waits for a request or the end)."""
        if self._process.is_alive():
            try:
                self._conn.send(None)
            except OSError:
                pass  # it has ended
            self._process.join(timeout=10)
        self.abort()

    def abort(self) -> None:
        """The export failed: end the second process (the caller removes the files)."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        if self._thread.is_alive():  # its sends fail on the ended process's pipe
            self._queue.put(None)
            self._thread.join()
        if not self._conn.closed:
            self._conn.close()

    @property
    def complete(self) -> bool:
        return self._screening and self._complete and not self._unreadable

    def first_refusal(self) -> tuple[int, str] | None:
        return self._first

    def finish(self, refs: Iterable[str]) -> PersonalCheck:
        """As :meth:`EntryScreen.finish`, from the values this process read."""
        if not self.complete:
            return read_personal_values(self._ledger, refs)
        check = PersonalCheck()
        for ref in refs:
            values = self._values.get(ref)
            if values is None:  # not one of the entries' cases (not expected)
                try:
                    values = self._values[ref] = [
                        (row.field, orjson.loads(row.value))
                        for row in self._ledger.personal_data(ref)
                    ]
                except StoreUnavailable as exc:
                    return PersonalCheck(unreadable=str(exc).rstrip("."))
            add_everywhere(check, ref, values)
        return check

    def raise_first(self, check: PersonalCheck) -> None:
        refuse_entry(check, self._first)


def entry_rows(
    ledger: Any, path: Path, *, screening: bool, stored: int
) -> EntryRows | PipedEntryRows:
    """The rows and screen of an export of a store of ``stored`` entries: in a second
    process above :data:`PIPELINE_ABOVE` on Linux with two cores or more (where a
    process is forked safely beside threads: not macOS, whose system libraries may not
    be), else in this one."""
    if (
        stored > PIPELINE_ABOVE
        and (os.cpu_count() or 1) > 1
        and sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
    ):
        return PipedEntryRows(ledger, path, screening)
    return EntryRows(path, EntryScreen(ledger) if screening else None)
