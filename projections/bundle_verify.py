"""``caseledger verify BUNDLE``: check an export bundle (a folder or a ``.zip``).

This is the tool's own checker.  ``projections/data/verify.py`` (copied into every bundle)
is a second implementation of the same checks with the standard library only, so an
inspector need not trust this one; the tests run both on the same bundles, tampered and
not, and require the same verdict and the same first failure.

The checks run in a fixed order and stop at the first failure, which is named by the
file (``report.html``), the line (``events.jsonl line 7``), the entry (``CASE#seq``), the
case, or the personal value (``CASE#1 personal.name``):

1. ``manifest.sha256`` holds the SHA-256 of ``manifest.json``; the manifest is well formed.
2. Every file the manifest lists is present, and no other file is.
3. Every listed file other than ``events.jsonl`` has the listed SHA-256 and size.
4. ``events.jsonl`` streams line by line: canonical JSON, integers only, each entry's hash,
   positions increasing, each chain link (accepted unchecked only at a listed gap).
5. ``events.jsonl``'s own SHA-256, size and entry count.
6. The RFC 9162 Merkle root.
7. Each case's chain head, entry count and gaps.
8. With a signed checkpoint, its Ed25519 signature and, for a whole-store bundle, the
   Merkle root of the first ``count`` entries against the checkpoint's root.
9. With personal data included, each value against its commitment.

Memory stays flat: one line at a time, plus one head per case and the personal-data
commitments (a few per case).
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import orjson

from ledger.canonical import GENESIS_HASH, personal_commitments

from .merkle import MerkleTree

__all__ = ["BundleFailure", "BundleVerifyResult", "verify_bundle"]

FORMAT: Final = "caseledger-bundle/1"
MANIFEST: Final = "manifest.json"
MANIFEST_SHA: Final = "manifest.sha256"
EVENTS: Final = "events.jsonl"
PERSONAL: Final = "personal.jsonl"
CHECKPOINT: Final = "checkpoint.json"
_REGISTER_FIELDS: Final = frozenset(
    {"type", "seq", "recorded_at", "actor", "role", "prev_hash", "hash", "ref"}
)
_HEX64: Final = re.compile(r"^[0-9a-f]{64}$")
_HEX32: Final = re.compile(r"^[0-9a-f]{32}$")
_CHUNK: Final = 1 << 20
#: Bundles whose events.jsonl is at least this big are checked by worker processes, in
#: ranges of about _PARALLEL_CHUNK bytes.
PARALLEL_FROM_BYTES: Final = 64 << 20
_PARALLEL_CHUNK: Final = 8 << 20
_SORT: Final = orjson.OPT_SORT_KEYS
_HEX_DIGITS: Final = "0123456789abcdef"
#: What reading a damaged file or zip member can raise.
_READ_ERRORS: Final = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)


class BundleFailure(Exception):
    """The first check that failed: ``where`` (file, line, entry or case) and why."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


@dataclass
class BundleVerifyResult:
    """What ``caseledger verify BUNDLE`` reports (``cli.md``: ok, events, first_bad)."""

    bundle: str
    ok: bool
    events: int
    cases: int
    first_bad: str | None
    failure: str | None
    root: str | None
    manifest_sha256: str | None
    personal_data: bool | None
    checkpoint: bool | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "events": self.events,
            "cases": self.cases,
            "first_bad": self.first_bad,
            "failure": self.failure,
            "root": self.root,
            "manifest_sha256": self.manifest_sha256,
            "personal_data": self.personal_data,
            "checkpoint": self.checkpoint,
            "bundle": self.bundle,
        }

    def summary(self) -> str:
        if self.ok:
            personal = "; every personal value matches its commitment" if self.personal_data else ""
            cases = f"{self.cases} case{'' if self.cases == 1 else 's'}"
            return (
                f"bundle {self.bundle}: {self.events} entries in {cases}; every "
                f"file hash, entry hash and chain link, and the Merkle root {self.root} "
                f"hold{personal}"
            )
        return f"bundle {self.bundle} DOES NOT VERIFY at {self.first_bad}: {self.failure}"


