"""``caseledger verify BUNDLE``: check an export bundle (a folder or a ``.zip``).

This is the tool's own checker.  ``projections/data/verify.py`` (copied into every bundle)
is a second implementation of the same checks with the standard library only, so an
inspector need not trust this one; the tests run both on the same bundles (the vectors
in ``tests/vectors/`` among them), tampered and not, and require the same verdict, the
same first failure and the same lists of what was and was not checked.

``docs/bundle-format.md`` specifies the format and every check.  The checks run in a
fixed order and stop at the first failure, which is named by the file (``report.html``),
the line (``events.jsonl line 7``), the entry (``CASE#seq``), the case, or the personal
value (``CASE#1 personal.name``):

1. The bundle's files: plain files only (no symbolic link, no folder), no zip member
   twice, no absolute name and no ``..``.  A path that is no bundle at all raises
   :class:`NotABundle` (exit code 2), never a verdict.
2. ``manifest.sha256`` and the manifest's form; every listed file present and no other;
   every listed file but ``events.jsonl`` has its SHA-256 and size.
3. The signed checkpoint's signature, under the trusted key when one is given (then a
   bundle without a checkpoint fails, whatever its manifest says).
4. ``events.jsonl`` line by line (canonical JSON, hashes, positions, chain links and
   gaps) with each entry's inclusion proof from ``proofs.jsonl`` beside it.
5. ``events.jsonl``'s SHA-256, size and count; the entries' Merkle root; each case's head,
   count and gaps and the export's selection; against the checkpoint, the whole log's
   root or each case's head at the checkpoint.
6. With personal data included, each value against its commitment.
7. The bundle root over every file; ``expect_root`` and ``expect_manifest_sha256``.

Memory stays flat: one line at a time, plus one head per case and the personal-data
commitments (a few per case).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import orjson

from ledger.errors import UsageError
from ledger.integrity.canonical import GENESIS_HASH, personal_commitments
from ledger.integrity.merkle import MerkleTree, leaf_hash, verify_inclusion

__all__ = [
    "CHECKED",
    "NOT_CHECKED",
    "BundleFailure",
    "BundleVerifyResult",
    "NotABundle",
    "verify_bundle",
]

FORMAT: Final = "caseledger-bundle/2"
MANIFEST: Final = "manifest.json"
MANIFEST_SHA: Final = "manifest.sha256"
EVENTS: Final = "events.jsonl"
PROOFS: Final = "proofs.jsonl"
PERSONAL: Final = "personal.jsonl"
CHECKPOINT: Final = "checkpoint.json"
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

#: What each code in a verdict's ``checked`` list means (the same as verify.py's).
CHECKED: Final = {
    "files": "manifest.sha256, the manifest, and every file's SHA-256 and size; no file "
    "unlisted, no link, no folder, no '..' or absolute name",
    "entries": "every entry's canonical JSON and its hash",
    "chains": "every chain link (left-out entries only at the gaps the manifest lists)",
    "events-root": "the Merkle root over the entry hashes",
    "case-heads": "each case's chain head, entry count and gaps, and the export's "
    "selection of cases",
    "checkpoint-signature": "the checkpoint's signature, under the key written inside it",
    "checkpoint-signature-trusted": "the checkpoint's signature, under the key you gave",
    "checkpoint-whole-log": "the bundle's first entries are the whole signed log (its root "
    "and its count)",
    "checkpoint-inclusion": "each entry up to the checkpoint is in the signed log (an "
    "inclusion proof each)",
    "checkpoint-case-heads": "each case's head at the checkpoint is in the signed cases "
    "tree (or the case is proven newer), so no entry up to it is missing unlisted",
    "personal-data": "every personal value against its commitment",
    "bundle-root": "the bundle root over every file",
    "expected-root": "the bundle root equals the one you gave",
    "expected-manifest-sha256": "the manifest's SHA-256 equals the one you gave",
}
#: What each code in a verdict's ``not_checked`` list means (the same as verify.py's).
NOT_CHECKED: Final = {
    "sender": "nothing was given separately (--public-key, --expect-root or "
    "--expect-manifest-sha256): the bundle is internally consistent only",
    "checkpoint-signer": "who signed the checkpoint: no --public-key was given",
    "signed-log": "that the entries are in a signed log: the bundle carries no checkpoint",
    "entries-after-checkpoint": "the entries recorded after the checkpoint: no signed "
    "log covers them",
    "case-heads-at-checkpoint": "that no entry of a case is missing up to the checkpoint: "
    "the checkpoint has no cases tree",
    "left-out-entries": "that the entries listed as left out (gaps) fall outside the "
    "export's filters",
    "selection": "that the export's selection (its cases and filters) is the one you asked "
    "for: give --expect-root",
    "empty": "anything about entries: the bundle holds none",
    "report-content": "that report.html and timeline.csv say what the entries say (only "
    "their hashes are checked)",
    "register": "the register (who was enrolled, with which roles): it is not in a bundle",
    "rest": "the checks after the first failure",
}


class BundleFailure(Exception):
    """The first check that failed: ``where`` (file, line, entry or case) and why."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class NotABundle(UsageError):
    """The path is no bundle at all: a usage error (exit code 2), not a verdict."""


