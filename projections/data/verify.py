#!/usr/bin/env python3
"""A standalone checker of caseledger audit bundles (format ``caseledger-bundle/2``).

    python3 verify.py [BUNDLE] [--json] [--public-key HEX] [--expect-root HEX]
                      [--expect-manifest-sha256 HEX] [--shipped-rules]

BUNDLE is a bundle folder or its .zip (by default the folder holding this file).  Give
what you received from the sender by another route: --public-key, the Ed25519 key that
signs the partnership's checkpoints (--trusted-key is its older name); --expect-root, the
bundle root; --expect-manifest-sha256, the first word of manifest.sha256.  The verdict
says which clock rules the report was judged with (the shipped rule packs, or a local
override file named with its SHA-256); --shipped-rules fails a bundle judged with an
override.

Exit status: 0 the bundle verifies (the verdict says against what), 1 it does not (the
first failure is named), 2 a usage error or a path that is no bundle.

Python 3.9 or later, standard library only.  It was written from the specification,
docs/bundle-format.md in caseledger's source, and shares no code with caseledger: a second
implementation, so that a fault in one is caught by the other.  Its functions follow the
specification's steps (section 5): layout (1), seal and manifest (2), listing (3), files
(4), checkpoint (5), entries (6), totals (7), cases (8), signed log (9), personal data (10),
bundle root (11).

Why one module: it travels alone, in every bundle and to every inspector, so it is one
long file on purpose.

Canonical JSON: ``json.dumps(value, sort_keys=True, separators=(",", ":"),
ensure_ascii=False)`` in UTF-8.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import string
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:  # for the annotation only: typing.TypeAlias is Python 3.10+
    from typing import TypeAlias

SPEC_FORMAT = "caseledger-bundle/2"
MANIFEST_FILE = "manifest.json"
SEAL_FILE = "manifest.sha256"
ENTRIES_FILE = "events.jsonl"
PROOFS_FILE = "proofs.jsonl"
PERSONAL_FILE = "personal.jsonl"
CHECKPOINT_FILE = "checkpoint.json"
ZERO_HASH = "0" * 64
BLOCK = 1 << 20
LOWER_HEX = frozenset("0123456789abcdef")
DAMAGE = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)

#: Section 6's sentence for each code of ``checked`` and ``not_checked``: "code: text",
#: an indented line continuing the text before it.
SENTENCES = """
files: manifest.sha256, the manifest, and every file's SHA-256 and size; no file unlisted,
    no link, no folder, no '..' or absolute name
entries: every entry's canonical JSON and its hash
chains: every chain link (left-out entries only at the gaps the manifest lists)
events-root: the Merkle root over the entry hashes
case-heads: each case's chain head, entry count and gaps, and the export's selection of cases
checkpoint-signature: the checkpoint's signature, under the key written inside it
checkpoint-signature-trusted: the checkpoint's signature, under the key you gave
checkpoint-whole-log: the bundle's first entries are the whole signed log (its root and its
    count)
checkpoint-inclusion: each entry up to the checkpoint is in the signed log (an inclusion
    proof each)
checkpoint-case-heads: each case's head at the checkpoint is in the signed cases tree (or
    the case is proven newer), so no entry up to it is missing unlisted
personal-data: every personal value against its commitment
bundle-root: the bundle root over every file
expected-root: the bundle root equals the one you gave
expected-manifest-sha256: the manifest's SHA-256 equals the one you gave
rules: which clock rules the report was judged with (rules.json against the manifest's
    rules)
shipped-rules: the report's clocks were judged with the shipped rule packs, no local
    override
sender: nothing was given separately (--public-key, --expect-root or
    --expect-manifest-sha256): the bundle is internally consistent only
checkpoint-signer: who signed the checkpoint: no --public-key was given
signed-log: that the entries are in a signed log: the bundle carries no checkpoint
entries-after-checkpoint: the entries recorded after the checkpoint: no signed log covers
    them
case-heads-at-checkpoint: that no entry of a case is missing up to the checkpoint: the
    checkpoint has no cases tree
left-out-entries: that the entries listed as left out (gaps) fall outside the export's
    filters
selection: that the export's selection (its cases and filters) is the one you asked for:
    give --expect-root
empty: anything about entries: the bundle holds none
report-content: that report.html, its case pages (case-*.html) and timeline.csv say what
    the entries say (only their hashes are checked)
register: the register (who was enrolled, with which roles): it is not in a bundle
rest: the checks after the first failure
"""


def sentences(text: str) -> dict[str, str]:
    """The table above as ``{code: sentence}``."""
    table: dict[str, str] = {}
    code = ""
    for line in text.strip().splitlines():
        if line.startswith(" "):
            table[code] += " " + line.strip()
        else:
            code, _, said = line.partition(": ")
            table[code] = said
    return table


SAY = sentences(SENTENCES)


# --- results ---------------------------------------------------------------------------


class Refusal(Exception):
    """A check failed: ``where`` is the spec's ``first_bad``, ``why`` its ``failure``."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(where + ": " + why)
        self.where = where
        self.why = why


class NoBundle(Exception):
    """Step 0: the path is not a bundle; a usage error (exit 2), no verdict."""


@dataclasses.dataclass
class Tally:
    """What the checks found so far: the verdict's counts and lists (section 6)."""

    entries: int = 0
    covered: int = 0
    after: int = 0
    cases: int = 0
    root: str | None = None
    entries_root: str | None = None
    manifest_sha256: str | None = None
    personal: bool | None = None
    has_checkpoint: bool | None = None
    trusted: bool = False
    checked: list[str] = dataclasses.field(default_factory=list)
    rules: dict[str, Any] | None = None


def verdict_object(
    path: str, tally: Tally, refusal: Refusal | None, extra: list[str]
) -> dict[str, Any]:
    """The ``--json`` object of section 6, from the tally and the first refusal (if any)."""
    passed = refusal is None
    where, why = (None, None) if refusal is None else (refusal.where, refusal.why)
    return {
        "ok": passed,
        "verdict": verdict_sentence(tally, extra) if passed else "does not verify",
        "bundle": path,
        "events": tally.entries,
        "cases": tally.cases,
        "first_bad": where,
        "failure": why,
        "root": tally.root,
        "events_root": tally.entries_root,
        "manifest_sha256": tally.manifest_sha256,
        "personal_data": tally.personal,
        "checkpoint": tally.has_checkpoint,
        "checkpoint_trusted": tally.trusted,
        "covered": tally.covered,
        "after_checkpoint": tally.after,
        "empty": (tally.entries == 0) if passed else None,
        "checked": tally.checked,
        "not_checked": extra if passed else ["rest"],
        "rules": tally.rules,
    }


def verdict_sentence(tally: Tally, extra: list[str]) -> str:
    """Against what the bundle verified: the key you trust, what you were given, or neither."""
    against = []
    if "checkpoint-signature-trusted" in tally.checked:
        against.append("proven in the log signed by the key you trust")
    if {"expected-root", "expected-manifest-sha256"} & set(tally.checked):
        against.append("matches what you were given")
    sentence = " and ".join(against) or "internally consistent only"
    return sentence + ("; the bundle holds no entries" if "empty" in extra else "")


# --- small predicates and encodings ----------------------------------------------------


def integer(value: Any) -> bool:
    """A JSON integer (``True`` is no integer here)."""
    return type(value) is int


def hex64(value: Any) -> bool:
    """64 lower-case hex digits: a SHA-256 or an Ed25519 public key."""
    return isinstance(value, str) and len(value) == 64 and LOWER_HEX.issuperset(value)


def hex_path(value: Any) -> bool:
    """An audit path: a list of SHA-256 hashes in hex."""
    return isinstance(value, list) and all(hex64(node) for node in value)