# --- JSON, strictly ----------------------------------------------------------------------


class _NotInteger(ValueError):
    pass


def _reject_number(text: str) -> Any:
    raise _NotInteger(text)


def _strict_loads(data: bytes) -> Any:
    """The standard library's reading, with every non-integer number refused."""
    return json.loads(data, parse_float=_reject_number, parse_constant=_reject_number)


def _std_canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _canonical(value: Any) -> bytes:
    """Canonical JSON; orjson when it can (it refuses integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, option=_SORT)
    except orjson.JSONEncodeError:
        return _std_canonical(value)


_SCALARS: Final = frozenset({str, int, bool, type(None)})


def _has_float(value: Any) -> bool:
    """Whether a number that is not an integer is inside (orjson also reads integers
    beyond 64 bits as floats)."""
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is float:
            return True
        if (kind is dict or kind is list) and _has_float(item):
            return True
    return False


def _load_line(line: bytes, file: str, number: int) -> tuple[Any, bool]:
    """One JSON line, integers only, and whether orjson read it exactly.

    orjson reads integers beyond 64 bits as floats and refuses lone surrogates, so such
    lines are read again by the standard library, as ``verify.py`` reads them."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    else:
        kind = type(value)
        if kind is float or ((kind is dict or kind is list) and _has_float(value)):
            pass
        else:
            return value, True
    try:
        value = _strict_loads(line)
    except _NotInteger:
        raise BundleFailure(
            f"{file} line {number}", "holds a number that is not an integer"
        ) from None
    except ValueError:
        raise BundleFailure(f"{file} line {number}", "is not valid JSON") from None
    return value, False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --- the bundle's files -------------------------------------------------------------------


class _Source:
    """A bundle's files, from a folder or a zip archive (under at most one top folder)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._prefix = ""
        if path.is_dir():
            self._names = sorted(
                p.relative_to(path).as_posix()
                for p in path.rglob("*")
                if p.is_file() or p.is_symlink()
            )
        elif path.is_file() and zipfile.is_zipfile(path):
            try:
                self._zip = zipfile.ZipFile(path)
                names = [n for n in self._zip.namelist() if not n.endswith("/")]
            except Exception as exc:  # any damage to the archive's directory
                raise BundleFailure(path.name, f"the zip file cannot be read ({exc})") from None
            if MANIFEST not in names:
                tops = {n.split("/", 1)[0] for n in names if "/" in n}
                if len(tops) == 1 and f"{next(iter(tops))}/{MANIFEST}" in names:
                    self._prefix = next(iter(tops)) + "/"
            inside = sorted(n[len(self._prefix) :] for n in names if n.startswith(self._prefix))
            self._names = inside + sorted(n for n in names if not n.startswith(self._prefix))
        else:
            raise BundleFailure(str(path), "not a bundle folder or .zip file")

    def names(self) -> list[str]:
        return list(self._names)

    def folder_path(self, name: str) -> Path | None:
        """The file's path when the bundle is a folder (``None`` for a zip)."""
        return self.path / name if self._zip is None else None

    def exists(self, name: str) -> bool:
        if self._zip is None:
            return (self.path / name).is_file()
        return name in self._names

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        try:
            stream: IO[bytes] = (
                open(self.path / name, "rb")
                if self._zip is None
                else self._zip.open(self._prefix + name)
            )
        except _READ_ERRORS as exc:
            raise BundleFailure(name, f"cannot be read ({exc})") from None
        with stream:
            yield stream

    def read(self, name: str) -> bytes:
        try:
            with self.open(name) as stream:
                return stream.read()
        except _READ_ERRORS as exc:
            raise BundleFailure(name, f"cannot be read ({exc})") from None

    def digest(self, name: str) -> tuple[str, int]:
        sha = hashlib.sha256()
        size = 0
        try:
            with self.open(name) as stream:
                while block := stream.read(_CHUNK):
                    sha.update(block)
                    size += len(block)
        except _READ_ERRORS as exc:
            raise BundleFailure(name, f"cannot be read ({exc})") from None
        return sha.hexdigest(), size

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