@dataclass
class BundleVerifyResult:
    """What ``caseledger verify BUNDLE`` reports: the same keys as ``verify.py --json``."""

    bundle: str
    ok: bool = False
    verdict: str = "does not verify"
    events: int = 0
    cases: int = 0
    first_bad: str | None = None
    failure: str | None = None
    root: str | None = None
    events_root: str | None = None
    manifest_sha256: str | None = None
    personal_data: bool | None = None
    checkpoint: bool | None = None
    checkpoint_trusted: bool = False
    covered: int = 0
    after_checkpoint: int = 0
    empty: bool | None = None
    checked: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=lambda: ["rest"])

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "bundle": self.bundle,
            "events": self.events,
            "cases": self.cases,
            "first_bad": self.first_bad,
            "failure": self.failure,
            "root": self.root,
            "events_root": self.events_root,
            "manifest_sha256": self.manifest_sha256,
            "personal_data": self.personal_data,
            "checkpoint": self.checkpoint,
            "checkpoint_trusted": self.checkpoint_trusted,
            "covered": self.covered,
            "after_checkpoint": self.after_checkpoint,
            "empty": self.empty,
            "checked": list(self.checked),
            "not_checked": list(self.not_checked),
        }

    def summary(self) -> str:
        """The verdict for people: against what it verified, and what it did not check."""
        if not self.ok:
            return f"bundle {self.bundle} DOES NOT VERIFY at {self.first_bad}: {self.failure}"
        cases = f"{self.cases} case{'' if self.cases == 1 else 's'}"
        lines = [
            f"bundle {self.bundle}: {self.verdict}",
            f"  {self.events} entries in {cases}; bundle root {self.root}",
        ]
        lines += [f"  checked: {CHECKED[c]}" for c in self.checked]
        lines += [f"  NOT checked: {NOT_CHECKED[c]}" for c in self.not_checked]
        return "\n".join(lines)


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


