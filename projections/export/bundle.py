"""Audit export bundles that an inspector can verify without trusting us.

``export_bundle`` writes, for the whole store or some cases, optionally filtered by when
things happened (``occurred_at``) and by what the record showed at a time (``as_of``):

- ``events.jsonl``: each entry's canonical JSON (the exact bytes that were hashed, plus
  ``position`` and ``hash``), one per line, in global position order;
- ``personal.jsonl`` (only with ``include_personal_data``): values and salts;
- ``timeline.csv`` and ``report.html`` for people;
- ``VERIFY.md`` and ``verify.py`` (a standard-library-only checker) for checking by hand;
- ``checkpoint.json`` (the store's signed version 2 checkpoint) and, for a subset,
  ``proofs.jsonl`` (an RFC 9162 inclusion proof per entry against the checkpoint);
- ``manifest.json`` (every file's SHA-256 and size, each case's chain head and gaps, the
  RFC 9162 Merkle root over the entry hashes in export order, the filters, whether
  personal data is included, the generator) and ``manifest.sha256``.

The bundle's own root (what ``--expect-root`` compares) covers every file; it cannot be
written inside the bundle, so the export returns it and the verifiers recompute it.
``docs/bundle-format.md`` specifies the format exactly.

It streams: the entries go from the store to ``events.jsonl`` one at a time (the Merkle
root is built incrementally), then the report, the CSV and the personal data are written
one case at a time.  Memory grows with the number of cases (their chain heads), never
with the number of entries.  ``verify_bundle`` (in :mod:`projections.export.verify`)
checks a bundle; ``verify.py`` checks it again, independently.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import queue
import re
import shutil
import tempfile
import threading
import zipfile
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from typing import IO, Any, Final, Protocol

import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined, Template, select_autoescape

from ledger.catalogue.models import CRITERIA, LONDON, occurred_instant
from ledger.checkpoints.checkpoint import case_head_leaf, latest_checkpoint, make_checkpoint
from ledger.errors import LedgerError, UsageError
from ledger.integrity.canonical import GENESIS_HASH, canonical_json, personal_commitments
from ledger.integrity.merkle import MerkleTree, ProofTree, leaf_hash
from projections.export.personal_check import read_personal_values, scan_bytes, scan_file
from projections.export.report import (
    CRITERION_LABELS,
    FACTOR_LABELS,
    OUTCOME_LABELS,
    QM2_QUESTIONS,
    REGIME_LABELS,
    Entry,
    analyse_case,
    apply_corrections,
    build_chart,
    describe,
)
from projections.export.verify import BundleVerifyResult, verify_bundle
from projections.fold import when

__all__ = [
    "BUNDLE_FORMAT",
    "BundleVerifyResult",
    "ExportSummary",
    "StoreDoesNotVerify",
    "TimeBound",
    "export_bundle",
    "parse_moment",
    "verify_bundle",
]

BUNDLE_FORMAT: Final = "caseledger-bundle/2"
EVENTS_FILE: Final = "events.jsonl"
PERSONAL_FILE: Final = "personal.jsonl"
TIMELINE_FILE: Final = "timeline.csv"
REPORT_FILE: Final = "report.html"
VERIFY_MD: Final = "VERIFY.md"
VERIFY_PY: Final = "verify.py"
CHECKPOINT_FILE: Final = "checkpoint.json"
PROOFS_FILE: Final = "proofs.jsonl"
MANIFEST_FILE: Final = "manifest.json"
MANIFEST_SHA_FILE: Final = "manifest.sha256"

#: Up to this many cases, report.html has a full section per case (about 5 ms each);
#: beyond, it lists the cases, so a whole-store export of millions of entries stays fast.
REPORT_DETAIL_CASES: Final = 1000
#: Lines and rows are written in batches of this many.
_BATCH: Final = 2000
QUOTE: Final = '"'
QUOTES: Final = '""'
#: Up to this many named cases are read case by case and merged by position; more are
#: found by one pass over the store's global order.
MERGE_LIMIT: Final = 64
_BUFFER: Final = 1 << 20
_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")

CANONICAL_JSON_RULE: Final = (
    "object keys sorted by code point, no insignificant white space, UTF-8, strings exactly "
    "as given (no Unicode normalisation), integers only; Python's json.dumps(obj, "
    'sort_keys=True, separators=(",", ":"), ensure_ascii=False) produces it'
)
EVENT_HASH_RULE: Final = (
    "hash = SHA-256 (hex) of the canonical JSON of the entry without its hash and position "
    "fields; prev_hash = the hash of the entry with seq one less in the same case, or 64 "
    "zeros for seq 1"
)
CHAIN_RULE: Final = (
    "Every entry's own hash is checked. A chain link (prev_hash) is checked wherever the "
    "previous entry of the same case (seq - 1) is in this bundle; a case's entry 1 must have "
    "64 zeros. Where entries of a case were left out (by the case, date or as-of filters), "
    "cases.<case>.gaps lists the left-out seq ranges [first, last] before the bundle's last "
    "entry of that case; the prev_hash of the entry just after a listed gap names an entry "
    "not in the bundle and is accepted unchecked there, and only there. Any other break "
    "fails verification."
)


class StoreDoesNotVerify(LedgerError):
    """The store itself fails its hash chain while exporting (exit code 1)."""


class _Ledger(Protocol):
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


def _recorded_key(moment: datetime) -> str:
    """A time in the stored ``recorded_at`` form, so the two compare as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class _Filters:
    cases: tuple[str, ...] | None
    occurred_from: TimeBound | None
    occurred_to: TimeBound | None
    as_of: TimeBound | None

    @property
    def recorded_limit(self) -> str | None:
        return _recorded_key(self.as_of.instant) if self.as_of else None

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