# --- the checks ---------------------------------------------------------------------------


def _manifest(source: _Source) -> tuple[dict[str, Any], str]:
    if not source.exists(MANIFEST_SHA):
        raise BundleFailure(MANIFEST_SHA, "missing: it should hold the SHA-256 of manifest.json")
    parts = source.read(MANIFEST_SHA).decode("utf-8", "replace").split()
    if len(parts) != 2 or not _HEX64.match(parts[0]) or parts[1].lstrip("*") != MANIFEST:
        raise BundleFailure(MANIFEST_SHA, "is not one line '<sha256>  manifest.json'")
    if not source.exists(MANIFEST):
        raise BundleFailure(MANIFEST, "missing")
    data = source.read(MANIFEST)
    actual = hashlib.sha256(data).hexdigest()
    if actual != parts[0]:
        raise BundleFailure(MANIFEST, f"SHA-256 is {actual}, manifest.sha256 says {parts[0]}")
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise BundleFailure(MANIFEST, f"is not valid JSON ({exc})") from None
    problem = _manifest_problem(manifest)
    if problem:
        raise BundleFailure(MANIFEST, problem)
    return manifest, actual


def _manifest_problem(m: Any) -> str | None:
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        return f"is not a {FORMAT} manifest"
    files = m.get("files")
    if not isinstance(files, list) or not all(
        isinstance(f, dict)
        and isinstance(f.get("path"), str)
        and isinstance(f.get("sha256"), str)
        and _HEX64.match(f["sha256"])
        and _is_int(f.get("bytes"))
        for f in files
    ):
        return "files must be a list of {path, sha256, bytes}"
    paths = [f["path"] for f in files]
    if len(set(paths)) != len(paths) or EVENTS not in paths:
        return "files must list events.jsonl, each file once"
    if MANIFEST in paths or MANIFEST_SHA in paths:
        return "files must not list manifest.json or manifest.sha256"
    events = m.get("events")
    if not isinstance(events, dict) or not _is_int(events.get("count")):
        return "events.count is missing"
    merkle = m.get("merkle")
    if not isinstance(merkle, dict) or not (
        isinstance(merkle.get("root"), str) and _HEX64.match(merkle["root"])
    ):
        return "merkle.root is missing"
    personal = m.get("personal_data")
    if not isinstance(personal, dict) or not isinstance(personal.get("included"), bool):
        return "personal_data.included is missing"
    if personal["included"] != (PERSONAL in paths):
        return "personal_data.included does not match whether personal.jsonl is listed"
    if personal["included"] and not _is_int(personal.get("values")):
        return "personal_data.values is missing"
    checkpoint = m.get("checkpoint")
    if checkpoint is not None and not (
        isinstance(checkpoint, dict)
        and checkpoint.get("file") == CHECKPOINT
        and _is_int(checkpoint.get("count"))
        and isinstance(checkpoint.get("root"), str)
        and isinstance(checkpoint.get("applies"), bool)
    ):
        return "checkpoint must be null or {file, count, root, applies}"
    if (checkpoint is not None) != (CHECKPOINT in paths):
        return "checkpoint does not match whether checkpoint.json is listed"
    cases = m.get("cases")
    if not isinstance(cases, dict):
        return "cases is missing"
    for ref, case in cases.items():
        if not isinstance(case, dict):
            return f"cases.{ref} is not an object"
        head = case.get("head")
        if not (
            isinstance(head, dict)
            and _is_int(head.get("seq"))
            and isinstance(head.get("hash"), str)
            and _is_int(case.get("events"))
        ):
            return f"cases.{ref} needs events and head {{seq, hash}}"
        gaps = case.get("gaps")
        if not isinstance(gaps, list) or not all(
            isinstance(g, list) and len(g) == 2 and _is_int(g[0]) and _is_int(g[1]) for g in gaps
        ):
            return f"cases.{ref}.gaps must be a list of [first, last] pairs"
    return None