def _name_problem(name: str) -> str | None:
    """Why a name is refused in a bundle (a zip member or a manifest path), or ``None``."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path: refused"
    if ".." in re.split(r"[/\\]", name):
        return "climbs out of the bundle with '..': refused"
    if "\\" in name:
        return "holds a backslash: refused"
    return None


class _Source:
    """A bundle's files, from a folder or a zip archive (under at most one top folder).

    Opening refuses what a bundle never holds: in a folder, symbolic links, folders and
    other non-plain files; in a zip, a member twice, an absolute name, ``..`` or a link.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip: zipfile.ZipFile | None = None
        self._prefix = ""
        if path.is_dir():
            self._names = self._scan_folder(path)
        elif path.is_file() and zipfile.is_zipfile(path):
            try:
                self._zip = zipfile.ZipFile(path)
                infos = self._zip.infolist()
            except Exception as exc:  # any damage to the archive's directory
                raise BundleFailure(path.name, f"the zip file cannot be read ({exc})") from None
            self._names = self._scan_zip(path, infos)
        elif not path.exists():
            raise NotABundle(f"{path} does not exist", field="bundle")
        else:
            raise NotABundle(f"{path} is not a bundle folder or .zip file", field="bundle")

    @staticmethod
    def _scan_folder(path: Path) -> list[str]:
        try:
            entries = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError as exc:
            raise NotABundle(f"{path} cannot be read: {exc}", field="bundle") from None
        names = [e.name for e in entries]
        if MANIFEST not in names and MANIFEST_SHA not in names:
            raise NotABundle(
                f"{path} is not a bundle: it holds no {MANIFEST} or {MANIFEST_SHA}",
                field="bundle",
            )
        for entry in entries:
            if entry.is_symlink():
                raise BundleFailure(
                    entry.name, "is a symbolic link: a bundle holds plain files only"
                )
            if entry.is_dir(follow_symlinks=False):
                raise BundleFailure(entry.name, "is a folder: a bundle holds plain files only")
            if not entry.is_file(follow_symlinks=False):
                raise BundleFailure(entry.name, "is not a plain file: refused")
        return names

    def _scan_zip(self, path: Path, infos: list[zipfile.ZipInfo]) -> list[str]:
        seen: set[str] = set()
        for info in infos:
            problem = _name_problem(info.filename)
            if problem:
                raise BundleFailure(info.filename, problem)
            if info.filename in seen:
                raise BundleFailure(info.filename, "is in the zip more than once: refused")
            seen.add(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise BundleFailure(
                    info.filename, "is a symbolic link: a bundle holds plain files only"
                )
        names = [i.filename for i in infos if not i.filename.endswith("/")]
        if MANIFEST not in names and MANIFEST_SHA not in names:
            tops = sorted(
                {n.split("/", 1)[0] + "/" for n in names if "/" in n}
                & {
                    n[: -len(m)]
                    for n in names
                    for m in (MANIFEST, MANIFEST_SHA)
                    if n.endswith("/" + m)
                }
            )
            if len(tops) == 1:
                self._prefix = tops[0]
            else:
                raise NotABundle(
                    f"{path} is not a bundle: it holds no {MANIFEST} or {MANIFEST_SHA}",
                    field="bundle",
                )
        inside = sorted(n[len(self._prefix) :] for n in names if n.startswith(self._prefix))
        return inside + sorted(n for n in names if not n.startswith(self._prefix))

    def names(self) -> list[str]:
        return list(self._names)

    def folder_path(self, name: str) -> Path | None:
        """The file's path when the bundle is a folder (``None`` for a zip)."""
        return self.path / name if self._zip is None else None

    def exists(self, name: str) -> bool:
        return name in self._names

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        try:
            if self._zip is None:  # never through a link, even one made after the scan
                fd = os.open(self.path / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
                stream: IO[bytes] = os.fdopen(fd, "rb")
            else:
                stream = self._zip.open(self._prefix + name)
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


def _is_hex64(value: Any) -> bool:
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def _is_tree(value: Any) -> bool:
    """A checkpoint's ``{size, root}``."""
    return (
        isinstance(value, dict)
        and _is_int(value.get("size"))
        and value["size"] >= 0
        and _is_hex64(value.get("root"))
    )


def _is_proof(value: Any) -> bool:
    return isinstance(value, list) and all(_is_hex64(p) for p in value)


def _is_leaf(value: Any, with_case: bool) -> bool:
    """A case head in the cases tree: ``{[case,] seq, hash, index, proof}``."""
    return (
        isinstance(value, dict)
        and (not with_case or isinstance(value.get("case"), str))
        and _is_int(value.get("seq"))
        and _is_hex64(value.get("hash"))
        and _is_int(value.get("index"))
        and _is_proof(value.get("proof"))
    )


def _manifest(source: _Source) -> tuple[dict[str, Any], str, bytes]:
    if not source.exists(MANIFEST_SHA):
        raise BundleFailure(MANIFEST_SHA, "missing: it should hold the SHA-256 of manifest.json")
    seal = source.read(MANIFEST_SHA)
    parts = seal.decode("utf-8", "replace").split()
    if len(parts) != 2 or not _HEX64.fullmatch(parts[0]) or parts[1].lstrip("*") != MANIFEST:
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
    return manifest, actual, seal


def _files_problem(files: Any) -> str | None:
    if not isinstance(files, list) or not all(
        isinstance(f, dict)
        and isinstance(f.get("path"), str)
        and _is_hex64(f.get("sha256"))
        and _is_int(f.get("bytes"))
        for f in files
    ):
        return "files must be a list of {path, sha256, bytes}"
    for f in files:
        path = f["path"]
        problem = _name_problem(path)
        if problem:
            return f"files lists {path!r}, which {problem}"
        if "/" in path or path in ("", "."):
            return f"files lists {path!r}: a bundle's files are plain names, in no folder"
    paths = [f["path"] for f in files]
    if len(set(paths)) != len(paths) or EVENTS not in paths:
        return "files must list events.jsonl, each file once"
    if MANIFEST in paths or MANIFEST_SHA in paths:
        return "files must not list manifest.json or manifest.sha256"
    return None


def _filters_ok(filters: Any) -> bool:
    return (
        isinstance(filters, dict)
        and (
            filters.get("cases") is None
            or (
                isinstance(filters["cases"], list)
                and all(isinstance(c, str) for c in filters["cases"])
            )
        )
        and all(
            filters.get(k) is None or isinstance(filters[k], dict)
            for k in ("occurred_from", "occurred_to", "as_of")
        )
    )


def _checkpoint_ok(checkpoint: Any) -> bool:
    return (
        isinstance(checkpoint, dict)
        and checkpoint.get("file") == CHECKPOINT
        and _is_int(checkpoint.get("version"))
        and _is_tree(checkpoint.get("events"))
        and (checkpoint.get("cases") is None or _is_tree(checkpoint["cases"]))
        and _is_int(checkpoint.get("last_position"))
        and isinstance(checkpoint.get("public_key"), str)
        and checkpoint.get("proof") in ("whole", "inclusion")
        and checkpoint.get("proofs_file")
        == (PROOFS if checkpoint["proof"] == "inclusion" else None)
        and _is_int(checkpoint.get("covered"))
        and _is_int(checkpoint.get("after"))
    )


def _case_problem(ref: str, case: Any) -> str | None:
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
    at = case.get("at_checkpoint")
    absent = case.get("absent_at_checkpoint")
    if at is not None and not _is_leaf(at, False):
        return f"cases.{ref}.at_checkpoint must be null or {{seq, hash, index, proof}}"
    if absent is not None and not (
        isinstance(absent, dict)
        and all(absent.get(k) is None or _is_leaf(absent[k], True) for k in ("left", "right"))
    ):
        return f"cases.{ref}.absent_at_checkpoint must be null or {{left, right}}"
    if at is not None and absent is not None:
        return f"cases.{ref} cannot be both at_checkpoint and absent_at_checkpoint"
    return None


def _manifest_problem(m: Any) -> str | None:
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        found = m.get("format") if isinstance(m, dict) else None
        if isinstance(found, str) and found.startswith("caseledger-bundle/"):
            return f"is a {found} manifest; this checker reads {FORMAT} only (ask for a new export)"
        return f"is not a {FORMAT} manifest"
    problem = _files_problem(m.get("files"))
    if problem:
        return problem
    paths = [f["path"] for f in m["files"]]
    if not _filters_ok(m.get("filters")):
        return "filters must give cases (a list or null) and occurred_from, occurred_to, as_of"
    events = m.get("events")
    if not isinstance(events, dict) or not _is_int(events.get("count")):
        return "events.count is missing"
    merkle = m.get("merkle")
    if not isinstance(merkle, dict) or not _is_hex64(merkle.get("root")):
        return "merkle.root is missing"
    personal = m.get("personal_data")
    if not isinstance(personal, dict) or not isinstance(personal.get("included"), bool):
        return "personal_data.included is missing"
    if personal["included"] != (PERSONAL in paths):
        return "personal_data.included does not match whether personal.jsonl is listed"
    if personal["included"] and not _is_int(personal.get("values")):
        return "personal_data.values is missing"
    checkpoint = m.get("checkpoint")
    if checkpoint is not None and not _checkpoint_ok(checkpoint):
        return (
            "checkpoint must be null or {file, version, events, cases, last_position, "
            "public_key, proof ('whole' or 'inclusion'), proofs_file, covered, after}"
        )
    if (checkpoint is not None) != (CHECKPOINT in paths):
        return "checkpoint does not match whether checkpoint.json is listed"
    inclusion = checkpoint is not None and checkpoint["proof"] == "inclusion"
    if inclusion != (PROOFS in paths):
        return "checkpoint.proof does not match whether proofs.jsonl is listed"
    cases = m.get("cases")
    if not isinstance(cases, dict):
        return "cases is missing"
    for ref, case in cases.items():
        problem = _case_problem(ref, case)
        if problem:
            return problem
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
    """How many entries were checked, proven in the signed log, and after it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.events = 0
        self.covered = 0
        self.after = 0


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


class _Proofs:
    """``proofs.jsonl``, read line by line beside ``events.jsonl`` (in this process)."""

    def __init__(self, source: _Source) -> None:
        self._stack = ExitStack()
        stream = self._stack.enter_context(source.open(PROOFS))
        self._lines = iter(_LineReader(stream, PROOFS))
        self.number = 0

    def next(self) -> tuple[dict[str, Any], int]:
        self.number += 1
        where = f"{PROOFS} line {self.number}"
        line = next(self._lines, b"\n")
        if line == b"\n":
            raise BundleFailure(
                where, "is missing: proofs.jsonl needs one line per line of events.jsonl"
            )
        if line is None:
            raise BundleFailure(where, "the file ends in the middle of a line")
        row, _ = _load_line(line, PROOFS, self.number)
        index = row.get("index", False) if isinstance(row, dict) else False
        if not (
            isinstance(row, dict)
            and (
                (index is None and set(row) == {"index"})
                or (_is_int(index) and set(row) == {"index", "proof"} and _is_proof(row["proof"]))
            )
        ):
            raise BundleFailure(
                where, 'must be {"index": null} or {"index": N, "proof": [hex, ...]}'
            )
        if _canonical(row) != line:
            raise BundleFailure(where, "is not canonical JSON")
        return row, self.number

    def finish(self) -> None:
        try:
            if next(self._lines, b"\n") != b"\n":
                raise BundleFailure(
                    f"{PROOFS} line {self.number + 1}", "is more than events.jsonl has lines"
                )
        finally:
            self.close()

    def close(self) -> None:
        self._stack.close()


class _Sequence:
    """The checks that need the lines before: positions increasing, chain links and
    listed gaps per case, the Merkle tree (and the root of the checkpoint's first
    entries for a whole-log proof), each entry's inclusion proof, and the personal-data
    commitments.  Memory: one head per case."""

    def __init__(
        self,
        manifest: dict[str, Any],
        counter: _Counter,
        checkpoint: dict[str, Any] | None,
        source: _Source,
    ) -> None:
        self.cases: dict[str, Any] = manifest["cases"]
        self.heads: dict[str, _Head] = {}
        self.commitments: dict[tuple[str, int, str], Any] = {}
        self.tree = MerkleTree()
        whole = checkpoint is not None and manifest["checkpoint"]["proof"] == "whole"
        self.prefix = int(checkpoint["events"]["size"]) if whole and checkpoint else None
        self.prefix_root = self.tree.root() if self.prefix == 0 else None
        self.checkpoint = checkpoint
        self.proofs = _Proofs(source) if checkpoint is not None and not whole else None
        self.last_index = -1
        self.seen_after = False
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
        if self.proofs is not None:
            if self._proven(info, f"{case}#{seq}", seq, position, own):
                self.counter.covered += 1
            else:
                self.counter.after += 1
            at = info.get("at_checkpoint")
            if at is not None and seq == at["seq"] and own != at["hash"]:
                raise BundleFailure(
                    f"{case}#{seq}", "is not the case's head that the checkpoint signed"
                )
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

    def _proven(self, info: dict[str, Any], ref: str, seq: int, position: int, own: str) -> bool:
        """The entry's line of proofs.jsonl: whether it is proven in the signed log (or
        is, as it must then be, recorded after the checkpoint)."""
        assert self.proofs is not None and self.checkpoint is not None
        row, number = self.proofs.next()
        index = row["index"]
        last_position = self.checkpoint["last_position"]
        has_cases = self.checkpoint.get("cases") is not None
        at = info.get("at_checkpoint")
        if index is None:
            if position <= last_position:
                raise BundleFailure(
                    ref,
                    f"carries no inclusion proof, yet its position {position} is within the "
                    f"checkpoint's (up to {last_position})",
                )
            if has_cases and at is not None and seq <= at["seq"]:
                raise BundleFailure(
                    ref,
                    f"carries no inclusion proof, yet the case's head at the checkpoint is "
                    f"#{at['seq']}",
                )
            self.seen_after = True
            return False
        if self.seen_after:
            raise BundleFailure(
                ref,
                "claims an inclusion proof but comes after an entry recorded after the checkpoint",
            )
        if index <= self.last_index:
            raise BundleFailure(ref, f"its leaf index {index} is not after the previous entry's")
        if position > last_position:
            raise BundleFailure(
                ref,
                f"claims an inclusion proof, but its position {position} is after the checkpoint's",
            )
        if has_cases and (at is None or seq > at["seq"]):
            raise BundleFailure(
                ref,
                "claims an inclusion proof, but it is after the case's head at the checkpoint",
            )
        events = self.checkpoint["events"]
        leaf = leaf_hash(bytes.fromhex(own)).hex()
        if not verify_inclusion(leaf, index, events["size"], row["proof"], events["root"]):
            raise BundleFailure(
                ref,
                f"is not in the signed log: its inclusion proof ({PROOFS} line {number}) does "
                "not verify against the checkpoint's events root",
            )
        self.last_index = index
        return True

    def result(self, sha256: str, size: int) -> _EventsPass:
        if self.proofs is not None:
            self.proofs.finish()
        return _EventsPass(
            sha256, size, self.tree.root(), self.heads, self.commitments, self.prefix_root
        )

    def close(self) -> None:
        if self.proofs is not None:
            self.proofs.close()


def _check_events(
    source: _Source,
    manifest: dict[str, Any],
    counter: _Counter,
    want_personal: bool,
    checkpoint: dict[str, Any] | None,
    workers: int | None = None,
) -> _EventsPass:
    """Stream events.jsonl through the per-line and the sequential checks."""
    folder = source.folder_path(EVENTS)
    if folder is not None:
        size = folder.stat().st_size
        count = _worker_count(workers, size)
        if count > 1:
            from concurrent.futures.process import BrokenProcessPool

            sequence = _Sequence(manifest, counter, checkpoint, source)
            try:
                return _check_events_in_parallel(
                    folder, sequence, want_personal, count, _PARALLEL_CHUNK
                )
            except (BrokenProcessPool, PermissionError, NotImplementedError):
                counter.reset()  # no worker processes here: check it in this one
            finally:
                sequence.close()
    sequence = _Sequence(manifest, counter, checkpoint, source)
    check_line = _check_line
    step = sequence.step
    try:
        with source.open(EVENTS) as stream:
            reader = _LineReader(stream, EVENTS)
            number = 0
            for text in reader:
                number += 1
                step(check_line(text, number, want_personal))
        return sequence.result(reader.sha.hexdigest(), reader.size)
    finally:
        sequence.close()


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


def _narrowing(manifest: dict[str, Any]) -> bool:
    """Whether the export's filters leave entries out (dates or an as-of time)."""
    f = manifest["filters"]
    return any(f.get(k) is not None for k in ("occurred_from", "occurred_to", "as_of"))


def _check_cases(manifest: dict[str, Any], heads: dict[str, _Head], inclusion: bool) -> None:
    narrowed = _narrowing(manifest)
    for ref, info in manifest["cases"].items():
        head = heads.get(ref) or _Head()
        if info["head"].get("seq") != head.seq or info["head"].get("hash") != head.hash:
            raise BundleFailure(
                ref, f"the chain head is {ref}#{head.seq} {head.hash}, the manifest says otherwise"
            )
        if info["events"] != head.count:
            raise BundleFailure(
                ref, f"has {head.count} entries, the manifest says {info['events']}"
            )
        gap_index = head.gap_index
        at = info.get("at_checkpoint") if inclusion else None
        if at is not None and head.seq < at["seq"]:
            gaps = info["gaps"]
            trailing = [head.seq + 1, at["seq"]]
            if gap_index >= len(gaps) or gaps[gap_index] != trailing:
                raise BundleFailure(
                    ref,
                    f"entries {trailing[0]} to {trailing[1]} of {ref} were in the signed log "
                    "at the checkpoint, are not in the bundle, and the manifest lists no such "
                    "gap",
                )
            gap_index += 1
        if gap_index != len(info["gaps"]):
            raise BundleFailure(ref, "the manifest lists a gap that is not in events.jsonl")
        if info["gaps"] and not narrowed:
            raise BundleFailure(
                ref,
                "the manifest lists left-out entries, but the export's filters (no dates, no "
                "as-of time) leave none out",
            )
    selection = manifest["filters"]["cases"]
    if selection is not None:
        for ref in selection:
            if ref not in manifest["cases"]:
                raise BundleFailure(ref, "is in the export's selection but not in the bundle")
        for ref in manifest["cases"]:
            if ref not in selection:
                raise BundleFailure(ref, "is in the bundle but not in the export's selection")
    elif not narrowed:
        for ref, info in manifest["cases"].items():
            if info["events"] == 0:
                raise BundleFailure(
                    ref, "is listed with no entries in a bundle that leaves none out"
                )


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
    source: _Source, manifest: dict[str, Any], trusted_key: str | None
) -> dict[str, Any] | None:
    """The signed checkpoint, its signature checked (under the trusted key when given);
    with a trusted key and no checkpoint, the bundle fails, whatever its manifest says."""
    declared = manifest.get("checkpoint")
    if declared is None:
        if trusted_key is not None:
            raise BundleFailure(
                CHECKPOINT,
                "you gave a trusted key, but the bundle carries no signed checkpoint to "
                "check it against",
            )
        return None
    try:
        checkpoint = json.loads(source.read(CHECKPOINT))
    except ValueError:
        raise BundleFailure(CHECKPOINT, "is not valid JSON") from None
    if not (
        isinstance(checkpoint, dict)
        and isinstance(checkpoint.get("signature"), str)
        and isinstance(checkpoint.get("public_key"), str)
        and checkpoint.get("version") == 2
        and _is_tree(checkpoint.get("events"))
        and (checkpoint.get("cases") is None or _is_tree(checkpoint["cases"]))
        and _is_int(checkpoint.get("last_position"))
    ):
        raise BundleFailure(
            CHECKPOINT, "is not a version 2 checkpoint with events, last_position and a signature"
        )
    if trusted_key is not None and checkpoint["public_key"] != trusted_key:
        raise BundleFailure(CHECKPOINT, "was not signed by the key you trust")
    body = {k: v for k, v in checkpoint.items() if k != "signature"}
    try:
        signed = _std_canonical(body)
    except ValueError:
        signed = b""
    public = trusted_key or checkpoint["public_key"]
    if not signed or not _signature_holds(public, signed, checkpoint["signature"]):
        raise BundleFailure(CHECKPOINT, "the checkpoint's signature does not verify")
    for key in ("version", "events", "cases", "last_position", "public_key"):
        if checkpoint.get(key) != declared.get(key):
            raise BundleFailure(
                CHECKPOINT, f"does not match the checkpoint the manifest describes ({key})"
            )
    return checkpoint