def size_and_root(value: Any) -> bool:
    """A checkpoint tree ``{"size", "root"}``."""
    return (
        isinstance(value, dict)
        and integer(value.get("size"))
        and value["size"] >= 0
        and hex64(value.get("root"))
    )


#: ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``, built
#: once: ``json.dumps`` with options builds an encoder on every call.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def canon(value: Any) -> bytes:
    """The canonical JSON of a value, as bytes (section "Terms")."""
    return _CANONICAL.encode(value).encode()


def sha256_hex(data: bytes) -> str:
    """The hex SHA-256 of some bytes."""
    return hashlib.sha256(data).hexdigest()


def _no_float(token: str) -> Any:
    """Refuse a non-integer number while parsing: bundles hold integers only."""
    raise OverflowError(token)


_INTEGERS_ONLY = json.JSONDecoder(parse_float=_no_float, parse_constant=_no_float)


def parse_line(data: bytes, where: str) -> Any:
    """One JSON value of a ``.jsonl`` line, refusing any number that is not an integer."""
    try:  # json.loads(data, parse_float=..., parse_constant=...), its decoder built once
        return _INTEGERS_ONLY.decode(data.decode(json.detect_encoding(data), "surrogatepass"))
    except OverflowError:
        raise Refusal(where, "holds a number that is not an integer") from None
    except ValueError:
        raise Refusal(where, "is not valid JSON") from None


def bad_name(name: str) -> str | None:
    """Why a file name breaks section 1's plain-name rule (absolute, '..', backslash)."""
    drive = len(name) > 1 and name[1] == ":" and name[0].isascii() and name[0].isalpha()
    rules = (
        (name[:1] in ("/", "\\") or drive, "is an absolute path: refused"),
        (".." in name.replace("\\", "/").split("/"), "climbs out of the bundle with '..': refused"),
        ("\\" in name, "holds a backslash: refused"),
    )
    return next((why for broken, why in rules if broken), None)


# --- RFC 9162 Merkle trees ------------------------------------------------------------