@dataclass(slots=True)
class _Head:
    seq: int = 0
    hash: str = GENESIS_HASH
    count: int = 0
    gap_index: int = 0


@dataclass
class _EventsPass:
    sha256: str
    size: int
    root: str
    heads: dict[str, _Head]
    commitments: dict[tuple[str, int, str], Any]
    prefix_root: str | None


class _Counter:
    events = 0


class _LineReader:
    """The lines of a stream without their newlines, read in large blocks; ``None`` for
    a last line that has no newline.  Hashes and counts every byte as it goes."""

    def __init__(self, stream: IO[bytes], name: str) -> None:
        self._stream = stream
        self._name = name
        self.sha = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes | None]:
        tail = b""
        while True:
            try:
                block = self._stream.read(_CHUNK)
            except _READ_ERRORS as exc:
                raise BundleFailure(self._name, f"cannot be read ({exc})") from None
            if not block:
                break
            self.sha.update(block)
            self.size += len(block)
            lines = (tail + block).split(b"\n")
            tail = lines.pop()
            yield from lines
        if tail:
            yield None


_Facts = tuple[str, int, int, str, str, dict[str, Any] | None]
"""What the sequential checks need of a line: case, seq, position, hash, prev_hash and
the personal-data commitments (when asked for)."""


def _check_line(text: bytes | None, number: int, want_personal: bool) -> _Facts:
    """The checks of one line of events.jsonl on its own: JSON, integers only, the
    fields, canonical form, and the entry's own hash.  Raises the first failure."""
    if text is None:
        raise BundleFailure(f"{EVENTS} line {number}", "the file ends in the middle of a line")
    event, exact = _load_line(text, EVENTS, number)
    if type(event) is not dict:
        raise BundleFailure(f"{EVENTS} line {number}", "is not a JSON object")
    case = event.get("case")
    seq = event.get("seq")
    position = event.get("position")
    own = event.get("hash")
    prev = event.get("prev_hash")
    if not (type(case) is str and type(seq) is int and seq >= 1 and type(position) is int):
        raise BundleFailure(f"{EVENTS} line {number}", "needs case, seq and position")
    if type(own) is not str or len(own) != 64 or own.strip(_HEX_DIGITS):
        raise BundleFailure(f"{EVENTS} line {number}", "needs a hash of 64 hex digits")
    if type(prev) is not str or len(prev) != 64 or prev.strip(_HEX_DIGITS):
        raise BundleFailure(f"{EVENTS} line {number}", "needs a prev_hash of 64 hex digits")
    if exact:
        canonical = orjson.dumps(event, option=_SORT) == text
    else:
        try:
            canonical = _canonical(event) == text
        except ValueError:
            raise BundleFailure(f"{case}#{seq}", "cannot be written as canonical JSON") from None
    if not canonical:
        raise BundleFailure(f"{case}#{seq}", f"line {number} is not the entry's canonical JSON")
    # The hashed body is the line without its top-level hash and position pairs.  Removing
    # the first `,"hash":"<hash>"` is safe: were it not the top-level pair, the body would
    # contain its own hash and could not hash to it.  The position pair is removed only
    # when its bytes occur once (in a canonical line the top-level pair is
    # `,"position":N,`); otherwise the body is written afresh.
    hash_pair = b',"hash":"%s"' % own.encode()
    position_pair = b',"position":%d,' % position
    body = text.replace(hash_pair, b"", 1)
    if len(body) + len(hash_pair) == len(text) and body.count(position_pair) == 1:
        body = body.replace(position_pair, b",", 1)
    else:
        del event["hash"], event["position"]
        body = _canonical(event)
    if hashlib.sha256(body).hexdigest() != own:
        raise BundleFailure(f"{case}#{seq}", "does not match its hash (the entry was altered)")
    found = personal_commitments(event) if want_personal else None
    return case, seq, position, own, prev, found or None