def _case_leaf_hash(case: str, seq: int, head: str) -> str:
    leaf = hashlib.sha256(_std_canonical({"case": case, "hash": head, "seq": seq})).digest()
    return leaf_hash(leaf).hex()


def _absent_holds(ref: str, absent: dict[str, Any], tree: dict[str, Any]) -> bool:
    """Whether two neighbouring leaves of the sorted cases tree bracket ``ref``."""
    left: dict[str, Any] | None = absent.get("left")
    right: dict[str, Any] | None = absent.get("right")
    size: int = tree["size"]
    for leaf in (left, right):
        if leaf is not None and not verify_inclusion(
            _case_leaf_hash(leaf["case"], leaf["seq"], leaf["hash"]),
            leaf["index"],
            size,
            leaf["proof"],
            tree["root"],
        ):
            return False
    if left is None:
        if right is None:
            return size == 0
        return bool(right["index"] == 0 and ref < right["case"])
    if right is None:
        return bool(left["index"] == size - 1 and left["case"] < ref)
    return bool(right["index"] == left["index"] + 1 and left["case"] < ref < right["case"])


def _check_case_heads(manifest: dict[str, Any], tree: dict[str, Any]) -> None:
    """Each case's head at the checkpoint in the cases tree, or its absence proven; for a
    selection of every case, every case of the tree present."""
    seen: set[int] = set()
    for ref, info in manifest["cases"].items():
        at = info.get("at_checkpoint")
        absent = info.get("absent_at_checkpoint")
        if at is not None:
            leaf = _case_leaf_hash(ref, at["seq"], at["hash"])
            if not verify_inclusion(leaf, at["index"], tree["size"], at["proof"], tree["root"]):
                raise BundleFailure(
                    ref,
                    f"its head at the checkpoint (#{at['seq']}) is not in the checkpoint's "
                    "cases tree",
                )
            seen.add(at["index"])
        elif absent is not None:
            if not _absent_holds(ref, absent, tree):
                raise BundleFailure(
                    ref, "the proof that the case is newer than the checkpoint does not hold"
                )
        else:
            raise BundleFailure(
                ref,
                "needs at_checkpoint or absent_at_checkpoint: the checkpoint has a cases tree",
            )
    if manifest["filters"]["cases"] is None and len(seen) != tree["size"]:
        raise BundleFailure(
            CHECKPOINT,
            f"the bundle lists {len(seen)} of the {tree['size']} cases the checkpoint signed, "
            "yet its selection is every case: a case is missing",
        )