# --- writing --------------------------------------------------------------------------


class _HashingFile:
    """A binary file that hashes what is written to it.

    With ``background``, a thread does the hashing and writing (both release the GIL on
    large blocks) while the caller prepares the next block; at most a few blocks wait.
    """

    def __init__(self, path: Path, background: bool = False) -> None:
        self.path = path
        self._file: IO[bytes] = open(path, "wb", buffering=_BUFFER)
        self._sha = hashlib.sha256()
        self.size = 0
        self._queue: queue.Queue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        if background:
            self._queue = queue.Queue(maxsize=4)
            self._thread = threading.Thread(target=self._drain, name=f"write-{path.name}")
            self._thread.daemon = True
            self._thread.start()

    def _drain(self) -> None:
        assert self._queue is not None
        while (data := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._file.write(data)
                    self._sha.update(data)
                except BaseException as exc:  # reported by the next write or close
                    self._error = exc

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._queue is None:
            self._file.write(data)
            self._sha.update(data)
            return
        if self._error is not None:
            raise self._error
        self._queue.put(data)

    def close(self) -> dict[str, Any]:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        self._file.close()
        if self._error is not None:
            raise self._error
        return {"path": self.path.name, "sha256": self._sha.hexdigest(), "bytes": self.size}


@dataclass(slots=True)
class _CaseState:
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


@dataclass
class ExportSummary:
    """What ``caseledger export`` reports."""

    out: Path
    events: int
    root: str
    files: list[dict[str, Any]]
    cases: dict[str, int]
    manifest_sha256: str
    personal_data: bool
    zip: bool
    generated_at: str
    events_root: str = ""
    checkpoint: bool = False
    covered: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "zip": self.zip,
            "events": self.events,
            "root": self.root,
            "events_root": self.events_root,
            "checkpoint": self.checkpoint,
            "covered": self.covered,
            "cases": self.cases,
            "personal_data": self.personal_data,
            "manifest_sha256": self.manifest_sha256,
            "generated_at": self.generated_at,
            "files": self.files,
        }

    def summary(self) -> str:
        n = len(self.cases)
        return (
            f"wrote {self.out}: {self.events} entries in {n} case{'s' if n != 1 else ''}, "
            f"bundle root {self.root}, manifest SHA-256 {self.manifest_sha256}; personal "
            f"data {'INCLUDED' if self.personal_data else 'left out'}"
        )


def generator_version() -> str:
    """The installed caseledger version."""
    try:
        return metadata.version("caseledger")
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


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


def _template(name: str) -> Template:
    return _templates().get_template(name)