class _Sequence:
    """The checks that need the lines before: positions increasing, chain links and
    listed gaps per case, the Merkle tree (and the root of the first ``prefix`` entries
    for a checkpoint), and the personal-data commitments.  Memory: one head per case."""

    def __init__(self, manifest: dict[str, Any], counter: _Counter, prefix: int | None) -> None:
        self.cases: dict[str, Any] = manifest["cases"]
        self.heads: dict[str, _Head] = {}
        self.commitments: dict[tuple[str, int, str], Any] = {}
        self.tree = MerkleTree()
        self.prefix = prefix
        self.prefix_root = self.tree.root() if prefix == 0 else None
        self.last_position = 0
        self.counter = counter

    def step(self, facts: _Facts) -> None:
        case, seq, position, own, prev, found = facts
        if position <= self.last_position:
            raise BundleFailure(
                f"{case}#{seq}", f"position {position} is not after {self.last_position}"
            )
        self.last_position = position
        info = self.cases.get(case)
        if info is None:
            raise BundleFailure(f"{case}#{seq}", f"case {case} is not listed in the manifest")
        head = self.heads.get(case)
        if head is None:
            head = self.heads[case] = _Head()
        if seq == head.seq + 1:
            if prev != head.hash:
                before = f"{case}#{head.seq}" if head.seq else "the start of the chain"
                raise BundleFailure(f"{case}#{seq}", f"prev_hash does not link to {before}")
        elif seq <= head.seq:
            raise BundleFailure(
                f"{case}#{seq}", f"comes after {case}#{head.seq}: entries repeated or out of order"
            )
        else:
            gaps = info["gaps"]
            gap = [head.seq + 1, seq - 1]
            if head.gap_index >= len(gaps) or gaps[head.gap_index] != gap:
                raise BundleFailure(
                    f"{case}#{seq}",
                    f"entries {gap[0]} to {gap[1]} of {case} are missing and the manifest "
                    "lists no such gap",
                )
            head.gap_index += 1
        head.seq = seq
        head.hash = own
        head.count += 1
        tree = self.tree
        tree.add(own)
        if tree.size == self.prefix:
            self.prefix_root = tree.root()
        if found:
            for name, value in found.items():
                self.commitments[(case, seq, name)] = value
        self.counter.events += 1

    def result(self, sha256: str, size: int) -> _EventsPass:
        return _EventsPass(
            sha256, size, self.tree.root(), self.heads, self.commitments, self.prefix_root
        )


def _check_events(
    source: _Source,
    manifest: dict[str, Any],
    counter: _Counter,
    want_personal: bool,
    prefix: int | None,
    workers: int | None = None,
) -> _EventsPass:
    """Stream events.jsonl through the per-line and the sequential checks."""
    folder = source.folder_path(EVENTS)
    if folder is not None:
        size = folder.stat().st_size
        count = _worker_count(workers, size)
        if count > 1:
            from concurrent.futures.process import BrokenProcessPool

            try:
                return _check_events_in_parallel(
                    folder,
                    _Sequence(manifest, counter, prefix),
                    want_personal,
                    count,
                    _PARALLEL_CHUNK,
                )
            except (BrokenProcessPool, PermissionError, NotImplementedError):
                counter.events = 0  # no worker processes here: check it in this one
    sequence = _Sequence(manifest, counter, prefix)
    check_line = _check_line
    step = sequence.step
    with source.open(EVENTS) as stream:
        reader = _LineReader(stream, EVENTS)
        number = 0
        for text in reader:
            number += 1
            step(check_line(text, number, want_personal))
    return sequence.result(reader.sha.hexdigest(), reader.size)


# --- the per-line checks in worker processes, for large bundles ----------------------------