def leaf_node(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\0" + data).digest()


def inner_node(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\1" + left + right).digest()


class Merkle:
    """An RFC 9162 tree built leaf by leaf (the leaves are 32-byte entry hashes, in hex,
    or any bytes through ``add_bytes``), keeping only the roots of its perfect subtrees."""

    def __init__(self) -> None:
        self.size = 0
        self._peaks: list[tuple[int, bytes]] = []  # (height, root), tallest first

    def add(self, entry_hash: str) -> None:
        """Append the leaf whose bytes are the 32 raw bytes of ``entry_hash``."""
        self.add_bytes(bytes.fromhex(entry_hash))

    def add_bytes(self, data: bytes) -> None:
        """Append a leaf of any bytes."""
        height, node = 0, leaf_node(data)
        while self._peaks and self._peaks[-1][0] == height:
            node = inner_node(self._peaks.pop()[1], node)
            height += 1
        self._peaks.append((height, node))
        self.size += 1

    def root(self) -> str:
        """The tree's root in hex (SHA-256 of nothing for no leaves)."""
        if not self._peaks:
            return sha256_hex(b"")
        node = self._peaks[-1][1]
        for _, peak in self._peaks[-2::-1]:
            node = inner_node(peak, node)
        return node.hex()


def path_root(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes | None:
    """The root an audit path (bottom up) leads to from ``leaf`` at ``index`` of ``size``
    leaves, walking the tree from the top by its split at the largest power of two; None
    when the path has the wrong length for that place."""
    if size == 1:
        return leaf if not path else None
    if not path:
        return None
    split = 1 << ((size - 1).bit_length() - 1)
    if index < split:
        below = path_root(leaf, index, split, path[:-1])
        return None if below is None else inner_node(below, path[-1])
    below = path_root(leaf, index - split, size - split, path[:-1])
    return None if below is None else inner_node(path[-1], below)


def proven(leaf: bytes, index: int, size: int, path: list[str], root: str) -> bool:
    """Whether an audit path shows ``leaf`` (a leaf hash) at ``index`` under ``root``."""
    if not (integer(index) and 0 <= index < size):
        return False
    nodes = [bytes.fromhex(node) for node in path]
    return path_root(leaf, index, size, nodes) == bytes.fromhex(root)


def case_leaf(case: str, seq: int, head: str) -> bytes:
    """A case's leaf hash in a checkpoint's ``cases`` tree (section 4)."""
    return leaf_node(hashlib.sha256(canon({"case": case, "hash": head, "seq": seq})).digest())


# --- Ed25519 (RFC 8032), for the checkpoint's signature --------------------------------

FIELD = (1 << 255) - 19
ORDER = (1 << 252) + 27742317777372353535851937790883648493
CURVE_D = (-121665 * pow(121666, -1, FIELD)) % FIELD
ROOT_MINUS_ONE = pow(2, (FIELD - 1) >> 2, FIELD)
Ext = tuple[int, int, int, int]  # extended twisted Edwards coordinates (X, Y, Z, T)


def _x_for(y: int, odd: int) -> int | None:
    """RFC 8032 5.1.3: the x of a point from its y and the sign bit of x; None if none."""
    if y >= FIELD:
        return None
    u, v = (y * y - 1) % FIELD, (CURVE_D * y * y + 1) % FIELD
    x = u * pow(v, 3, FIELD) * pow(u * pow(v, 7, FIELD), (FIELD - 5) >> 3, FIELD) % FIELD
    check = v * x * x % FIELD
    if check == (-u) % FIELD:
        x = x * ROOT_MINUS_ONE % FIELD
    elif check != u:
        return None
    if x == 0 and odd:
        return None
    return FIELD - x if (x & 1) != odd else x


def _decode_point(data: bytes) -> Ext | None:
    """A curve point from its 32-byte encoding, or None."""
    if len(data) != 32:
        return None
    number = int.from_bytes(data, "little")
    y, odd = number & ((1 << 255) - 1), number >> 255
    x = _x_for(y, odd)
    return None if x is None else (x, y, 1, x * y % FIELD)


def _plus(p: Ext, q: Ext) -> Ext:
    """Point addition (RFC 8032 5.1.4, "add-2008-hwcd-3")."""
    a = (p[1] - p[0]) * (q[1] - q[0]) % FIELD
    b = (p[1] + p[0]) * (q[1] + q[0]) % FIELD
    c = 2 * CURVE_D * p[3] * q[3] % FIELD
    d = 2 * p[2] * q[2] % FIELD
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % FIELD, g * h % FIELD, f * g % FIELD, e * h % FIELD)


def _times(k: int, p: Ext) -> Ext:
    """Scalar multiplication, most significant bit first."""
    acc: Ext = (0, 1, 1, 0)
    for bit in bin(k)[2:]:
        acc = _plus(acc, acc)
        if bit == "1":
            acc = _plus(acc, p)
    return acc


def _same(p: Ext, q: Ext) -> bool:
    """Whether two points in projective form are equal."""
    return (p[0] * q[2] - q[0] * p[2]) % FIELD == 0 and (p[1] * q[2] - q[1] * p[2]) % FIELD == 0


_BASE_Y = 4 * pow(5, -1, FIELD) % FIELD
_BASE = _decode_point(_BASE_Y.to_bytes(32, "little"))


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """RFC 8032 5.1.7: whether ``signature`` is an Ed25519 signature of ``message`` by
    the holder of ``public`` (the cofactorless check ``[S]B = R + [k]A``)."""
    if len(public) != 32 or len(signature) != 64 or _BASE is None:
        return False
    point_a, point_r = _decode_point(public), _decode_point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if point_a is None or point_r is None or s >= ORDER:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little")
    return _same(_times(s, _BASE), _plus(point_r, _times(k % ORDER, point_a)))


# --- step 0 and 1: the bundle's files -------------------------------------------------


class Source:
    """The files of a bundle, by plain name, wherever they are kept."""

    names: list[str]

    def stream(self, name: str) -> IO[bytes]:
        """Open one file for reading."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the source holds open."""


class FolderSource(Source):
    """A bundle folder; step 1 refuses links, folders and other non-plain files."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        found = sorted(os.scandir(folder), key=lambda item: item.name)
        self.names = [item.name for item in found]
        if not {MANIFEST_FILE, SEAL_FILE} & set(self.names):
            raise NoBundle(f"{folder} is not a bundle: it holds no {MANIFEST_FILE} or {SEAL_FILE}")
        for item in found:
            if item.is_symlink():
                raise Refusal(item.name, "is a symbolic link: a bundle holds plain files only")
            if item.is_dir(follow_symlinks=False):
                raise Refusal(item.name, "is a folder: a bundle holds plain files only")
            if not item.is_file(follow_symlinks=False):
                raise Refusal(item.name, "is not a plain file: refused")

    def stream(self, name: str) -> IO[bytes]:
        """Open without following a link put in place since the listing."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
        return os.fdopen(os.open(self.folder / name, flags), "rb")


class ZipSource(Source):
    """A zipped bundle, its files at the top or under one top folder (step 1's member
    rules checked in archive order)."""

    def __init__(self, archive: Path) -> None:
        self.archive = zipfile.ZipFile(archive)
        seen: set[str] = set()
        for member in self.archive.infolist():
            name = member.filename
            problem = bad_name(name)
            if problem is not None:
                raise Refusal(name, problem)
            if name in seen:
                raise Refusal(name, "is in the zip more than once: refused")
            seen.add(name)
            if stat.S_ISLNK(member.external_attr >> 16):
                raise Refusal(name, "is a symbolic link: a bundle holds plain files only")
        files = [name for name in self.archive.namelist() if not name.endswith("/")]
        top = "" if {MANIFEST_FILE, SEAL_FILE} & set(files) else self._top_folder(files)
        if top is None:
            raise NoBundle(f"{archive} is not a bundle: it holds no {MANIFEST_FILE} or {SEAL_FILE}")
        inside = sorted(name[len(top) :] for name in files if name.startswith(top))
        outside = sorted(name for name in files if not name.startswith(top))
        self.top = top
        self.names = inside + outside

    @staticmethod
    def _top_folder(files: list[str]) -> str | None:
        """The one top folder that holds the manifest or its seal, or None."""
        holders = {
            name.rsplit("/", 1)[0] + "/"
            for name in files
            if name.count("/") == 1 and name.rsplit("/", 1)[1] in (MANIFEST_FILE, SEAL_FILE)
        }
        return holders.pop() if len(holders) == 1 else None

    def stream(self, name: str) -> IO[bytes]:
        """Open a member under the bundle's top folder."""
        return self.archive.open(self.top + name)

    def close(self) -> None:
        """Close the archive."""
        self.archive.close()


def open_source(path: Path) -> Source:
    """Step 0 and 1: a folder or a zip holding a bundle, its files' kinds checked."""
    if path.is_dir():
        try:
            return FolderSource(path)
        except OSError as exc:
            raise NoBundle(f"{path} cannot be read: {exc}") from None
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            return ZipSource(path)
        except (Refusal, NoBundle):
            raise
        except Exception as exc:  # a damaged central directory: any error zipfile raises
            raise Refusal(path.name, f"the zip file cannot be read ({exc})") from None
    if path.exists():
        raise NoBundle(f"{path} is not a bundle folder or .zip file")
    raise NoBundle(f"{path} does not exist")


def blocks(source: Source, name: str) -> Iterator[bytes]:
    """A file's bytes in blocks; a read error is the file's failure."""
    try:
        with source.stream(name) as handle:
            while block := handle.read(BLOCK):
                yield block
    except DAMAGE as exc:
        raise Refusal(name, f"cannot be read ({exc})") from None


def whole(source: Source, name: str) -> bytes:
    """A small file's bytes."""
    return b"".join(blocks(source, name))


def digest_and_size(source: Source, name: str) -> tuple[str, int]:
    """A file's SHA-256 and its size in bytes."""
    sha, size = hashlib.sha256(), 0
    for block in blocks(source, name):
        sha.update(block)
        size += len(block)
    return sha.hexdigest(), size


class LineReader:
    """A ``.jsonl`` file's lines without their ``\\n`` (None for an unterminated last
    line), hashing and counting its bytes on the way."""

    def __init__(self, source: Source, name: str) -> None:
        self.source, self.name = source, name
        self.sha = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes | None]:
        rest = b""
        for block in blocks(self.source, self.name):
            self.sha.update(block)
            self.size += len(block)
            *done, rest = (rest + block).split(b"\n")
            yield from done
        if rest:
            yield None


# --- step 2: the seal and the manifest -------------------------------------------------


def read_seal(source: Source) -> tuple[bytes, str]:
    """``manifest.sha256``: its bytes and the SHA-256 it gives for the manifest."""
    if SEAL_FILE not in source.names:
        raise Refusal(SEAL_FILE, "missing: it should hold the SHA-256 of manifest.json")
    seal = whole(source, SEAL_FILE)
    words = seal.decode("utf-8", "replace").split()
    if len(words) != 2 or not hex64(words[0]) or words[1].lstrip("*") != MANIFEST_FILE:
        raise Refusal(SEAL_FILE, "is not one line '<sha256>  manifest.json'")
    return seal, words[0]


def read_manifest(source: Source, sealed: str) -> tuple[dict[str, Any], str]:
    """``manifest.json`` against the seal, parsed and of the form of section 2."""
    if MANIFEST_FILE not in source.names:
        raise Refusal(MANIFEST_FILE, "missing")
    data = whole(source, MANIFEST_FILE)
    digest = sha256_hex(data)
    if digest != sealed:
        raise Refusal(MANIFEST_FILE, f"SHA-256 is {digest}, manifest.sha256 says {sealed}")
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise Refusal(MANIFEST_FILE, f"is not valid JSON ({exc})") from None
    for rule in MANIFEST_RULES:
        finding = rule(manifest)
        if finding is not None:
            code, values = finding
            raise Refusal(MANIFEST_FILE, string.Template(MANIFEST_WHY[code]).substitute(values))
    return manifest, digest


#: Section 2's refusals of a malformed manifest, by code ("code: text", $names filled in).
MANIFEST_WHY = sentences("""
old-format: is a $found manifest; this checker reads caseledger-bundle/2 only (ask for a
    new export)
format: is not a caseledger-bundle/2 manifest
files: files must be a list of {path, sha256, bytes}
file-name: files lists $path, which $problem
file-folder: files lists $path: a bundle's files are plain names, in no folder
file-once: files must list events.jsonl, each file once
file-self: files must not list manifest.json or manifest.sha256
filters: filters must give cases (a list or null) and occurred_from, occurred_to, as_of
count: events.count is missing
merkle: merkle.root is missing
personal: personal_data.included is missing
personal-listed: personal_data.included does not match whether personal.jsonl is listed
personal-values: personal_data.values is missing
checkpoint: checkpoint must be null or {file, version, events, cases, last_position,
    public_key, proof ('whole' or 'inclusion'), proofs_file, covered, after}
checkpoint-listed: checkpoint does not match whether checkpoint.json is listed
proofs-listed: checkpoint.proof does not match whether proofs.jsonl is listed
cases: cases is missing
case: cases.$ref is not an object
case-head: cases.$ref needs events and head {seq, hash}
case-gaps: cases.$ref.gaps must be a list of [first, last] pairs
case-at: cases.$ref.at_checkpoint must be null or {seq, hash, index, proof}
case-absent: cases.$ref.absent_at_checkpoint must be null or {left, right}
case-both: cases.$ref cannot be both at_checkpoint and absent_at_checkpoint
""")
#: A manifest rule's finding: a code of MANIFEST_WHY and the values its text names.
Finding: TypeAlias = "tuple[str, dict[str, str]] | None"  # quoted: it runs on Python 3.9


def rule_format(m: Any) -> Finding:
    """``format`` is this version's; an older one asks for a new export."""
    version = m.get("format") if isinstance(m, dict) else None
    if version == SPEC_FORMAT:
        return None
    older = isinstance(version, str) and version.startswith("caseledger-bundle/")
    return ("old-format", {"found": str(version)}) if older else ("format", {})


def rule_files(m: dict[str, Any]) -> Finding:
    """``files``: ``{path, sha256, bytes}`` each, plain names, each once, with the entries."""
    rows = m.get("files")
    if not isinstance(rows, list) or not all(file_row(row) for row in rows):
        return ("files", {})
    names = listed(m)
    for name in names:
        problem = bad_name(name)
        if problem is not None:
            return ("file-name", {"path": repr(name), "problem": problem})
        if "/" in name or name in ("", "."):
            return ("file-folder", {"path": repr(name)})
    if len(set(names)) < len(names) or ENTRIES_FILE not in names:
        return ("file-once", {})
    if MANIFEST_FILE in names or SEAL_FILE in names:
        return ("file-self", {})
    return None


def file_row(row: Any) -> bool:
    """One ``{path, sha256, bytes}`` of ``files``."""
    return (
        isinstance(row, dict)
        and isinstance(row.get("path"), str)
        and hex64(row.get("sha256"))
        and integer(row.get("bytes"))
    )


def rule_filters(m: dict[str, Any]) -> Finding:
    """``filters``: the selection's cases (a list of references or null) and its dates."""
    chosen = m.get("filters")
    if not isinstance(chosen, dict):
        return ("filters", {})
    refs = chosen.get("cases")
    if refs is not None and not (isinstance(refs, list) and all(type(r) is str for r in refs)):
        return ("filters", {})
    for bound in ("occurred_from", "occurred_to", "as_of"):
        if chosen.get(bound) is not None and not isinstance(chosen[bound], dict):
            return ("filters", {})
    return None


def rule_counts(m: dict[str, Any]) -> Finding:
    """``events.count``, ``merkle.root`` and ``personal_data`` against the listing."""
    if not integer(member(m, "events", "count")):
        return ("count", {})
    if not hex64(member(m, "merkle", "root")):
        return ("merkle", {})
    included = member(m, "personal_data", "included")
    if type(included) is not bool:
        return ("personal", {})
    if included != (PERSONAL_FILE in listed(m)):
        return ("personal-listed", {})
    if included and not integer(member(m, "personal_data", "values")):
        return ("personal-values", {})
    return None


def member(m: dict[str, Any], outer: str, inner: str) -> Any:
    """``m[outer][inner]``, or None when ``m[outer]`` is no object or lacks it."""
    holder = m.get(outer)
    return holder.get(inner) if isinstance(holder, dict) else None


def rule_checkpoint(m: dict[str, Any]) -> Finding:
    """``checkpoint``: null or its description, agreeing with the files listed."""
    described = m.get("checkpoint")
    if described is not None and not checkpoint_described(described):
        return ("checkpoint", {})
    names = listed(m)
    if (described is not None) != (CHECKPOINT_FILE in names):
        return ("checkpoint-listed", {})
    with_proofs = described is not None and described["proof"] == "inclusion"
    if with_proofs != (PROOFS_FILE in names):
        return ("proofs-listed", {})
    return None


def checkpoint_described(d: Any) -> bool:
    """Whether the manifest's ``checkpoint`` has every key of section 2, of its kind."""
    if not isinstance(d, dict) or d.get("file") != CHECKPOINT_FILE:
        return False
    counts = [d.get(name) for name in ("version", "last_position", "covered", "after")]
    trees_ok = size_and_root(d.get("events")) and (
        d.get("cases") is None or size_and_root(d["cases"])
    )
    kind = d.get("proof")
    proofs_file = {"whole": None, "inclusion": PROOFS_FILE}
    return bool(
        all(integer(count) for count in counts)
        and trees_ok
        and isinstance(d.get("public_key"), str)
        and isinstance(kind, str)
        and kind in proofs_file
        and d.get("proofs_file") == proofs_file[kind]
    )


def rule_cases(m: dict[str, Any]) -> Finding:
    """``cases``: each with its count, head and gaps, and at most one checkpoint proof."""
    cases = m.get("cases")
    if not isinstance(cases, dict):
        return ("cases", {})
    for ref in cases:
        code = case_problem(cases[ref])
        if code is not None:
            return (code, {"ref": ref})
    return None


def case_problem(case: Any) -> str | None:
    """The code of what is wrong with one member of ``cases``, or None."""
    if not isinstance(case, dict):
        return "case"
    head = case.get("head")
    if not (isinstance(head, dict) and integer(head.get("seq")) and integer(case.get("events"))):
        return "case-head"
    if not isinstance(head.get("hash"), str):
        return "case-head"
    gaps = case.get("gaps")
    if not isinstance(gaps, list) or not all(gap_pair(gap) for gap in gaps):
        return "case-gaps"
    at, absent = case.get("at_checkpoint"), case.get("absent_at_checkpoint")
    if at is not None and not cases_leaf_form(at, named=False):
        return "case-at"
    if absent is not None:
        sides = [absent.get(s) for s in ("left", "right")] if isinstance(absent, dict) else [0]
        if not all(side is None or cases_leaf_form(side, named=True) for side in sides):
            return "case-absent"
        if at is not None:
            return "case-both"
    return None


def gap_pair(gap: Any) -> bool:
    """A ``[first, last]`` range of left-out ``seq`` numbers."""
    return isinstance(gap, list) and len(gap) == 2 and integer(gap[0]) and integer(gap[1])


def cases_leaf_form(leaf: Any, named: bool) -> bool:
    """A leaf of the cases tree with its proof: ``{[case,] seq, hash, index, proof}``."""
    return (
        isinstance(leaf, dict)
        and (isinstance(leaf.get("case"), str) or not named)
        and integer(leaf.get("seq"))
        and hex64(leaf.get("hash"))
        and integer(leaf.get("index"))
        and hex_path(leaf.get("proof"))
    )


def listed(m: dict[str, Any]) -> list[str]:
    """The names the manifest's ``files`` lists."""
    return [item["path"] for item in m["files"]]


MANIFEST_RULES: tuple[Callable[[Any], Finding], ...] = (
    rule_format,
    rule_files,
    rule_filters,
    rule_counts,
    rule_checkpoint,
    rule_cases,
)


# --- steps 3 and 4: the listing and the files -----------------------------------------


def check_listing(source: Source, manifest: dict[str, Any]) -> None:
    """Step 3: every listed file is there, and nothing else is."""
    names = listed(manifest)
    missing = [name for name in names if name not in source.names]
    if missing:
        raise Refusal(missing[0], "listed in the manifest but missing from the bundle")
    allowed = {*names, MANIFEST_FILE, SEAL_FILE}
    extra = [name for name in source.names if name not in allowed]
    if extra:
        raise Refusal(extra[0], "is in the bundle but not listed in the manifest")


def compare_file(name: str, digest: str, size: int, item: dict[str, Any]) -> None:
    """A file's SHA-256, then its size, against its line of ``files``."""
    if digest != item["sha256"]:
        raise Refusal(name, f"SHA-256 is {digest}, the manifest says {item['sha256']}")
    if size != item["bytes"]:
        raise Refusal(name, f"is {size} bytes, the manifest says {item['bytes']}")


def judged_by(table: Any, name: str) -> tuple[str, Any]:
    """The pair (shipped packs' hash, override or None) a rules table states."""
    shape_ok = type(table) is dict and type(table.get("shipped")) is str
    extra = table.get("override") if shape_ok else None
    if shape_ok and extra is not None:
        shape_ok = type(extra) is dict and type(extra.get("sha256")) is str
    if not shape_ok:
        raise Refusal(name, "rules: not the {file, shipped, override} record of the spec")
    return table["shipped"], extra


def check_rules(source: Source, manifest: dict[str, Any], tally: Tally, strict: bool) -> None:
    """After step 4: which clock rules judged the report (the manifest's ``rules``, and
    rules.json saying the same); ``strict`` (--shipped-rules) refuses an override, or a
    bundle that does not say."""
    stated = manifest.get("rules")
    if stated is None:
        if strict:
            raise Refusal(
                MANIFEST_FILE,
                "no rules record: nothing shows its clocks were judged with the shipped "
                "rule packs (--shipped-rules)",
            )
        return
    pair = judged_by(stated, MANIFEST_FILE)
    kept_name = stated.get("file")
    listed_names = [item["path"] for item in manifest["files"]]
    if kept_name not in listed_names:
        raise Refusal(MANIFEST_FILE, "rules.file names no file of the manifest's list")
    try:
        kept_pair = judged_by(json.loads(whole(source, kept_name)), kept_name)
    except ValueError:
        raise Refusal(kept_name, "cannot be read as JSON") from None
    if kept_pair != pair:
        raise Refusal(kept_name, "disagrees with the manifest about the rules used")
    tally.rules = {"shipped": pair[0], "override": pair[1]}
    tally.checked.append("rules")
    if not strict:
        return
    if pair[1] is not None:
        who = pair[1].get("path")
        raise Refusal(
            kept_name,
            f"the report's clocks come from a local override ({who}, sha256 "
            f"{pair[1]['sha256']}): not the shipped rule packs (--shipped-rules)",
        )
    tally.checked.append("shipped-rules")


def rules_sentence(rules: dict[str, Any] | None) -> str:
    """Which clock rules judged the report, in a line for people."""
    if not rules:
        return "rules: not stated by this bundle (made before exports recorded them)"
    extra, base = rules["override"], rules["shipped"]
    if extra:
        return (
            f"rules: LOCAL override {extra.get('path')} (sha256 {extra['sha256']}) judged "
            f"the clocks, not the shipped rule packs (sha256 {base})"
        )
    return f"rules: the shipped rule packs (sha256 {base}) judged the clocks"


def check_files(source: Source, manifest: dict[str, Any]) -> dict[str, str]:
    """Step 4: each listed file but the entries, in ``files`` order; their SHA-256s."""
    found: dict[str, str] = {}
    for item in manifest["files"]:
        if item["path"] != ENTRIES_FILE:
            digest, size = digest_and_size(source, item["path"])
            compare_file(item["path"], digest, size, item)
            found[item["path"]] = digest
    return found


# --- step 5: the checkpoint -----------------------------------------------------------


def check_checkpoint(
    source: Source, manifest: dict[str, Any], key: str | None
) -> dict[str, Any] | None:
    """Step 5 (section 4): the signed checkpoint, under your key when you give one."""
    claim = manifest["checkpoint"]
    if claim is None:
        if key is None:
            return None
        raise Refusal(
            CHECKPOINT_FILE,
            "you gave a trusted key, but the bundle carries no signed checkpoint to check it "
            "against",
        )
    try:
        signed = json.loads(whole(source, CHECKPOINT_FILE))
    except ValueError:
        raise Refusal(CHECKPOINT_FILE, "is not valid JSON") from None
    form = (
        isinstance(signed, dict)
        and signed.get("version") == 2
        and isinstance(signed.get("public_key"), str)
        and isinstance(signed.get("signature"), str)
        and size_and_root(signed.get("events"))
        and (signed.get("cases") is None or size_and_root(signed["cases"]))
        and integer(signed.get("last_position"))
    )
    if not form:
        raise Refusal(
            CHECKPOINT_FILE,
            "is not a version 2 checkpoint with events, last_position and a signature",
        )
    if key is not None and signed["public_key"] != key:
        raise Refusal(CHECKPOINT_FILE, "was not signed by the key you trust")
    if not signature_holds(signed, key or signed["public_key"]):
        raise Refusal(CHECKPOINT_FILE, "the checkpoint's signature does not verify")
    for field in ("version", "events", "cases", "last_position", "public_key"):
        if signed.get(field) != claim.get(field):
            raise Refusal(
                CHECKPOINT_FILE,
                f"does not match the checkpoint the manifest describes ({field})",
            )
    return dict(signed)


def signature_holds(signed: dict[str, Any], key: str) -> bool:
    """Ed25519 over the canonical JSON of every key of the checkpoint but ``signature``."""
    try:
        message = canon({name: value for name, value in signed.items() if name != "signature"})
        return ed25519_verify(bytes.fromhex(key), message, bytes.fromhex(signed["signature"]))
    except ValueError:
        return False


# --- step 6: the entries, with their proofs -------------------------------------------


@dataclasses.dataclass
class Chain:
    """One case's chain as read so far: its last entry, its count, its next listed gap."""

    seq: int = 0
    head: str = ZERO_HASH
    count: int = 0
    next_gap: int = 0


@dataclasses.dataclass
class Walk:
    """What the walk over ``events.jsonl`` gives the later steps."""

    chains: dict[str, Chain]
    commitments: dict[tuple[str, int, str], Any]
    digest: str
    size: int
    root: str
    signed_prefix_root: str | None


class ProofLines:
    """``proofs.jsonl``, one line per entry (section 4.2), and the order its indices keep."""

    def __init__(self, source: Source, signed: dict[str, Any]) -> None:
        self.lines = iter(LineReader(source, PROOFS_FILE))
        self.number = 0
        self.signed = signed
        self.last_index = -1
        self.newer_seen = False

    def take(self) -> tuple[Any, int]:
        """The next line, of one of the two forms, in canonical JSON."""
        self.number += 1
        where = f"{PROOFS_FILE} line {self.number}"
        line = next(self.lines, b"\n")
        if line == b"\n":  # no line is b"\n": it stands for the end of the file
            raise Refusal(where, "is missing: proofs.jsonl needs one line per line of events.jsonl")
        if line is None:
            raise Refusal(where, "the file ends in the middle of a line")
        row = parse_line(line, where)
        keys = set(row) if isinstance(row, dict) else set()
        index = row.get("index") if keys else None
        good = (keys == {"index"} and index is None) or (
            keys == {"index", "proof"} and integer(index) and hex_path(row["proof"])
        )
        if not good:
            raise Refusal(where, 'must be {"index": null} or {"index": N, "proof": [hex, ...]}')
        if canon(row) != line:
            raise Refusal(where, "is not canonical JSON")
        return row, self.number

    def judge(self, ref: str, entry: dict[str, Any], case: dict[str, Any]) -> bool:
        """Section 4.2 items 1 and 2 for one entry; True when it is proven in the log."""
        row, number = self.take()
        head_then = case.get("at_checkpoint") if self.signed.get("cases") is not None else None
        tree_of_cases = self.signed.get("cases") is not None
        if row["index"] is None:
            self.newer(ref, entry, head_then)
            return False
        pos, last = entry["position"], self.signed["last_position"]
        problem = (
            "claims an inclusion proof but comes after an entry recorded after the checkpoint"
            if self.newer_seen
            else f"its leaf index {row['index']} is not after the previous entry's"
            if row["index"] <= self.last_index
            else f"claims an inclusion proof, but its position {pos} is after the checkpoint's"
            if pos > last
            else "claims an inclusion proof, but it is after the case's head at the checkpoint"
            if tree_of_cases and (head_then is None or entry["seq"] > head_then["seq"])
            else None
        )
        if problem is not None:
            raise Refusal(ref, problem)
        events = self.signed["events"]
        leaf = leaf_node(bytes.fromhex(entry["hash"]))
        if not proven(leaf, row["index"], events["size"], row["proof"], events["root"]):
            raise Refusal(
                ref,
                f"is not in the signed log: its inclusion proof ({PROOFS_FILE} line "
                f"{number}) does not verify against the checkpoint's events root",
            )
        self.last_index = row["index"]
        return True

    def newer(self, ref: str, entry: dict[str, Any], head_then: dict[str, Any] | None) -> None:
        """Item 2: an entry without an index is after the checkpoint, and after the
        case's head in it."""
        last = self.signed["last_position"]
        if entry["position"] <= last:
            raise Refusal(
                ref,
                f"carries no inclusion proof, yet its position {entry['position']} is within "
                f"the checkpoint's (up to {last})",
            )
        if head_then is not None and entry["seq"] <= head_then["seq"]:
            raise Refusal(
                ref,
                "carries no inclusion proof, yet the case's head at the checkpoint is #"
                + str(head_then["seq"]),
            )
        self.newer_seen = True

    def finish(self) -> None:
        """``proofs.jsonl`` has no more lines than ``events.jsonl``."""
        if next(self.lines, b"\n") != b"\n":
            raise Refusal(
                f"{PROOFS_FILE} line {self.number + 1}", "is more than events.jsonl has lines"
            )


def entry_fields(entry: Any, where: str) -> None:
    """The keys every entry has, of the right kinds (step 6)."""
    if not isinstance(entry, dict):
        raise Refusal(where, "is not a JSON object")
    seq = entry.get("seq")
    if not (
        isinstance(entry.get("case"), str)
        and isinstance(seq, int)
        and integer(seq)
        and seq >= 1
        and integer(entry.get("position"))
    ):
        raise Refusal(where, "needs case, seq and position")
    if not hex64(entry.get("hash")):
        raise Refusal(where, "needs a hash of 64 hex digits")
    if not hex64(entry.get("prev_hash")):
        raise Refusal(where, "needs a prev_hash of 64 hex digits")


def entry_integrity(ref: str, entry: dict[str, Any], line: bytes, number: int) -> None:
    """The line is the entry's canonical JSON, and ``hash`` is its body's SHA-256."""
    try:
        text = canon(entry)
    except ValueError:
        raise Refusal(ref, "cannot be written as canonical JSON") from None
    if text != line:
        raise Refusal(ref, f"line {number} is not the entry's canonical JSON")
    body = dict(entry)
    del body["hash"], body["position"]
    if sha256_hex(canon(body)) != entry["hash"]:
        raise Refusal(ref, "does not match its hash (the entry was altered)")


def chain_link(ref: str, entry: dict[str, Any], chain: Chain, gaps: list[list[int]]) -> None:
    """``seq`` follows the case's previous entry, linked by ``prev_hash`` or across the
    case's next listed gap."""
    case, seq = entry["case"], entry["seq"]
    if seq <= chain.seq:
        raise Refusal(ref, f"comes after {case}#{chain.seq}: entries repeated or out of order")
    if seq > chain.seq + 1:
        skipped = [chain.seq + 1, seq - 1]
        if chain.next_gap < len(gaps) and gaps[chain.next_gap] == skipped:
            chain.next_gap += 1
            return
        raise Refusal(
            ref,
            f"entries {skipped[0]} to {skipped[1]} of {case} are missing and the manifest "
            "lists no such gap",
        )
    if entry["prev_hash"] != chain.head:
        before = f"{case}#{chain.seq}" if chain.seq else "the start of the chain"
        raise Refusal(ref, f"prev_hash does not link to {before}")


def commitments_of(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry's personal-data commitments: ``personal``, or a correction's
    ``changes.personal``."""
    own = entry.get("personal")
    if isinstance(own, dict):
        return own
    changes = entry.get("changes")
    if entry.get("type") != "EntryCorrected" or not isinstance(changes, dict):
        return {}
    inner = changes.get("personal")
    return inner if isinstance(inner, dict) else {}


def walk_entries(
    source: Source,
    manifest: dict[str, Any],
    signed: dict[str, Any] | None,
    tally: Tally,
) -> Walk:
    """Step 6, in one pass over ``events.jsonl`` (and ``proofs.jsonl`` beside it)."""
    cases: dict[str, Any] = manifest["cases"]
    whole_log = signed is not None and manifest["checkpoint"]["proof"] == "whole"
    proofs = ProofLines(source, signed) if signed is not None and not whole_log else None
    prefix = signed["events"]["size"] if whole_log and signed is not None else -1
    want_personal = manifest["personal_data"]["included"]
    chains: dict[str, Chain] = {}
    commitments: dict[tuple[str, int, str], Any] = {}
    tree = Merkle()
    prefix_root = tree.root() if prefix == 0 else None
    previous_position = 0
    reader = LineReader(source, ENTRIES_FILE)
    for number, line in enumerate(reader, 1):
        where = f"{ENTRIES_FILE} line {number}"
        if line is None:
            raise Refusal(where, "the file ends in the middle of a line")
        entry = parse_line(line, where)
        entry_fields(entry, where)
        case, seq, position = entry["case"], entry["seq"], entry["position"]
        ref = f"{case}#{seq}"
        entry_integrity(ref, entry, line, number)
        if position <= previous_position:
            raise Refusal(ref, f"position {position} is not after {previous_position}")
        previous_position = position
        if case not in cases:
            raise Refusal(ref, f"case {case} is not listed in the manifest")
        chain = chains.get(case)
        if chain is None:
            chain = chains[case] = Chain()
        chain_link(ref, entry, chain, cases[case]["gaps"])
        if proofs is not None:
            if proofs.judge(ref, entry, cases[case]):
                tally.covered += 1
            else:
                tally.after += 1
            at = cases[case].get("at_checkpoint")
            if at is not None and at["seq"] == seq and at["hash"] != entry["hash"]:
                raise Refusal(ref, "is not the case's head that the checkpoint signed")
        chain.seq, chain.head = seq, entry["hash"]
        chain.count += 1
        tree.add(entry["hash"])
        if tree.size == prefix:
            prefix_root = tree.root()
        if want_personal:
            for field, commitment in commitments_of(entry).items():
                commitments[case, seq, field] = commitment
        tally.entries += 1
    if proofs is not None:
        proofs.finish()
    return Walk(chains, commitments, reader.sha.hexdigest(), reader.size, tree.root(), prefix_root)


# --- steps 7 and 8: totals and cases --------------------------------------------------


def check_totals(manifest: dict[str, Any], walk: Walk, tally: Tally) -> None:
    """Step 7: the entries' SHA-256 and size, then their count, then their root."""
    item = next(item for item in manifest["files"] if item["path"] == ENTRIES_FILE)
    compare_file(ENTRIES_FILE, walk.digest, walk.size, item)
    tally.checked.append("files")
    declared = manifest["events"]["count"]
    if tally.entries != declared:
        raise Refusal(ENTRIES_FILE, f"holds {tally.entries} entries, the manifest says {declared}")
    tally.checked += ["entries", "chains"]
    claimed = manifest["merkle"]["root"]
    if walk.root != claimed:
        raise Refusal(
            MANIFEST_FILE,
            f"the Merkle root of the entries is {walk.root}, the manifest says {claimed}",
        )
    tally.checked.append("events-root")


def narrows(manifest: dict[str, Any]) -> bool:
    """Section 2: the filters narrow when a date or as-of filter is set."""
    filters = manifest["filters"]
    return any(filters.get(key) is not None for key in ("occurred_from", "occurred_to", "as_of"))


def check_cases(manifest: dict[str, Any], chains: dict[str, Chain], inclusion: bool) -> None:
    """Step 8: each case's head, count and gaps (with 4.2's trailing gap), then 4.3."""
    narrowed = narrows(manifest)
    for ref, case in manifest["cases"].items():
        chain = chains.get(ref, Chain())
        head = case["head"]
        if head.get("seq") != chain.seq or head.get("hash") != chain.head:
            raise Refusal(
                ref,
                f"the chain head is {ref}#{chain.seq} {chain.head}, the manifest says otherwise",
            )
        if chain.count != case["events"]:
            raise Refusal(ref, f"has {chain.count} entries, the manifest says {case['events']}")
        gaps, used = case["gaps"], chain.next_gap
        then = case.get("at_checkpoint") if inclusion else None
        if then is not None and chain.seq < then["seq"]:
            if used >= len(gaps) or gaps[used] != [chain.seq + 1, then["seq"]]:
                raise Refusal(
                    ref,
                    f"entries {chain.seq + 1} to {then['seq']} of {ref} were in the signed "
                    "log at the checkpoint, are not in the bundle, and the manifest lists no "
                    "such gap",
                )
            used += 1
        if used != len(gaps):
            raise Refusal(ref, "the manifest lists a gap that is not in events.jsonl")
        if gaps and not narrowed:
            raise Refusal(
                ref,
                "the manifest lists left-out entries, but the export's filters (no dates, "
                "no as-of time) leave none out",
            )
    check_selection(manifest, narrowed)


def check_selection(manifest: dict[str, Any], narrowed: bool) -> None:
    """Section 4.3: the cases are the selection's; a whole selection lists no empty case."""
    chosen = manifest["filters"]["cases"]
    present = manifest["cases"]
    if chosen is None:
        if not narrowed:
            for ref, case in present.items():
                if case["events"] == 0:
                    raise Refusal(ref, "is listed with no entries in a bundle that leaves none out")
        return
    for ref in chosen:
        if ref not in present:
            raise Refusal(ref, "is in the export's selection but not in the bundle")
    for ref in present:
        if ref not in chosen:
            raise Refusal(ref, "is in the bundle but not in the export's selection")


# --- step 9: against the signed log ---------------------------------------------------


def check_whole_log(signed: dict[str, Any], walk: Walk, tally: Tally) -> None:
    """Section 4.1: the first ``events.size`` entries are exactly the signed log."""
    size = signed["events"]["size"]
    if tally.entries < size:
        raise Refusal(
            CHECKPOINT_FILE,
            f"the bundle holds {tally.entries} entries, fewer than the {size} the checkpoint "
            "counted: entries were deleted",
        )
    if walk.signed_prefix_root != signed["events"]["root"]:
        raise Refusal(
            CHECKPOINT_FILE,
            f"the first {size} entries do not hash to the checkpoint's events root: history "
            "was removed, reordered or rewritten",
        )
    tally.covered, tally.after = size, tally.entries - size


def check_case_heads(manifest: dict[str, Any], tree: dict[str, Any]) -> None:
    """Section 4.2, after the entries: each case's head at the checkpoint, or its absence."""
    indices: set[int] = set()
    for ref, case in manifest["cases"].items():
        then, absent = case.get("at_checkpoint"), case.get("absent_at_checkpoint")
        if then is not None:
            leaf = case_leaf(ref, then["seq"], then["hash"])
            if not proven(leaf, then["index"], tree["size"], then["proof"], tree["root"]):
                raise Refusal(
                    ref,
                    f"its head at the checkpoint (#{then['seq']}) is not in the "
                    "checkpoint's cases tree",
                )
            indices.add(then["index"])
        elif absent is not None:
            if not absence_holds(ref, absent, tree):
                why = "the proof that the case is newer than the checkpoint does not hold"
                raise Refusal(ref, why)
        else:
            raise Refusal(
                ref,
                "needs at_checkpoint or absent_at_checkpoint: the checkpoint has a cases tree",
            )
    if manifest["filters"]["cases"] is None and len(indices) != tree["size"]:
        raise Refusal(
            CHECKPOINT_FILE,
            f"the bundle lists {len(indices)} of the {tree['size']} cases the checkpoint "
            "signed, yet its selection is every case: a case is missing",
        )


def absence_holds(ref: str, absent: dict[str, Any], tree: dict[str, Any]) -> bool:
    """Section 4.2: two adjacent leaves of the sorted cases tree enclose ``ref``."""
    size = tree["size"]
    sides: list[dict[str, Any] | None] = [absent.get("left"), absent.get("right")]
    for leaf in sides:
        if leaf is not None and not proven(
            case_leaf(leaf["case"], leaf["seq"], leaf["hash"]),
            leaf["index"],
            size,
            leaf["proof"],
            tree["root"],
        ):
            return False
    left, right = sides
    if right is None:
        return (
            bool(size == 0)
            if left is None
            else bool(left["index"] == size - 1 and left["case"] < ref)
        )
    if left is None:
        return bool(right["index"] == 0 and ref < right["case"])
    return bool(left["index"] + 1 == right["index"] and left["case"] < ref < right["case"])


def check_signed_log(
    manifest: dict[str, Any], signed: dict[str, Any], walk: Walk, tally: Tally, key: str | None
) -> None:
    """Step 9: 4.1 or the cases of 4.2, then the manifest's ``covered`` and ``after``."""
    claim = manifest["checkpoint"]
    tally.checked.append("checkpoint-signature-trusted" if key else "checkpoint-signature")
    if claim["proof"] == "whole":
        check_whole_log(signed, walk, tally)
    elif signed.get("cases") is not None:
        check_case_heads(manifest, signed["cases"])
    if (tally.covered, tally.after) != (claim["covered"], claim["after"]):
        raise Refusal(
            CHECKPOINT_FILE,
            f"{tally.covered} entries are proven in the signed log and {tally.after} are after "
            f"it; the manifest says {claim['covered']} and {claim['after']}",
        )
    if claim["proof"] == "whole":
        tally.checked.append("checkpoint-whole-log")
    else:
        tally.checked.append("checkpoint-inclusion")
        if signed.get("cases") is not None:
            tally.checked.append("checkpoint-case-heads")
    tally.trusted = key is not None


# --- step 10: personal data -----------------------------------------------------------


def personal_row(row: Any) -> bool:
    """A line of ``personal.jsonl``: case, seq, field, value and a 16-byte hex salt."""
    if not isinstance(row, dict) or "value" not in row:
        return False
    salt = row.get("salt")
    return (
        isinstance(row.get("case"), str)
        and integer(row.get("seq"))
        and isinstance(row.get("field"), str)
        and isinstance(salt, str)
        and len(salt) == 32
        and LOWER_HEX.issuperset(salt)
    )


def check_personal(
    source: Source, manifest: dict[str, Any], commitments: dict[tuple[str, int, str], Any]
) -> None:
    """Step 10: each value canonical, once, and equal to its entry's commitment; the count."""
    seen: set[tuple[str, int, str]] = set()
    count = 0
    for count, line in enumerate(LineReader(source, PERSONAL_FILE), 1):
        where = f"{PERSONAL_FILE} line {count}"
        if line is None:
            raise Refusal(where, "the file ends in the middle of a line")
        row = parse_line(line, where)
        if not personal_row(row):
            raise Refusal(where, "needs case, seq, field, value and a 16-byte hex salt")
        label = f"{row['case']}#{row['seq']} personal.{row['field']}"
        try:
            canonical_line = canon(row) == line
        except ValueError:
            canonical_line = False
        if not canonical_line:
            raise Refusal(label, f"line {count} of {PERSONAL_FILE} is not canonical JSON")
        key = (row["case"], row["seq"], row["field"])
        if key in seen:
            raise Refusal(label, "appears twice")
        seen.add(key)
        if key not in commitments or commitments[key] is None:
            raise Refusal(label, "has no commitment in the exported entries")
        if sha256_hex(bytes.fromhex(row["salt"]) + canon(row["value"])) != commitments[key]:
            raise Refusal(label, "does not match its commitment in the hashed entry")
    expected = manifest["personal_data"]["values"]
    if count != expected:
        raise Refusal(PERSONAL_FILE, f"holds {count} values, the manifest says {expected}")


# --- step 11: the bundle root and what you were given ---------------------------------


def bundle_root(digests: dict[str, str]) -> str:
    """Section 3: the RFC 9162 root over ``{"path", "sha256"}`` of every file, by name."""
    tree = Merkle()
    for name in sorted(digests):
        tree.add_bytes(canon({"path": name, "sha256": digests[name]}))
    return tree.root()


def check_given(tally: Tally, expect_root: str | None, expect_manifest: str | None) -> None:
    """Step 11's comparisons with the values received by another route."""
    if expect_root is not None:
        if tally.root != expect_root.lower():
            raise Refusal(
                MANIFEST_FILE, f"the bundle root is {tally.root}, you expected {expect_root}"
            )
        tally.checked.append("expected-root")
    if expect_manifest is not None:
        if tally.manifest_sha256 != expect_manifest.lower():
            raise Refusal(
                MANIFEST_FILE,
                f"the manifest's SHA-256 is {tally.manifest_sha256}, you expected "
                f"{expect_manifest}",
            )
        tally.checked.append("expected-manifest-sha256")


def unproven(
    manifest: dict[str, Any],
    signed: dict[str, Any] | None,
    tally: Tally,
    key: str | None,
    given: bool,
) -> list[str]:
    """Section 6's ``not_checked`` codes of a passing bundle, in the spec's order."""
    codes = []
    if key is None and not given:
        codes.append("sender")
    if signed is None:
        codes.append("signed-log")
    elif key is None:
        codes.append("checkpoint-signer")
    if tally.after > 0:
        codes.append("entries-after-checkpoint")
    if (
        signed is not None
        and signed.get("cases") is None
        and manifest["checkpoint"]["proof"] == "inclusion"
    ):
        codes.append("case-heads-at-checkpoint")
    if any(case["gaps"] for case in manifest["cases"].values()):
        codes.append("left-out-entries")
    if not given:
        codes.append("selection")
    if tally.entries == 0:
        codes.append("empty")
    return [*codes, "report-content", "register"]


# --- the whole check ------------------------------------------------------------------


def verify(
    path: str | Path,
    expect_root: str | None = None,
    expect_manifest: str | None = None,
    trusted_key: str | None = None,
    shipped_rules: bool = False,
) -> dict[str, Any]:
    """Run section 5's checks in order on the bundle at ``path``; the verdict of section 6.
    Raises NoBundle (a usage error) when the path is no bundle at all."""
    key = trusted_key.lower() if trusted_key else None
    tally = Tally()
    extra: list[str] = []
    source: Source | None = None
    try:
        source = open_source(Path(path))
        seal, sealed = read_seal(source)
        manifest, tally.manifest_sha256 = read_manifest(source, sealed)
        tally.personal = manifest["personal_data"]["included"]
        tally.has_checkpoint = manifest["checkpoint"] is not None
        check_listing(source, manifest)
        digests = check_files(source, manifest)
        check_rules(source, manifest, tally, shipped_rules)
        digests[MANIFEST_FILE], digests[SEAL_FILE] = sealed, sha256_hex(seal)
        signed = check_checkpoint(source, manifest, key)
        walk = walk_entries(source, manifest, signed, tally)
        tally.entries_root = walk.root
        check_totals(manifest, walk, tally)
        digests[ENTRIES_FILE] = walk.digest
        inclusion = signed is not None and manifest["checkpoint"]["proof"] == "inclusion"
        check_cases(manifest, walk.chains, inclusion)
        tally.cases = len(manifest["cases"])
        tally.checked.append("case-heads")
        if signed is not None:
            check_signed_log(manifest, signed, walk, tally, key)
        if tally.personal:
            check_personal(source, manifest, walk.commitments)
            tally.checked.append("personal-data")
        tally.root = bundle_root(digests)
        tally.checked.append("bundle-root")
        check_given(tally, expect_root, expect_manifest)
        given = expect_root is not None or expect_manifest is not None
        extra = unproven(manifest, signed, tally, key, given)
    except Refusal as refusal:
        return verdict_object(str(path), tally, refusal, extra)
    finally:
        if source is not None:
            source.close()
    return verdict_object(str(path), tally, None, extra)


# --- the command line -----------------------------------------------------------------

USAGE = (
    "usage: python3 verify.py [BUNDLE] [--json] [--public-key HEX] [--expect-root HEX] "
    "[--expect-manifest-sha256 HEX] [--shipped-rules]"
)
VALUED = {
    "--public-key": "--public-key",
    "--trusted-key": "--public-key",
    "--expect-root": "--expect-root",
    "--expect-manifest-sha256": "--expect-manifest-sha256",
}


class BadUsage(Exception):
    """The command line is wrong: exit 2 with this message and the usage line."""


def parse_args(argv: Iterable[str]) -> tuple[Path, bool, dict[str, str]]:
    """The bundle path, whether ``--json`` was given, and the options' values
    (``--shipped-rules``, a flag, as the value "yes")."""
    as_json, values, positional = False, {}, []
    words = iter(argv)
    for word in words:
        if word == "--json":
            as_json = True
        elif word == "--shipped-rules":
            values[word] = "yes"
        elif word in VALUED:
            value = next(words, None)
            if value is None:
                raise BadUsage(f"{word} needs a value")
            values[VALUED[word]] = value
        else:
            positional.append(word)
    if len(positional) > 1 or any(word.startswith("-") for word in positional):
        raise BadUsage("")
    for option, value in values.items():
        if option != "--shipped-rules" and not hex64(value.lower()):
            raise BadUsage(f"{option} must be 64 hexadecimal characters")
    path = Path(positional[0]) if positional else Path(__file__).resolve().parent
    return path, as_json, values


def render(path: Path, result: dict[str, Any], as_json: bool) -> None:
    """Print the verdict: its JSON, or lines for people (a failure on standard error)."""
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    if not result["ok"]:
        print(f"FAILED {path}: {result['first_bad']}: {result['failure']}", file=sys.stderr)
        return
    lines = [
        f"OK {path}: {result['verdict']}",
        f"  {result['events']} entries in {result['cases']} case(s)",
        f"  bundle root {result['root']}",
        f"  {rules_sentence(result['rules'])}",
        *(f"  checked: {SAY[code]}" for code in result["checked"]),
        *(f"  NOT checked: {SAY[code]}" for code in result["not_checked"]),
    ]
    print("\n".join(lines))


def main(argv: list[str]) -> int:
    """The command: 0 verified, 1 does not verify, 2 usage or no bundle."""
    try:
        path, as_json, values = parse_args(argv)
    except BadUsage as exc:
        print(f"{exc}\n{USAGE}" if str(exc) else USAGE, file=sys.stderr)
        return 2
    try:
        result = verify(
            path,
            expect_root=values.get("--expect-root"),
            expect_manifest=values.get("--expect-manifest-sha256"),
            trusted_key=values.get("--public-key"),
            shipped_rules="--shipped-rules" in values,
        )
    except NoBundle as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        render(path, result, as_json)
        sys.stdout.flush()
    except BrokenPipeError:  # piped into `head`, which has left: the exit code still tells
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