def export_bundle(
    ledger: _Ledger,
    out: Path | str,
    *,
    cases: Sequence[str] | None = None,
    occurred_from: str | datetime | None = None,
    occurred_to: str | datetime | None = None,
    as_of: str | datetime | None = None,
    include_personal_data: bool = False,
    as_zip: bool | None = None,
    full_report: bool | None = None,
    progress: Callable[[int], None] | None = None,
    signing_key: Any = None,
    recorder: Any = None,
    replace: bool = False,
) -> ExportSummary:
    """Write an audit bundle to ``out`` (a new or empty folder, or a ``.zip`` file).

    With ``replace``, ``out`` may also hold an earlier caseledger bundle and nothing
    else (every file one its manifest lists): it is replaced whole once the new bundle
    is complete; a folder holding anything more is refused, so no other file is ever
    deleted.

    The bundle carries the store's latest version 2 signed checkpoint, or, given
    ``signing_key`` (an Ed25519 private key) and ``recorder``, a fresh one signed now and
    kept in the register, so that every exported entry is proven in the signed log.

    ``as_zip`` defaults to whether ``out`` ends in ``.zip``; with ``as_zip`` true and no
    ``.zip`` suffix, one is added.  ``report.html`` gives every case its full section
    (decision, reasons, chart, clocks, QM2) when the bundle holds at most
    :data:`REPORT_DETAIL_CASES` cases, else an index of the cases; ``full_report``
    forces one or the other.  The bundle appears whole or not at all: it is written
    beside ``out`` and moved into place at the end.
    """
    out = Path(out)
    if as_zip is None:
        as_zip = out.suffix.lower() == ".zip"
    if not out.name or out.name in (".", ".."):  # "/", ".": no name of its own
        if as_zip or not out.resolve().name:
            raise UsageError(
                f"{out} cannot hold a bundle: name a new folder or a .zip file", field="out_path"
            )
        out = out.resolve()
    if as_zip and out.suffix.lower() != ".zip":
        out = out.with_name(out.name + ".zip")
    filters = _Filters(
        cases=tuple(dict.fromkeys(cases)) if cases else None,
        occurred_from=(
            parse_moment(occurred_from, end_of_day=False, name="occurred_from")
            if occurred_from is not None
            else None
        ),
        occurred_to=(
            parse_moment(occurred_to, end_of_day=True, name="occurred_to")
            if occurred_to is not None
            else None
        ),
        as_of=parse_moment(as_of, end_of_day=True, name="as_of") if as_of is not None else None,
    )
    if (
        filters.occurred_from
        and filters.occurred_to
        and filters.occurred_from.instant > filters.occurred_to.instant
    ):
        raise UsageError(
            "the period starts after it ends (occurred_from is after occurred_to)",
            field="occurred_from",
            code="period-reversed",
        )
    for ref in filters.cases or ():
        if not ledger.has_case(ref):
            raise UsageError(f"there is no case {ref} in the store", field="CASE")
    if include_personal_data:
        ledger.check_personal_export()  # the user's role, and the database, allow it
    earlier = _check_destination(out, as_zip, replace)
    parent = out.resolve().parent
    try:  # the place is tried before anything is signed or written
        work = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=parent))
    except OSError as exc:
        raise UsageError(
            f"cannot write a bundle in {parent}: {exc.strerror}", field="out_path"
        ) from None
    try:
        checkpoint: dict[str, Any] | None
        if signing_key is not None:
            checkpoint = make_checkpoint(ledger, signing_key, recorder)  # type: ignore[arg-type]  # export takes the ledger by protocol
        else:
            checkpoint = latest_checkpoint(ledger)
        os.chmod(work, 0o755)  # mkdtemp's 0700 would hide the bundle from its readers
        summary = _write_bundle(
            ledger, work, filters, include_personal_data, full_report, progress, checkpoint
        )
        if as_zip:
            _zip_folder(work, out, summary.files, top=out.stem)  # replaces it atomically
            shutil.rmtree(work)
        elif earlier:
            _swap_in(work, out)
        else:
            if out.is_dir():
                out.rmdir()  # checked empty above
            os.replace(work, out)
    except OSError as exc:  # e.g. the disk filled: nothing is left behind, said plainly
        shutil.rmtree(work, ignore_errors=True)
        raise UsageError(f"cannot write the bundle {out}: {exc}", field="out_path") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    summary.out = out
    summary.zip = as_zip
    return summary