def _worker_count(workers: int | None, size: int) -> int:
    if workers is not None:
        return workers
    if size < PARALLEL_FROM_BYTES:
        return 1
    import os

    return min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def _check_chunk(
    path: str, start: int, end: int, want_personal: bool
) -> tuple[list[_Facts], int | None, bytes | None]:
    """In a worker: the per-line checks of the lines in ``[start, end)``.  Returns the
    facts of the lines that pass, then the index and bytes of the first line that does
    not (the main process checks that line again, to raise its failure in order)."""
    with open(path, "rb") as stream:
        stream.seek(start)
        data = stream.read(end - start)
    lines: list[bytes | None] = list(data.split(b"\n"))
    tail = lines.pop()
    if tail:
        lines.append(None)  # the file ends mid-line
    facts: list[_Facts] = []
    for index, text in enumerate(lines):
        try:
            facts.append(_check_line(text, index + 1, want_personal))
        except BundleFailure:
            return facts, index, text
    return facts, None, None


def _chunks(path: Path, size: int, chunk_bytes: int) -> Iterator[tuple[int, int]]:
    """Byte ranges of whole lines, about ``chunk_bytes`` each."""
    with open(path, "rb") as stream:
        start = 0
        while start < size:
            end = start + chunk_bytes
            if end >= size:
                yield start, size
                return
            stream.seek(end)
            while True:
                block = stream.read(1 << 16)
                if not block:
                    end = size
                    break
                at = block.find(b"\n")
                if at >= 0:
                    end += at + 1
                    break
                end += len(block)
            yield start, end
            start = end


def _check_events_in_parallel(
    path: Path, sequence: _Sequence, want_personal: bool, workers: int, chunk_bytes: int
) -> _EventsPass:
    """Workers check lines on their own; this process checks them in order (positions,
    chains, gaps, the Merkle root) and hashes the file in a thread meanwhile.  The first
    failure is the one the sequential check would report: results are taken in line
    order, and a line a worker rejects is checked again here at its place."""
    import multiprocessing
    import threading
    from collections import deque
    from concurrent.futures import Future, ProcessPoolExecutor

    size = path.stat().st_size
    digest: dict[str, Any] = {}
    stop = threading.Event()

    def hash_file() -> None:
        sha = hashlib.sha256()
        total = 0
        try:
            with open(path, "rb") as stream:
                while not stop.is_set() and (block := stream.read(_CHUNK)):
                    sha.update(block)
                    total += len(block)
        except OSError as exc:
            digest["error"] = exc
        digest["sha256"], digest["size"] = sha.hexdigest(), total

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    hasher = threading.Thread(target=hash_file, name="events-sha256", daemon=True)
    pending: deque[Future[tuple[list[_Facts], int | None, bytes | None]]] = deque()
    ranges = _chunks(path, size, chunk_bytes)
    number = 0
    step = sequence.step
    failed_here = True
    try:
        for _ in range(workers * 2):
            chunk = next(ranges, None)
            if chunk is None:
                break
            pending.append(pool.submit(_check_chunk, str(path), *chunk, want_personal))
        hasher.start()  # after the workers are forked: no thread is running when they are
        while pending:
            facts, failed, text = pending.popleft().result()
            chunk = next(ranges, None)
            if chunk is not None:
                pending.append(pool.submit(_check_chunk, str(path), *chunk, want_personal))
            for item in facts:
                number += 1
                step(item)
            if failed is not None:
                _check_line(text, number + 1, want_personal)  # raises, numbered in order
                raise AssertionError("a worker rejected a line the main process accepts")
        failed_here = False
    finally:
        if failed_here:
            stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    if hasher.is_alive() or hasher.ident is not None:
        hasher.join()
    if "error" in digest:
        raise BundleFailure(EVENTS, f"cannot be read ({digest['error']})")
    return sequence.result(digest["sha256"], digest["size"])


def _check_cases(manifest: dict[str, Any], heads: dict[str, _Head]) -> None:
    for ref, info in manifest["cases"].items():
        head = heads.get(ref)
        if head is None:
            raise BundleFailure(ref, "is listed in the manifest but has no entries in events.jsonl")
        if info["head"].get("seq") != head.seq or info["head"].get("hash") != head.hash:
            raise BundleFailure(
                ref, f"the chain head is {ref}#{head.seq} {head.hash}, the manifest says otherwise"
            )
        if info["events"] != head.count:
            raise BundleFailure(
                ref, f"has {head.count} entries, the manifest says {info['events']}"
            )
        if head.gap_index != len(info["gaps"]):
            raise BundleFailure(ref, "the manifest lists a gap that is not in events.jsonl")