def _check_against_checkpoint(
    manifest: dict[str, Any],
    checkpoint: dict[str, Any],
    counter: _Counter,
    prefix_root: str | None,
) -> None:
    declared = manifest["checkpoint"]
    size = checkpoint["events"]["size"]
    if declared["proof"] == "whole":
        if counter.events < size:
            raise BundleFailure(
                CHECKPOINT,
                f"the bundle holds {counter.events} entries, fewer than the {size} the "
                "checkpoint counted: entries were deleted",
            )
        if prefix_root != checkpoint["events"]["root"]:
            raise BundleFailure(
                CHECKPOINT,
                f"the first {size} entries do not hash to the checkpoint's events root: "
                "history was removed, reordered or rewritten",
            )
        counter.covered = size
        counter.after = counter.events - size
    elif checkpoint.get("cases") is not None:
        _check_case_heads(manifest, checkpoint["cases"])
    if declared["covered"] != counter.covered or declared["after"] != counter.after:
        raise BundleFailure(
            CHECKPOINT,
            f"{counter.covered} entries are proven in the signed log and {counter.after} "
            f"are after it; the manifest says {declared['covered']} and {declared['after']}",
        )


def _bundle_root(digests: dict[str, str]) -> str:
    """The bundle root: RFC 9162 over ``{"path", "sha256"}`` of every file, by name."""
    tree = MerkleTree()
    for name in sorted(digests):
        tree.add_bytes(_std_canonical({"path": name, "sha256": digests[name]}))
    return tree.root()


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
                and _HEX32.fullmatch(row["salt"])
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
    """Check a bundle folder or ``.zip``; never raises for a bad bundle, only
    :class:`NotABundle` for a path that is no bundle at all.

    ``expect_root`` (the bundle root), ``expect_manifest_sha256`` and ``trusted_key``
    (the checkpoint signer's Ed25519 public key, hex) are what the recipient was told by
    another route; given a trusted key, the checkpoint is always applied and its absence
    fails.  ``workers``: how many processes check the lines of a folder bundle's
    events.jsonl (default: up to 4 when it is at least 64 MB, else 1); the verdict is
    the same.
    """
    path = Path(path)
    counter = _Counter()
    result = BundleVerifyResult(bundle=str(path))
    trusted = trusted_key.lower() if trusted_key else None
    checked = result.checked
    source: _Source | None = None
    try:
        source = _Source(path)
        manifest, manifest_sha, seal = _manifest(source)
        result.manifest_sha256 = manifest_sha
        included = bool(manifest["personal_data"]["included"])
        result.personal_data = included
        result.checkpoint = manifest["checkpoint"] is not None
        listed = [f["path"] for f in manifest["files"]]
        for name in listed:
            if not source.exists(name):
                raise BundleFailure(name, "listed in the manifest but missing from the bundle")
        allowed = {*listed, MANIFEST, MANIFEST_SHA}
        for name in source.names():
            if name not in allowed:
                raise BundleFailure(name, "is in the bundle but not listed in the manifest")
        digests = {MANIFEST: manifest_sha, MANIFEST_SHA: hashlib.sha256(seal).hexdigest()}
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
            digests[entry["path"]] = digest
        checkpoint = _check_checkpoint(source, manifest, trusted)
        passed = _check_events(source, manifest, counter, included, checkpoint, workers)
        result.events_root = passed.root
        if passed.sha256 != events_entry["sha256"]:
            raise BundleFailure(
                EVENTS, f"SHA-256 is {passed.sha256}, the manifest says {events_entry['sha256']}"
            )
        if passed.size != events_entry["bytes"]:
            raise BundleFailure(
                EVENTS, f"is {passed.size} bytes, the manifest says {events_entry['bytes']}"
            )
        digests[EVENTS] = passed.sha256
        checked.append("files")
        count = manifest["events"]["count"]
        if counter.events != count:
            raise BundleFailure(
                EVENTS, f"holds {counter.events} entries, the manifest says {count}"
            )
        checked += ["entries", "chains"]
        if passed.root != manifest["merkle"]["root"]:
            raise BundleFailure(
                MANIFEST,
                f"the Merkle root of the entries is {passed.root}, the manifest says "
                f"{manifest['merkle']['root']}",
            )
        checked.append("events-root")
        inclusion = checkpoint is not None and manifest["checkpoint"]["proof"] == "inclusion"
        _check_cases(manifest, passed.heads, inclusion)
        result.cases = len(manifest["cases"])
        checked.append("case-heads")
        if checkpoint is not None:
            checked.append("checkpoint-signature-trusted" if trusted else "checkpoint-signature")
            _check_against_checkpoint(manifest, checkpoint, counter, passed.prefix_root)
            if inclusion:
                checked.append("checkpoint-inclusion")
                if checkpoint.get("cases") is not None:
                    checked.append("checkpoint-case-heads")
            else:
                checked.append("checkpoint-whole-log")
            result.checkpoint_trusted = trusted is not None
        if included:
            _check_personal(source, manifest, passed.commitments)
            checked.append("personal-data")
        root = _bundle_root(digests)
        result.root = root
        checked.append("bundle-root")
        if expect_root is not None:
            if root != expect_root.lower():
                raise BundleFailure(
                    MANIFEST, f"the bundle root is {root}, you expected {expect_root}"
                )
            checked.append("expected-root")
        if expect_manifest_sha256 is not None:
            if manifest_sha != expect_manifest_sha256.lower():
                raise BundleFailure(
                    MANIFEST,
                    f"the manifest's SHA-256 is {manifest_sha}, you expected "
                    f"{expect_manifest_sha256}",
                )
            checked.append("expected-manifest-sha256")
        result.ok = True
        given = expect_root is not None or expect_manifest_sha256 is not None
        result.not_checked = _not_checked(manifest, checkpoint, counter, trusted, given)
        result.verdict = _verdict(counter, trusted, given)
    except BundleFailure as failure:
        result.first_bad = failure.where
        result.failure = failure.reason
    finally:
        if source is not None:
            source.close()
    result.events = counter.events
    result.covered = counter.covered
    result.after_checkpoint = counter.after
    result.empty = counter.events == 0 if result.ok else None
    return result