def _check_destination(out: Path, as_zip: bool, replace: bool = False) -> bool:
    """Refuse a destination that is taken (exit 2); whether it holds an earlier bundle
    that ``replace`` allows to be replaced."""
    if replace and (out.exists() or out.is_symlink()):
        why_not = _not_an_earlier_bundle(out, as_zip)
        if why_not is not None:
            raise UsageError(
                f"{out} is not an earlier caseledger bundle ({why_not}), so it is not "
                "replaced; nothing was changed: choose a new name",
                field="out_path",
                code="not-an-earlier-bundle",
                params={"out": str(out), "why_not": why_not},
            )
        return True
    if as_zip:
        if out.exists():
            raise UsageError(
                f"{out} already exists; choose a new file name, or replace an earlier bundle",
                field="out_path",
                code="bundle-file-exists",
                params={"out": str(out)},
            )
    elif out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(
            f"{out} already exists and is not an empty folder; choose a new folder, or "
            "replace an earlier bundle",
            field="out_path",
            code="bundle-folder-taken",
            params={"out": str(out)},
        )
    if not out.resolve().parent.is_dir():
        raise UsageError(f"the folder {out.resolve().parent} does not exist", field="out_path")
    return False


def _not_an_earlier_bundle(out: Path, as_zip: bool) -> str | None:
    """Why ``out`` is not a bundle this exporter wrote earlier (so not to be replaced),
    or None: a folder holding only the files of its own manifest, or a ``.zip`` holding
    only one folder with a manifest."""
    if out.is_symlink():
        return "a symbolic link"
    if as_zip:
        if not out.is_file() or not zipfile.is_zipfile(out):
            return "not a zip file"
        with zipfile.ZipFile(out) as zf:
            names = zf.namelist()
        tops = {name.split("/", 1)[0] for name in names}
        if len(tops) != 1 or f"{next(iter(tops))}/{MANIFEST_FILE}" not in names:
            return f"no single folder with a {MANIFEST_FILE}"
        return None
    if not out.is_dir():
        return "not a folder"
    try:
        manifest = orjson.loads((out / MANIFEST_FILE).read_bytes())
        listed = {str(f["path"]) for f in manifest["files"]}
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return f"it has no readable {MANIFEST_FILE}"
    listed |= {MANIFEST_FILE, MANIFEST_SHA_FILE}
    for entry in sorted(out.iterdir()):
        if entry.name not in listed or entry.is_symlink() or not entry.is_file():
            return f"it holds {entry.name}, which its manifest does not list"
    return None


def _swap_in(work: Path, out: Path) -> None:
    """Put the new bundle folder ``work`` in the place of the earlier bundle ``out``:
    the earlier one is moved aside first and deleted only once the new one is there (put
    back if the move fails)."""
    aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.replaced-", dir=work.parent))
    os.replace(out, aside / "bundle")
    try:
        os.replace(work, out)
    except OSError:
        os.replace(aside / "bundle", out)
        aside.rmdir()
        raise
    shutil.rmtree(aside)