def _signature_holds(public_hex: str, message: bytes, signature_hex: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _check_checkpoint(
    source: _Source,
    manifest: dict[str, Any],
    events: int,
    prefix_root: str | None,
    trusted_key: str | None,
) -> None:
    declared = manifest.get("checkpoint")
    if declared is None:
        if trusted_key is not None:
            raise BundleFailure(
                CHECKPOINT, "the bundle carries no checkpoint to check the key against"
            )
        return
    try:
        checkpoint = json.loads(source.read(CHECKPOINT))
    except ValueError:
        raise BundleFailure(CHECKPOINT, "is not valid JSON") from None
    if not (
        isinstance(checkpoint, dict)
        and isinstance(checkpoint.get("signature"), str)
        and isinstance(checkpoint.get("public_key"), str)
    ):
        raise BundleFailure(CHECKPOINT, "needs a signature and a public_key")
    body = {k: v for k, v in checkpoint.items() if k != "signature" and k not in _REGISTER_FIELDS}
    try:
        signed = _std_canonical(body)
    except ValueError:
        signed = b""
    if not signed or not _signature_holds(
        checkpoint["public_key"], signed, checkpoint["signature"]
    ):
        raise BundleFailure(CHECKPOINT, "the checkpoint's signature does not verify")
    if checkpoint.get("count") != declared["count"] or checkpoint.get("root") != declared["root"]:
        raise BundleFailure(CHECKPOINT, "does not match the checkpoint the manifest describes")
    if trusted_key is not None and checkpoint["public_key"] != trusted_key.lower():
        raise BundleFailure(CHECKPOINT, "was not signed by the key you trust")
    if declared["applies"]:
        if events < declared["count"]:
            raise BundleFailure(
                CHECKPOINT,
                f"the bundle holds {events} entries, fewer than the {declared['count']} the "
                "checkpoint counted",
            )
        if prefix_root != declared["root"]:
            raise BundleFailure(
                CHECKPOINT,
                f"the first {declared['count']} entries do not hash to the checkpoint's root",
            )


def _check_personal(
    source: _Source, manifest: dict[str, Any], commitments: dict[tuple[str, int, str], Any]
) -> None:
    seen: set[tuple[str, int, str]] = set()
    number = 0
    with source.open(PERSONAL) as stream:
        for line in _LineReader(stream, PERSONAL):
            number += 1
            where = f"{PERSONAL} line {number}"
            if line is None:
                raise BundleFailure(where, "the file ends in the middle of a line")
            row, _ = _load_line(line, PERSONAL, number)
            if not (
                isinstance(row, dict)
                and isinstance(row.get("case"), str)
                and _is_int(row.get("seq"))
                and isinstance(row.get("field"), str)
                and "value" in row
                and isinstance(row.get("salt"), str)
                and _HEX32.match(row["salt"])
            ):
                raise BundleFailure(where, "needs case, seq, field, value and a 16-byte hex salt")
            label = f"{row['case']}#{row['seq']} personal.{row['field']}"
            try:
                text = _canonical(row)
            except ValueError:
                text = b""
            if text != line:
                raise BundleFailure(label, f"line {number} of {PERSONAL} is not canonical JSON")
            key = (row["case"], row["seq"], row["field"])
            if key in seen:
                raise BundleFailure(label, "appears twice")
            seen.add(key)
            expected = commitments.get(key)
            if expected is None:
                raise BundleFailure(label, "has no commitment in the exported entries")
            actual = hashlib.sha256(bytes.fromhex(row["salt"]) + _canonical(row["value"]))
            if actual.hexdigest() != expected:
                raise BundleFailure(label, "does not match its commitment in the hashed entry")
    declared = manifest["personal_data"]["values"]
    if number != declared:
        raise BundleFailure(PERSONAL, f"holds {number} values, the manifest says {declared}")


def verify_bundle(
    path: Path | str,
    *,
    expect_root: str | None = None,
    expect_manifest_sha256: str | None = None,
    trusted_key: str | None = None,
    workers: int | None = None,
) -> BundleVerifyResult:
    """Check a bundle folder or ``.zip``; never raises for a bad bundle.

    ``expect_root``, ``expect_manifest_sha256`` and ``trusted_key`` (the checkpoint
    signer's Ed25519 public key, hex) are what the recipient was told by another route.
    ``workers``: how many processes check the lines of a folder bundle's events.jsonl
    (default: up to 4 when it is at least 64 MB, else 1); the verdict is the same.
    """
    path = Path(path)
    counter = _Counter()
    result = BundleVerifyResult(
        bundle=str(path),
        ok=False,
        events=0,
        cases=0,
        first_bad=None,
        failure=None,
        root=None,
        manifest_sha256=None,
        personal_data=None,
    )
    source: _Source | None = None
    try:
        source = _Source(path)
        manifest, manifest_sha = _manifest(source)
        result.manifest_sha256 = manifest_sha
        included = bool(manifest["personal_data"]["included"])
        result.personal_data = included
        listed = [f["path"] for f in manifest["files"]]
        for name in listed:
            if not source.exists(name):
                raise BundleFailure(name, "listed in the manifest but missing from the bundle")
        allowed = {*listed, MANIFEST, MANIFEST_SHA}
        for name in source.names():
            if name not in allowed:
                raise BundleFailure(name, "is in the bundle but not listed in the manifest")
        events_entry: dict[str, Any] = {}
        for entry in manifest["files"]:
            if entry["path"] == EVENTS:
                events_entry = entry
                continue
            digest, size = source.digest(entry["path"])
            if digest != entry["sha256"]:
                raise BundleFailure(
                    entry["path"], f"SHA-256 is {digest}, the manifest says {entry['sha256']}"
                )
            if size != entry["bytes"]:
                raise BundleFailure(
                    entry["path"], f"is {size} bytes, the manifest says {entry['bytes']}"
                )
        declared = manifest.get("checkpoint")
        prefix = declared["count"] if declared and declared["applies"] else None
        passed = _check_events(source, manifest, counter, included, prefix, workers)
        result.root = passed.root
        if passed.sha256 != events_entry["sha256"]:
            raise BundleFailure(
                EVENTS, f"SHA-256 is {passed.sha256}, the manifest says {events_entry['sha256']}"
            )
        if passed.size != events_entry["bytes"]:
            raise BundleFailure(
                EVENTS, f"is {passed.size} bytes, the manifest says {events_entry['bytes']}"
            )
        declared = manifest["events"]["count"]
        if counter.events != declared:
            raise BundleFailure(
                EVENTS, f"holds {counter.events} entries, the manifest says {declared}"
            )
        if passed.root != manifest["merkle"]["root"]:
            raise BundleFailure(
                MANIFEST,
                f"the Merkle root of the entries is {passed.root}, the manifest says "
                f"{manifest['merkle']['root']}",
            )
        _check_cases(manifest, passed.heads)
        result.cases = len(passed.heads)
        _check_checkpoint(source, manifest, counter.events, passed.prefix_root, trusted_key)
        result.checkpoint = declared is not None
        if included:
            _check_personal(source, manifest, passed.commitments)
        if expect_root is not None and passed.root != expect_root.lower():
            raise BundleFailure(
                MANIFEST, f"the Merkle root is {passed.root}, you expected {expect_root}"
            )
        if expect_manifest_sha256 is not None and manifest_sha != expect_manifest_sha256.lower():
            raise BundleFailure(
                MANIFEST,
                f"the manifest's SHA-256 is {manifest_sha}, you expected {expect_manifest_sha256}",
            )
        result.ok = True
    except BundleFailure as failure:
        result.first_bad = failure.where
        result.failure = failure.reason
    finally:
        if source is not None:
            source.close()
    result.events = counter.events
    return result
