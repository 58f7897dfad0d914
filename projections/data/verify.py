#!/usr/bin/env python3
"""Check a caseledger audit bundle with nothing but the Python standard library.

Usage:
    python3 verify.py BUNDLE [--json] [--expect-root HEX] [--expect-manifest-sha256 HEX]
                             [--trusted-key HEX]

BUNDLE is the bundle's folder or its .zip file (default: the folder this script is in).
Exit code 0: the bundle verifies.  1: it does not (the first failure is named).
2: bad usage.

What it checks, in this order (the first failure stops it):
 1. manifest.sha256 holds the SHA-256 of manifest.json (a manifest cannot hold its own).
 2. manifest.json is a caseledger bundle manifest; every file it lists is present and no
    other file is.
 3. Every listed file other than events.jsonl has the SHA-256 and size the manifest gives.
 4. events.jsonl, line by line: each line is the canonical JSON of one entry; each entry's
    hash is the SHA-256 of its canonical JSON without "hash" and "position"; positions
    increase; each prev_hash is the hash of the case's previous entry (seq - 1), or 64 zeros
    for seq 1, except just after a gap of left-out entries that the manifest lists.
 5. events.jsonl has the SHA-256, size and entry count the manifest gives.
 6. The RFC 9162 Merkle root over the entry hashes, in file order, is the manifest's.
 7. Each case's chain head (last seq and hash), entry count and gaps are the manifest's.
 8. With a signed checkpoint (checkpoint.json): its Ed25519 signature; and for a
    whole-store bundle, that its first `count` entries hash to the checkpoint's root.
 9. With personal data included: each value in personal.jsonl matches its commitment
    SHA-256(salt || canonical JSON of the value) in the hashed entry.
10. With --expect-root / --expect-manifest-sha256 / --trusted-key: the values you were
    given separately (the Merkle root, the manifest's SHA-256, the checkpoint signer).

Canonical JSON is json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False) encoded as UTF-8: keys sorted, no spaces, strings as given.

This file is deliberately independent of caseledger's own code: it is a second,
separate implementation of the same checks, so you need not trust the tool that made
the bundle.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Union

FORMAT = "caseledger-bundle/1"
MANIFEST = "manifest.json"
MANIFEST_SHA = "manifest.sha256"
EVENTS = "events.jsonl"
PERSONAL = "personal.jsonl"
CHECKPOINT = "checkpoint.json"
#: Register bookkeeping around a checkpoint, not covered by its signature.
REGISTER_FIELDS = ("type", "seq", "recorded_at", "actor", "role", "prev_hash", "hash", "ref")
GENESIS = "0" * 64
HEX64 = re.compile(r"^[0-9a-f]{64}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
CHUNK = 1 << 20
#: What reading a damaged file or zip member can raise.
READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)


class Failure(Exception):
    """The bundle does not verify: ``where`` names the first failing file or entry."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class NotInteger(ValueError):
    pass


def reject_number(text: str) -> Any:
    raise NotInteger(text)


def load_line(line: bytes, where: str) -> Any:
    """One JSON line; the record holds integers only, so any other number fails."""
    try:
        return json.loads(line, parse_float=reject_number, parse_constant=reject_number)
    except NotInteger:
        raise Failure(where, "holds a number that is not an integer") from None
    except ValueError:
        raise Failure(where, "is not valid JSON") from None