def _not_checked(
    manifest: dict[str, Any],
    checkpoint: dict[str, Any] | None,
    counter: _Counter,
    trusted: str | None,
    given: bool,
) -> list[str]:
    """What a passing verdict did not establish, most important first."""
    out = []
    if trusted is None and not given:
        out.append("sender")
    if checkpoint is None:
        out.append("signed-log")
    elif trusted is None:
        out.append("checkpoint-signer")
    if counter.after:
        out.append("entries-after-checkpoint")
    if (
        checkpoint is not None
        and manifest["checkpoint"]["proof"] == "inclusion"
        and checkpoint.get("cases") is None
    ):
        out.append("case-heads-at-checkpoint")
    if any(info["gaps"] for info in manifest["cases"].values()):
        out.append("left-out-entries")
    if not given:
        out.append("selection")
    if counter.events == 0:
        out.append("empty")
    return [*out, "report-content", "register"]


def _verdict(counter: _Counter, trusted: str | None, given: bool) -> str:
    """One line: against what the bundle verified."""
    parts = []
    if trusted is not None:
        parts.append("proven in the log signed by the key you trust")
    if given:
        parts.append("matches what you were given")
    text = " and ".join(parts) if parts else "internally consistent only"
    if counter.events == 0:
        text += "; the bundle holds no entries"
    return text