def _source(
    ledger: _Ledger, cases: tuple[str, ...] | None
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


def _raw_states(ledger: _Ledger) -> Iterator[tuple[int, dict[str, Any], bytes]] | None:
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


PROGRESS_EVERY = 10_000
"""How often (in entries read) an export reports its progress."""


def _write_bundle(
    ledger: _Ledger,
    work: Path,
    filters: _Filters,
    include_personal: bool,
    full_report: bool | None,
    progress: Callable[[int], None] | None = None,
    checkpoint: dict[str, Any] | None = None,
) -> ExportSummary:
    states: dict[str, _CaseState] = {}
    read = 0
    tree = MerkleTree()
    limit = filters.recorded_limit
    cutoff = 0
    commitments = 0
    whole_store = filters.cases is None and not filters.narrowing
    # The signed log the bundle proves its entries against: a whole-store bundle holds
    # the log's first `size` entries, whose root the verifier recomputes; a subset
    # carries an inclusion proof per entry (proofs.jsonl) and each case's head.
    log = None if checkpoint is None or whole_store else _log_index(ledger, checkpoint)
    signed_size = int(checkpoint["events"]["size"]) if checkpoint is not None else 0
    prefix_root = tree.root() if checkpoint is not None and signed_size == 0 else None
    covered = 0
    events = _HashingFile(work / EVENTS_FILE, background=True)
    timeline = _HashingFile(work / TIMELINE_FILE, background=True)
    proofs = _HashingFile(work / PROOFS_FILE) if log is not None else None
    timeline.write(_csv_line(TIMELINE_COLUMNS).encode())
    lines: list[bytes] = []
    rows: list[str] = []
    proof_lines: list[bytes] = []
    add_leaf = tree.add
    known = filters.known
    in_window = filters.in_window
    narrowing = filters.narrowing
    # Pass 1: the entries, in global position order, straight to events.jsonl (and one
    # timeline.csv row each); per case only its chain head and gaps are kept.
    for position, record, line in _source(ledger, filters.cases):
        read += 1
        if progress is not None and read % PROGRESS_EVERY == 0:
            progress(read)
        ref = record["case"]
        seq = record["seq"]
        state = states.get(ref)
        if state is None:
            state = states[ref] = _CaseState()
        if position > cutoff:
            cutoff = position
        own = record["hash"]
        if seq != state.store_seq + 1 or record["prev_hash"] != state.store_hash:
            raise StoreDoesNotVerify(
                f"the store's chain is broken at {ref}#{seq}; run caseledger verify "
                "(nothing was exported)"
            )
        state.store_seq = seq
        state.store_hash = own
        if narrowing and not (known(record, limit) and in_window(record)):
            continue
        if seq != state.last_seq + 1:
            state.gaps.append([state.last_seq + 1, seq - 1])
        if state.count == 0:
            state.first_seq = seq
        state.count += 1
        state.last_seq = seq
        state.last_hash = own
        lines.append(line)
        add_leaf(own)
        if tree.size == signed_size and checkpoint is not None and log is None:
            prefix_root = tree.root()
        if log is not None:
            proof = log.entry_proof(ref, seq, position, own)
            covered += proof["index"] is not None
            proof_lines.append(canonical_json(proof) + b"\n")
        kind = record["type"]
        actor = str(record.get("actor", ""))
        summary = describe(record)
        # One CSV row (RFC 4180, text quoted); only free text can hold a quote.
        rows.append(
            f'"{ref}#{seq}","{ref}",{seq},{position},"{kind}","{record["occurred_at"]}",'
            f'"{record["recorded_at"]}","{_cell(actor).replace(QUOTE, QUOTES)}",'
            f'"{record.get("role", "")}","{record.get("corrects", "")}",'
            f'"{_cell(summary).replace(QUOTE, QUOTES)}","{own}"\r\n'
        )
        if len(lines) >= _BATCH:
            events.write(b"".join(lines))
            timeline.write("".join(rows).encode())
            lines.clear()
            rows.clear()
            if proofs is not None:
                proofs.write(b"".join(proof_lines))
                proof_lines.clear()
        if "personal" in record or kind == "EntryCorrected":
            found = personal_commitments(record)
            if found:
                commitments += len(found)
                state.personal_seqs.add(seq)
    events.write(b"".join(lines))
    timeline.write("".join(rows).encode())
    files = [events.close(), timeline.close()]
    if proofs is not None:
        proofs.write(b"".join(proof_lines))
        files.append(proofs.close())
    if checkpoint is not None and log is None:
        if tree.size < signed_size or prefix_root != checkpoint["events"]["root"]:
            raise StoreDoesNotVerify(
                f"the store's first {signed_size} entries no longer hash to its signed "
                "checkpoint's root; run caseledger verify (nothing was exported)"
            )
        covered = signed_size
    case_proofs: dict[str, dict[str, Any]] = {}
    if log is not None:
        # Every case of the selection is listed, even with no entry in the bundle, with
        # its head at the checkpoint (entries left out after the bundle's last one of the
        # case are a trailing gap) or the proof that it is newer than the checkpoint.
        for ref, st in states.items():
            case_proofs[ref] = log.case_proof(ref)
            at = case_proofs[ref]["at_checkpoint"]
            if at is not None and at["seq"] > st.last_seq:
                st.gaps.append([st.last_seq + 1, at["seq"]])
    # Every case of the selection is listed, even one with no entry in the bundle, so
    # that the verifier can check the selection (the filters) against the cases.
    listed = dict(sorted(states.items()))
    exported = {ref: st for ref, st in listed.items() if st.count}
    root = tree.root()
    now = ledger.clock() if callable(getattr(ledger, "clock", None)) else datetime.now(UTC)
    generated_at = _recorded_key(now)
    version = generator_version()
    # The personal values to look for in every file before the bundle says none is there.
    check = None if include_personal else read_personal_values(ledger, exported)
    statement = (
        "Personal data is included in personal.jsonl (value and salt per field); "
        "check each against its commitment."
        if check is None
        else check.statement()
    )
    # Pass 2: one case at a time, the files for people and the personal data.
    detail = full_report if full_report is not None else len(exported) <= REPORT_DETAIL_CASES
    personal_values, pass2_files = _write_case_files(
        ledger,
        work,
        filters,
        exported,
        cutoff,
        include_personal,
        now=now,
        detail=detail,
        bundle={
            "title": filters.describe().removeprefix("Exported: ").rstrip("."),
            "version": version,
            "generated_at": generated_at,
            "events": tree.size,
            "case_count": len(exported),
            "scope_text": filters.describe(),
            "personal": include_personal,
            "personal_checked": check is not None and check.made,
            "personal_statement": statement,
            "root": root,
        },
    )
    files.extend(pass2_files)
    subset = bool(filters.cases) or filters.narrowing
    checkpoint_manifest: dict[str, Any] | None = None
    if checkpoint is not None:
        data = orjson.dumps(checkpoint, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        files.append(_write_file(work / CHECKPOINT_FILE, data + b"\n"))
        checkpoint_manifest = {
            "file": CHECKPOINT_FILE,
            "version": checkpoint["version"],
            "events": checkpoint["events"],
            "cases": checkpoint.get("cases"),
            "last_position": checkpoint["last_position"],
            "signed_at": checkpoint.get("signed_at"),
            "signed_by": checkpoint.get("signed_by"),
            "public_key": checkpoint["public_key"],
            "proof": "inclusion" if log is not None else "whole",
            "proofs_file": PROOFS_FILE if log is not None else None,
            "covered": covered,
            "after": tree.size - covered,
            "rule": CHECKPOINT_RULE,
        }
    verify_md = _template("VERIFY.md.jinja").render(
        events=tree.size,
        case_count=len(exported),
        generated_at=generated_at,
        version=version,
        scope_text=filters.describe(),
        root=root,
        subset=subset or any(st.gaps or st.first_seq != 1 for st in exported.values()),
        personal=include_personal,
        personal_checked=check is not None and check.made,
        personal_statement=statement,
        checkpoint=checkpoint_manifest,
    )
    files.append(_write_file(work / VERIFY_MD, verify_md.encode("utf-8")))
    checker = resources.files("projections").joinpath("data", "verify.py").read_bytes()
    files.append(_write_file(work / VERIFY_PY, checker))
    order = [
        EVENTS_FILE,
        PROOFS_FILE,
        PERSONAL_FILE,
        TIMELINE_FILE,
        REPORT_FILE,
        CHECKPOINT_FILE,
        VERIFY_MD,
        VERIFY_PY,
    ]
    files.sort(key=lambda f: order.index(f["path"]))
    if check is not None:
        for written in files:
            scan_file(check, work / written["path"])
    cases_manifest: dict[str, Any] = {}
    for ref, st in listed.items():
        cases_manifest[ref] = st.manifest()
        if ref in case_proofs:
            cases_manifest[ref].update(case_proofs[ref])
    manifest = {
        "format": BUNDLE_FORMAT,
        "generator": {"name": "caseledger", "version": version},
        "generated_at": generated_at,
        "filters": filters.as_dict(),
        "subset": subset,
        "report": "a section per case" if detail else "an index of the cases",
        "personal_data": {
            "included": include_personal,
            "file": PERSONAL_FILE if include_personal else None,
            "values": personal_values,
            "commitments": commitments,
            "commitment_rule": (
                "SHA-256(salt || canonical JSON of the value), hex, in the entry's personal "
                "object (or changes.personal of an EntryCorrected); salt is 16 random bytes"
            ),
            "checked": None if check is None else check.made,
            "statement": statement,
        },
        "canonical_json": CANONICAL_JSON_RULE,
        "event_hash": EVENT_HASH_RULE,
        "events": {
            "file": EVENTS_FILE,
            "count": tree.size,
            "order": "global position order (position strictly increasing)",
        },
        "merkle": {
            "algorithm": "RFC 9162 section 2.1.1 Merkle Tree Hash, SHA-256",
            "leaf": "SHA-256(0x00 || the 32 bytes of the entry's hash)",
            "node": "SHA-256(0x01 || left || right)",
            "order": "events.jsonl line order",
            "empty": "SHA-256 of the empty string",
            "size": tree.size,
            "root": root,
        },
        "bundle_root": BUNDLE_ROOT_RULE,
        "chain": CHAIN_RULE,
        "checkpoint": checkpoint_manifest,
        "cases": cases_manifest,
        "files": files,
        "manifest_hash": (
            "manifest.json cannot list its own hash: its SHA-256 is in manifest.sha256 "
            "(sha256sum format)"
        ),
    }
    manifest_bytes = orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
    if check is not None:
        scan_bytes(check, MANIFEST_FILE, manifest_bytes)
    (work / MANIFEST_FILE).write_bytes(manifest_bytes)
    manifest_sha = hashlib.sha256(manifest_bytes).hexdigest()
    seal = f"{manifest_sha}  {MANIFEST_FILE}\n".encode()
    (work / MANIFEST_SHA_FILE).write_bytes(seal)
    digests = {f["path"]: f["sha256"] for f in files}
    digests[MANIFEST_FILE] = manifest_sha
    digests[MANIFEST_SHA_FILE] = hashlib.sha256(seal).hexdigest()
    return ExportSummary(
        out=work,
        events=tree.size,
        root=bundle_root(digests),
        events_root=root,
        files=files,
        cases={ref: st.count for ref, st in exported.items()},
        manifest_sha256=manifest_sha,
        personal_data=include_personal,
        zip=False,
        generated_at=generated_at,
        checkpoint=checkpoint is not None,
        covered=covered,
    )


BUNDLE_ROOT_RULE: Final = (
    "The bundle root covers every file of the bundle (this manifest and manifest.sha256 "
    "included), so it is not written in any of them: the RFC 9162 Merkle root over one "
    'leaf per file, in code point order of the file names, leaf bytes = canonical JSON {"path": '
    'NAME, "sha256": HEX} of the file. caseledger export prints it; the verifiers '
    "recompute it and compare it with --expect-root."
)
CHECKPOINT_RULE: Final = (
    "checkpoint.json is the store's signed version 2 checkpoint (Ed25519 over the "
    "canonical JSON of every key but signature). With proof 'whole' the bundle is the "
    "whole store in global order and its first events.size entries must hash to "
    "events.root. With proof 'inclusion', proofs.jsonl holds one line per line of "
    'events.jsonl: {"index": I, "proof": [...]}, the RFC 9162 audit path of the entry at '
    'leaf I (its ordinal in the store\'s global order) of the events tree, or {"index": '
    "null} for an entry recorded after the checkpoint; and each case lists at_checkpoint "
    "(its head when the checkpoint was signed, proven in the cases tree) or "
    "absent_at_checkpoint (the neighbouring leaves that prove it was not in the tree). "
    "docs/bundle-format.md gives every rule."
)


def bundle_root(digests: dict[str, str]) -> str:
    """The bundle root: RFC 9162 over ``{"path", "sha256"}`` of every file, by name."""
    tree = MerkleTree()
    for name in sorted(digests):
        tree.add_bytes(canonical_json({"path": name, "sha256": digests[name]}))
    return tree.root()


class _LogIndex:
    """The store's log up to a checkpoint, for a subset bundle's proofs: the positions
    and the tree of its first ``size`` entries and every case's head at that point."""

    def __init__(self, ledger: _Ledger, checkpoint: dict[str, Any]) -> None:
        size = int(checkpoint["events"]["size"])
        self.last_position = int(checkpoint["last_position"])
        self.positions: array[int] = array("q")
        leaves: list[bytes] = []
        heads: dict[str, tuple[int, str]] = {}
        if size:
            for record in ledger.iter_records(0):
                self.positions.append(record["position"])
                leaves.append(bytes.fromhex(record["hash"]))
                heads[record["case"]] = (record["seq"], record["hash"])
                if len(leaves) == size:
                    break
        self.tree = ProofTree(leaves)
        if self.tree.size != size or self.tree.root() != checkpoint["events"]["root"]:
            raise StoreDoesNotVerify(
                f"the store's first {size} entries no longer hash to its signed checkpoint's "
                "root; run caseledger verify (nothing was exported)"
            )
        self.heads = heads
        self.refs: list[str] | None = None
        self.cases: ProofTree | None = None
        declared = checkpoint.get("cases")
        if isinstance(declared, dict):
            self.refs = sorted(heads)
            self.cases = ProofTree(case_head_leaf(r, *heads[r]) for r in self.refs)
            if self.cases.size != declared.get("size") or self.cases.root() != declared.get("root"):
                raise StoreDoesNotVerify(
                    "the store's case heads at its signed checkpoint no longer hash to the "
                    "checkpoint's cases root; run caseledger verify (nothing was exported)"
                )

    def entry_proof(self, ref: str, seq: int, position: int, own: str) -> dict[str, Any]:
        """An entry's line of proofs.jsonl."""
        if position > self.last_position:
            return {"index": None}
        index = bisect_left(self.positions, position)
        if (
            index >= self.tree.size
            or self.positions[index] != position
            or self.tree.leaf_hash(index) != leaf_hash(bytes.fromhex(own))
        ):
            raise StoreDoesNotVerify(
                f"{ref}#{seq} is not the entry the store's signed checkpoint holds at its "
                "place; run caseledger verify (nothing was exported)"
            )
        return {"index": index, "proof": self.tree.path(index)}

    def _leaf(self, index: int) -> dict[str, Any]:
        assert self.refs is not None and self.cases is not None
        ref = self.refs[index]
        seq, head = self.heads[ref]
        return {
            "case": ref,
            "seq": seq,
            "hash": head,
            "index": index,
            "proof": self.cases.path(index),
        }

    def case_proof(self, ref: str) -> dict[str, Any]:
        """A case's head at the checkpoint, or the neighbours proving it had none."""
        if self.refs is None:
            return {"at_checkpoint": None, "absent_at_checkpoint": None}
        index = bisect_left(self.refs, ref)
        if index < len(self.refs) and self.refs[index] == ref:
            leaf = self._leaf(index)
            del leaf["case"]
            return {"at_checkpoint": leaf, "absent_at_checkpoint": None}
        return {
            "at_checkpoint": None,
            "absent_at_checkpoint": {
                "left": self._leaf(index - 1) if index > 0 else None,
                "right": self._leaf(index) if index < len(self.refs) else None,
            },
        }


def _log_index(ledger: _Ledger, checkpoint: dict[str, Any]) -> _LogIndex:
    return _LogIndex(ledger, checkpoint)


def _write_file(path: Path, data: bytes) -> dict[str, Any]:
    path.write_bytes(data)
    return {"path": path.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


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


def _csv_line(values: Sequence[Any]) -> str:
    return ",".join(_csv_field(v) for v in values) + "\r\n"


def _csv_field(value: Any) -> str:
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace('"', '""') + '"'


def _cell(value: str) -> str:
    """Spreadsheet-safe text: a cell that would start a formula begins with ``'``."""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _write_case_files(
    ledger: _Ledger,
    work: Path,
    filters: _Filters,
    exported: dict[str, _CaseState],
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
    report = _HashingFile(work / REPORT_FILE)
    personal = _HashingFile(work / PERSONAL_FILE) if include_personal else None
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
        _template("report_head.html")
        .render(bundle={**bundle, "toc": toc, "detail": detail})
        .encode()
    )
    case_template = _template("report_case.html")
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
        context = _case_context(ref, records, entries, chosen, analysis, personal_rows, filters)
        report.write(case_template.render(c=context).encode("utf-8"))
    report.write(_template("report_foot.html").render(bundle=bundle).encode("utf-8"))
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
    filters: _Filters,
) -> dict[str, Any]:
    """Everything ``report_case.html`` shows for one case."""
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
        "chart": build_chart(ordered, analysis.clocks),
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


def _zip_folder(work: Path, out: Path, files: Iterable[dict[str, Any]], top: str) -> None:
    """Stream the bundle's files into a zip archive under one top-level folder."""
    names = [f["path"] for f in files] + [MANIFEST_FILE, MANIFEST_SHA_FILE]
    partial = out.with_name(f".{out.name}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name in names:
            info = zipfile.ZipInfo(f"{top}/{name}", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(work / name, "rb") as src, zf.open(info, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, _BUFFER)
    os.replace(partial, out)