def canonical(obj: Any) -> bytes:
    """The canonical JSON bytes of a value."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


# --- reading a bundle: a folder or a zip file ------------------------------------------


class Folder:
    def __init__(self, path: Path) -> None:
        self.path = path

    def names(self) -> list[str]:
        return sorted(
            str(p.relative_to(self.path)).replace("\\", "/")
            for p in self.path.rglob("*")
            if p.is_file() or p.is_symlink()
        )

    def exists(self, name: str) -> bool:
        return (self.path / name).is_file()

    def open(self, name: str) -> IO[bytes]:
        return open(self.path / name, "rb")


class Zip:
    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path)
        names = [n for n in self.zip.namelist() if not n.endswith("/")]
        if MANIFEST in names:
            self.prefix = ""
        else:
            tops = {n.split("/", 1)[0] for n in names if "/" in n}
            self.prefix = ""
            if len(tops) == 1 and f"{next(iter(tops))}/{MANIFEST}" in names:
                self.prefix = next(iter(tops)) + "/"
        self._names = sorted(n[len(self.prefix) :] for n in names if n.startswith(self.prefix))
        self._names += sorted(n for n in names if not n.startswith(self.prefix))

    def names(self) -> list[str]:
        return list(self._names)

    def exists(self, name: str) -> bool:
        return name in self._names

    def open(self, name: str) -> IO[bytes]:
        return self.zip.open(self.prefix + name)


Bundle = Union[Folder, "Zip"]


def open_bundle(path: Path) -> Bundle:
    if path.is_dir():
        return Folder(path)
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            return Zip(path)
        except Exception as exc:  # any damage to the archive's directory
            raise Failure(path.name, f"the zip file cannot be read ({exc})") from None
    raise Failure(str(path), "not a bundle folder or .zip file")


def read_all(bundle: Bundle, name: str) -> bytes:
    try:
        with bundle.open(name) as f:
            return f.read()
    except READ_ERRORS as exc:
        raise Failure(name, f"cannot be read ({exc})") from None


def file_digest(bundle: Bundle, name: str) -> tuple[str, int]:
    sha, size = hashlib.sha256(), 0
    try:
        with bundle.open(name) as f:
            while True:
                block = f.read(CHUNK)
                if not block:
                    break
                sha.update(block)
                size += len(block)
    except READ_ERRORS as exc:
        raise Failure(name, f"cannot be read ({exc})") from None
    return sha.hexdigest(), size


class Lines:
    """The lines of a file without their newlines, read in blocks of CHUNK bytes; None
    for a last line with no newline.  Hashes and counts every byte as it goes."""

    def __init__(self, bundle: Bundle, name: str) -> None:
        self.bundle = bundle
        self.name = name
        self.sha = hashlib.sha256()
        self.size = 0

    def __iter__(self) -> Iterator[bytes | None]:
        try:
            stream = self.bundle.open(self.name)
        except READ_ERRORS as exc:
            raise Failure(self.name, f"cannot be read ({exc})") from None
        with stream:
            tail = b""
            while True:
                try:
                    block = stream.read(CHUNK)
                except READ_ERRORS as exc:
                    raise Failure(self.name, f"cannot be read ({exc})") from None
                if not block:
                    break
                self.sha.update(block)
                self.size += len(block)
                lines = (tail + block).split(b"\n")
                tail = lines.pop()
                yield from lines
            if tail:
                yield None


# --- the Merkle tree hash of RFC 9162 section 2.1.1, in one pass --------------------------


class Merkle:
    """Leaves in order; keeps one complete-subtree root per 1-bit of the leaf count."""

    def __init__(self) -> None:
        self.stack: list[bytes] = []
        self.size = 0

    def add(self, hash_hex: str) -> None:
        node = hashlib.sha256(b"\x00" + bytes.fromhex(hash_hex)).digest()
        self.size += 1
        n = self.size
        while n % 2 == 0:
            node = hashlib.sha256(b"\x01" + self.stack.pop() + node).digest()
            n //= 2
        self.stack.append(node)

    def root(self) -> str:
        if not self.stack:
            return hashlib.sha256(b"").hexdigest()
        node = self.stack[-1]
        for left in reversed(self.stack[:-1]):
            node = hashlib.sha256(b"\x01" + left + node).digest()
        return node.hex()


# --- Ed25519 signatures (RFC 8032 section 5.1.7), for the checkpoint ----------------------

ED_P = 2**255 - 19
ED_L = 2**252 + 27742317777372353535851937790883648493
ED_D = -121665 * pow(121666, ED_P - 2, ED_P) % ED_P
ED_I = pow(2, (ED_P - 1) // 4, ED_P)  # a square root of -1

Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)


def ed_recover_x(y: int, sign: int) -> int | None:
    if y >= ED_P:
        return None
    x2 = (y * y - 1) * pow(ED_D * y * y + 1, ED_P - 2, ED_P) % ED_P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (ED_P + 3) // 8, ED_P)
    if (x * x - x2) % ED_P != 0:
        x = x * ED_I % ED_P
    if (x * x - x2) % ED_P != 0:
        return None
    if (x & 1) != sign:
        x = ED_P - x
    return x


def ed_add(a: Point, b: Point) -> Point:
    p = ED_P
    m = (a[1] - a[0]) * (b[1] - b[0]) % p
    n = (a[1] + a[0]) * (b[1] + b[0]) % p
    c = 2 * a[3] * b[3] * ED_D % p
    z = 2 * a[2] * b[2] % p
    e, f, g, h = n - m, z - c, z + c, n + m
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def ed_mul(scalar: int, point: Point) -> Point:
    result: Point = (0, 1, 1, 0)
    while scalar > 0:
        if scalar & 1:
            result = ed_add(result, point)
        point = ed_add(point, point)
        scalar >>= 1
    return result


def ed_equal(a: Point, b: Point) -> bool:
    p = ED_P
    return (a[0] * b[2] - b[0] * a[2]) % p == 0 and (a[1] * b[2] - b[1] * a[2]) % p == 0


def ed_decompress(data: bytes) -> Point | None:
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = ed_recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % ED_P)


ED_GY = 4 * pow(5, ED_P - 2, ED_P) % ED_P
ED_GX = ed_recover_x(ED_GY, 0) or 0
ED_G: Point = (ED_GX, ED_GY, 1, ED_GX * ED_GY % ED_P)


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``public``'s Ed25519 signature of ``message``."""
    if len(public) != 32 or len(signature) != 64:
        return False
    a = ed_decompress(public)
    r = ed_decompress(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    if s >= ED_L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little")
    return ed_equal(ed_mul(s, ED_G), ed_add(r, ed_mul(h % ED_L, a)))


# --- the checks ----------------------------------------------------------------------


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_manifest(bundle: Bundle) -> tuple[dict[str, Any], str]:
    if not bundle.exists(MANIFEST_SHA):
        raise Failure(MANIFEST_SHA, "missing: it should hold the SHA-256 of manifest.json")
    text = read_all(bundle, MANIFEST_SHA).decode("utf-8", "replace")
    parts = text.split()
    if len(parts) != 2 or not HEX64.match(parts[0]) or parts[1].lstrip("*") != MANIFEST:
        raise Failure(MANIFEST_SHA, "is not one line '<sha256>  manifest.json'")
    if not bundle.exists(MANIFEST):
        raise Failure(MANIFEST, "missing")
    data = read_all(bundle, MANIFEST)
    actual = hashlib.sha256(data).hexdigest()
    if actual != parts[0]:
        raise Failure(MANIFEST, f"SHA-256 is {actual}, manifest.sha256 says {parts[0]}")
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise Failure(MANIFEST, f"is not valid JSON ({exc})") from None
    problem = manifest_problem(manifest)
    if problem:
        raise Failure(MANIFEST, problem)
    return manifest, actual


def manifest_problem(m: Any) -> str | None:
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        return f"is not a {FORMAT} manifest"
    files = m.get("files")
    if not isinstance(files, list) or not all(
        isinstance(f, dict)
        and isinstance(f.get("path"), str)
        and isinstance(f.get("sha256"), str)
        and HEX64.match(f["sha256"])
        and is_int(f.get("bytes"))
        for f in files
    ):
        return "files must be a list of {path, sha256, bytes}"
    paths = [f["path"] for f in files]
    if len(set(paths)) != len(paths) or EVENTS not in paths:
        return "files must list events.jsonl, each file once"
    if MANIFEST in paths or MANIFEST_SHA in paths:
        return "files must not list manifest.json or manifest.sha256"
    events = m.get("events")
    if not isinstance(events, dict) or not is_int(events.get("count")):
        return "events.count is missing"
    merkle = m.get("merkle")
    if not isinstance(merkle, dict) or not (
        isinstance(merkle.get("root"), str) and HEX64.match(merkle["root"])
    ):
        return "merkle.root is missing"
    personal = m.get("personal_data")
    if not isinstance(personal, dict) or not isinstance(personal.get("included"), bool):
        return "personal_data.included is missing"
    if personal["included"] != (PERSONAL in paths):
        return "personal_data.included does not match whether personal.jsonl is listed"
    if personal["included"] and not is_int(personal.get("values")):
        return "personal_data.values is missing"
    checkpoint = m.get("checkpoint")
    if checkpoint is not None and not (
        isinstance(checkpoint, dict)
        and checkpoint.get("file") == CHECKPOINT
        and is_int(checkpoint.get("count"))
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
            and is_int(head.get("seq"))
            and isinstance(head.get("hash"), str)
            and is_int(case.get("events"))
        ):
            return f"cases.{ref} needs events and head {{seq, hash}}"
        gaps = case.get("gaps")
        if not isinstance(gaps, list) or not all(
            isinstance(g, list) and len(g) == 2 and is_int(g[0]) and is_int(g[1]) for g in gaps
        ):
            return f"cases.{ref}.gaps must be a list of [first, last] pairs"
    return None


def check_file_list(bundle: Bundle, manifest: dict[str, Any]) -> None:
    listed = [f["path"] for f in manifest["files"]]
    for name in listed:
        if not bundle.exists(name):
            raise Failure(name, "listed in the manifest but missing from the bundle")
    allowed = set(listed) | {MANIFEST, MANIFEST_SHA}
    for name in bundle.names():
        if name not in allowed:
            raise Failure(name, "is in the bundle but not listed in the manifest")


def check_file(bundle: Bundle, entry: dict[str, Any]) -> None:
    digest, size = file_digest(bundle, entry["path"])
    if digest != entry["sha256"]:
        raise Failure(entry["path"], f"SHA-256 is {digest}, the manifest says {entry['sha256']}")
    if size != entry["bytes"]:
        raise Failure(entry["path"], f"is {size} bytes, the manifest says {entry['bytes']}")


def personal_commitments(event: dict[str, Any]) -> dict[str, Any]:
    personal = event.get("personal")
    if isinstance(personal, dict):
        return personal
    changes = event.get("changes")
    if event.get("type") == "EntryCorrected" and isinstance(changes, dict):
        inner = changes.get("personal")
        if isinstance(inner, dict):
            return inner
    return {}


class Progress:
    def __init__(self) -> None:
        self.events = 0
        self.cases = 0


def check_events(
    bundle: Bundle,
    manifest: dict[str, Any],
    progress: Progress,
    want_personal: bool,
    prefix: int | None = None,
) -> tuple[str, int, str, dict[str, list[Any]], dict[tuple[str, int, str], Any], str | None]:
    """Stream events.jsonl; return (sha256, size, Merkle root, heads, commitments, and the
    Merkle root of the first ``prefix`` entries when asked)."""
    cases = manifest["cases"]
    heads: dict[str, list[Any]] = {}  # case -> [last seq, last hash, entries, next gap]
    commitments: dict[tuple[str, int, str], Any] = {}
    tree = Merkle()
    prefix_root = tree.root() if prefix == 0 else None
    last_position = 0
    reader = Lines(bundle, EVENTS)
    number = 0
    for line in reader:
        number += 1
        where = f"{EVENTS} line {number}"
        if line is None:
            raise Failure(where, "the file ends in the middle of a line")
        event = load_line(line, where)
        if not isinstance(event, dict):
            raise Failure(where, "is not a JSON object")
        case: Any = event.get("case")
        seq: Any = event.get("seq")
        position: Any = event.get("position")
        own: Any = event.get("hash")
        prev: Any = event.get("prev_hash")
        if not (isinstance(case, str) and is_int(seq) and seq >= 1 and is_int(position)):
            raise Failure(where, "needs case, seq and position")
        if not (isinstance(own, str) and HEX64.match(own)):
            raise Failure(where, "needs a hash of 64 hex digits")
        if not (isinstance(prev, str) and HEX64.match(prev)):
            raise Failure(where, "needs a prev_hash of 64 hex digits")
        ref = f"{case}#{seq}"
        try:
            text = canonical(event)
        except ValueError:
            raise Failure(ref, "cannot be written as canonical JSON") from None
        if text != line:
            raise Failure(ref, f"line {number} is not the entry's canonical JSON")
        body = {k: v for k, v in event.items() if k not in ("hash", "position")}
        if hashlib.sha256(canonical(body)).hexdigest() != own:
            raise Failure(ref, "does not match its hash (the entry was altered)")
        if position <= last_position:
            raise Failure(ref, f"position {position} is not after {last_position}")
        last_position = position
        info = cases.get(case)
        if info is None:
            raise Failure(ref, f"case {case} is not listed in the manifest")
        head = heads.get(case)
        if head is None:
            head = heads[case] = [0, GENESIS, 0, 0]
        last_seq, last_hash, _, gap_index = head
        if seq <= last_seq:
            raise Failure(ref, f"comes after {case}#{last_seq}: entries repeated or out of order")
        if seq == last_seq + 1:
            if prev != last_hash:
                before = f"{case}#{last_seq}" if last_seq else "the start of the chain"
                raise Failure(ref, f"prev_hash does not link to {before}")
        else:
            gaps = info["gaps"]
            gap = [last_seq + 1, seq - 1]
            if gap_index >= len(gaps) or gaps[gap_index] != gap:
                raise Failure(
                    ref,
                    f"entries {gap[0]} to {gap[1]} of {case} are missing and the manifest "
                    "lists no such gap",
                )
            head[3] = gap_index + 1
        head[0], head[1] = seq, own
        head[2] += 1
        tree.add(own)
        if tree.size == prefix:
            prefix_root = tree.root()
        if want_personal:
            for name, value in personal_commitments(event).items():
                commitments[(case, seq, name)] = value
        progress.events += 1
    return reader.sha.hexdigest(), reader.size, tree.root(), heads, commitments, prefix_root


def check_cases(manifest: dict[str, Any], heads: dict[str, list[Any]]) -> None:
    for ref, info in manifest["cases"].items():
        head = heads.get(ref)
        if head is None:
            raise Failure(ref, "is listed in the manifest but has no entries in events.jsonl")
        seq, own, count, gap_index = head
        if info["head"].get("seq") != seq or info["head"].get("hash") != own:
            raise Failure(ref, f"the chain head is {ref}#{seq} {own}, the manifest says otherwise")
        if info["events"] != count:
            raise Failure(ref, f"has {count} entries, the manifest says {info['events']}")
        if gap_index != len(info["gaps"]):
            raise Failure(ref, "the manifest lists a gap that is not in events.jsonl")


def check_checkpoint(
    bundle: Bundle,
    manifest: dict[str, Any],
    events: int,
    prefix_root: str | None,
    trusted_key: str | None,
) -> None:
    declared = manifest.get("checkpoint")
    if declared is None:
        if trusted_key is not None:
            raise Failure(CHECKPOINT, "the bundle carries no checkpoint to check the key against")
        return
    try:
        checkpoint = json.loads(read_all(bundle, CHECKPOINT))
    except ValueError:
        raise Failure(CHECKPOINT, "is not valid JSON") from None
    if not (
        isinstance(checkpoint, dict)
        and isinstance(checkpoint.get("signature"), str)
        and isinstance(checkpoint.get("public_key"), str)
    ):
        raise Failure(CHECKPOINT, "needs a signature and a public_key")
    body = {k: v for k, v in checkpoint.items() if k != "signature" and k not in REGISTER_FIELDS}
    try:
        public = bytes.fromhex(checkpoint["public_key"])
        signature = bytes.fromhex(checkpoint["signature"])
        good = ed25519_verify(public, canonical(body), signature)
    except ValueError:
        good = False
    if not good:
        raise Failure(CHECKPOINT, "the checkpoint's signature does not verify")
    if checkpoint.get("count") != declared["count"] or checkpoint.get("root") != declared["root"]:
        raise Failure(CHECKPOINT, "does not match the checkpoint the manifest describes")
    if trusted_key is not None and checkpoint["public_key"] != trusted_key.lower():
        raise Failure(CHECKPOINT, "was not signed by the key you trust")
    if declared["applies"]:
        if events < declared["count"]:
            raise Failure(
                CHECKPOINT,
                f"the bundle holds {events} entries, fewer than the {declared['count']} the "
                "checkpoint counted",
            )
        if prefix_root != declared["root"]:
            raise Failure(
                CHECKPOINT,
                f"the first {declared['count']} entries do not hash to the checkpoint's root",
            )


def check_personal(
    bundle: Bundle, manifest: dict[str, Any], commitments: dict[tuple[str, int, str], Any]
) -> int:
    seen = set()
    number = 0
    for line in Lines(bundle, PERSONAL):
        number += 1
        where = f"{PERSONAL} line {number}"
        if line is None:
            raise Failure(where, "the file ends in the middle of a line")
        row = load_line(line, where)
        if not (
            isinstance(row, dict)
            and isinstance(row.get("case"), str)
            and is_int(row.get("seq"))
            and isinstance(row.get("field"), str)
            and "value" in row
            and isinstance(row.get("salt"), str)
            and HEX32.match(row["salt"])
        ):
            raise Failure(where, "needs case, seq, field, value and a 16-byte hex salt")
        label = f"{row['case']}#{row['seq']} personal.{row['field']}"
        try:
            text = canonical(row)
        except ValueError:
            text = b""
        if text != line:
            raise Failure(label, f"line {number} of {PERSONAL} is not canonical JSON")
        key = (row["case"], row["seq"], row["field"])
        if key in seen:
            raise Failure(label, "appears twice")
        seen.add(key)
        expected = commitments.get(key)
        if expected is None:
            raise Failure(label, "has no commitment in the exported entries")
        actual = hashlib.sha256(bytes.fromhex(row["salt"]) + canonical(row["value"])).hexdigest()
        if actual != expected:
            raise Failure(label, "does not match its commitment in the hashed entry")
    if number != manifest["personal_data"]["values"]:
        raise Failure(
            PERSONAL,
            f"holds {number} values, the manifest says {manifest['personal_data']['values']}",
        )
    return number


def verify(
    path: str | Path,
    expect_root: str | None = None,
    expect_manifest: str | None = None,
    trusted_key: str | None = None,
) -> dict[str, Any]:
    """Check a bundle; return a dict with ok, events, cases, first_bad, failure, root."""
    progress = Progress()
    result: dict[str, Any] = {
        "ok": False,
        "events": 0,
        "cases": 0,
        "first_bad": None,
        "failure": None,
        "root": None,
        "manifest_sha256": None,
        "personal_data": None,
        "checkpoint": None,
    }
    try:
        bundle = open_bundle(Path(path))
        manifest, manifest_sha = check_manifest(bundle)
        result["manifest_sha256"] = manifest_sha
        included = manifest["personal_data"]["included"]
        result["personal_data"] = included
        check_file_list(bundle, manifest)
        events_entry: dict[str, Any] = {}
        for entry in manifest["files"]:
            if entry["path"] == EVENTS:
                events_entry = entry
            else:
                check_file(bundle, entry)
        declared = manifest.get("checkpoint")
        prefix = declared["count"] if declared and declared["applies"] else None
        digest, size, root, heads, commitments, prefix_root = check_events(
            bundle, manifest, progress, included, prefix
        )
        result["root"] = root
        if digest != events_entry["sha256"]:
            raise Failure(
                EVENTS, f"SHA-256 is {digest}, the manifest says {events_entry['sha256']}"
            )
        if size != events_entry["bytes"]:
            raise Failure(EVENTS, f"is {size} bytes, the manifest says {events_entry['bytes']}")
        if progress.events != manifest["events"]["count"]:
            raise Failure(
                EVENTS,
                f"holds {progress.events} entries, the manifest says {manifest['events']['count']}",
            )
        if root != manifest["merkle"]["root"]:
            raise Failure(
                MANIFEST,
                f"the Merkle root of the entries is {root}, the manifest says "
                f"{manifest['merkle']['root']}",
            )
        check_cases(manifest, heads)
        result["cases"] = len(heads)
        check_checkpoint(bundle, manifest, progress.events, prefix_root, trusted_key)
        result["checkpoint"] = declared is not None
        if included:
            check_personal(bundle, manifest, commitments)
        if expect_root is not None and root != expect_root.lower():
            raise Failure(MANIFEST, f"the Merkle root is {root}, you expected {expect_root}")
        if expect_manifest is not None and manifest_sha != expect_manifest.lower():
            raise Failure(
                MANIFEST,
                f"the manifest's SHA-256 is {manifest_sha}, you expected {expect_manifest}",
            )
        result["ok"] = True
    except Failure as failure:
        result["first_bad"] = failure.where
        result["failure"] = failure.reason
    result["events"] = progress.events
    return result


def main(argv: list[str]) -> int:
    args = list(argv)
    as_json = "--json" in args
    if as_json:
        args.remove("--json")
    expect = {}
    for option in ("--expect-root", "--expect-manifest-sha256", "--trusted-key"):
        if option in args:
            at = args.index(option)
            if at + 1 >= len(args):
                print(f"{option} needs a value", file=sys.stderr)
                return 2
            expect[option] = args[at + 1]
            del args[at : at + 2]
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    path = Path(args[0]) if args else Path(__file__).resolve().parent
    result = verify(
        path,
        expect.get("--expect-root"),
        expect.get("--expect-manifest-sha256"),
        expect.get("--trusted-key"),
    )
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    elif result["ok"]:
        print(
            f"OK {path}: {result['events']} entries in {result['cases']} "
            f"case{'' if result['cases'] == 1 else 's'}; every file "
            f"hash, entry hash and chain link, and the Merkle root {result['root']} hold"
            + ("; every personal value matches its commitment" if result["personal_data"] else "")
        )
    else:
        print(f"FAILED {path}: {result['first_bad']}: {result['failure']}", file=sys.stderr)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
