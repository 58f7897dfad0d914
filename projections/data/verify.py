#!/usr/bin/env python3
"""Check a caseledger audit bundle with nothing but the Python standard library.

Usage:
    python3 verify.py BUNDLE [--json] [--public-key HEX] [--expect-root HEX]
                             [--expect-manifest-sha256 HEX]

BUNDLE is the bundle's folder or its .zip file (default: the folder this script is in).
--public-key is the checkpoint signer's Ed25519 public key (64 hex), received by another
route (--trusted-key is the same option's older name).
Exit code 0: the bundle verifies (the verdict says against what).  1: it does not (the
first failure is named).  2: bad usage, or the path is no bundle at all.

What it checks, in this order (the first failure stops it); docs/bundle-format.md in
caseledger's source specifies every rule:
 1. The bundle's files: plain files only (no symbolic link, no folder), no zip member
    twice, no absolute path or '..' in any name.
 2. manifest.sha256 holds the SHA-256 of manifest.json; the manifest is well formed and
    names plain files only; every file it lists is present and no other file is; each
    has the SHA-256 and size the manifest gives (events.jsonl while it is read).
 3. The signed checkpoint (checkpoint.json): its Ed25519 signature, under the key you give
    with --public-key when you give one (then a bundle without a checkpoint FAILS).
 4. events.jsonl, line by line: canonical JSON of one entry; each entry's hash; positions
    increasing; each chain link (unchecked only just after a gap the manifest lists); and
    each entry's RFC 9162 inclusion proof (proofs.jsonl) against the checkpoint.
 5. The entry count, the Merkle root over the entry hashes, each case's chain head, count
    and gaps, the export's selection of cases; against the checkpoint, the whole log's
    root (a whole-store bundle) or each case's head at the checkpoint (a subset).
 6. With personal data included: each value against its commitment.
 7. The bundle root over every file, and what you were given: --expect-root,
    --expect-manifest-sha256.

Canonical JSON is json.dumps(obj, sort_keys=True, separators=(",", ":"),
ensure_ascii=False) encoded as UTF-8: keys sorted, no spaces, strings as given.

This file is deliberately independent of caseledger's own code: it is a second,
separate implementation of the same checks, so you need not trust the tool that made
the bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Union

FORMAT = "caseledger-bundle/2"
MANIFEST = "manifest.json"
MANIFEST_SHA = "manifest.sha256"
EVENTS = "events.jsonl"
PROOFS = "proofs.jsonl"
PERSONAL = "personal.jsonl"
CHECKPOINT = "checkpoint.json"
GENESIS = "0" * 64
HEX64 = re.compile(r"^[0-9a-f]{64}$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
CHUNK = 1 << 20
#: What reading a damaged file or zip member can raise.
READ_ERRORS = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)

#: What each code in a verdict's "checked" and "not_checked" lists means.
CHECKED = {
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
NOT_CHECKED = {
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


class Failure(Exception):
    """The bundle does not verify: ``where`` names the first failing file or entry."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class NotABundle(Exception):
    """The path is no bundle at all (exit code 2)."""


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


def name_problem(name: str) -> str | None:
    """Why a name is refused in a bundle (a zip member or a manifest path), or None."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path: refused"
    if ".." in re.split(r"[/\\]", name):
        return "climbs out of the bundle with '..': refused"
    if "\\" in name:
        return "holds a backslash: refused"
    return None


# --- reading a bundle: a folder or a zip file ------------------------------------------


class Folder:
    def __init__(self, path: Path) -> None:
        self.path = path
        entries = sorted(os.scandir(path), key=lambda e: e.name)
        self._names = [e.name for e in entries]
        if MANIFEST not in self._names and MANIFEST_SHA not in self._names:
            raise NotABundle(f"{path} is not a bundle: it holds no {MANIFEST} or {MANIFEST_SHA}")
        for entry in entries:
            if entry.is_symlink():
                raise Failure(entry.name, "is a symbolic link: a bundle holds plain files only")
            if entry.is_dir(follow_symlinks=False):
                raise Failure(entry.name, "is a folder: a bundle holds plain files only")
            if not entry.is_file(follow_symlinks=False):
                raise Failure(entry.name, "is not a plain file: refused")

    def names(self) -> list[str]:
        return list(self._names)

    def exists(self, name: str) -> bool:
        return name in self._names

    def open(self, name: str) -> IO[bytes]:
        fd = os.open(self.path / name, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        return os.fdopen(fd, "rb")


class Zip:
    def __init__(self, path: Path) -> None:
        self.zip = zipfile.ZipFile(path)
        seen: set[str] = set()
        for info in self.zip.infolist():
            problem = name_problem(info.filename)
            if problem:
                raise Failure(info.filename, problem)
            if info.filename in seen:
                raise Failure(info.filename, "is in the zip more than once: refused")
            seen.add(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise Failure(info.filename, "is a symbolic link: a bundle holds plain files only")
        names = [n for n in self.zip.namelist() if not n.endswith("/")]
        self.prefix = ""
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
                self.prefix = tops[0]
            else:
                raise NotABundle(
                    f"{path} is not a bundle: it holds no {MANIFEST} or {MANIFEST_SHA}"
                )
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
        try:
            return Folder(path)
        except OSError as exc:
            raise NotABundle(f"{path} cannot be read: {exc}") from None
    if path.is_file() and zipfile.is_zipfile(path):
        try:
            return Zip(path)
        except (Failure, NotABundle):
            raise
        except Exception as exc:  # any damage to the archive's directory
            raise Failure(path.name, f"the zip file cannot be read ({exc})") from None
    if not path.exists():
        raise NotABundle(f"{path} does not exist")
    raise NotABundle(f"{path} is not a bundle folder or .zip file")


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
        self.add_bytes(bytes.fromhex(hash_hex))

    def add_bytes(self, leaf: bytes) -> None:
        node = hashlib.sha256(b"\x00" + leaf).digest()
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


def verify_inclusion(
    leaf_hash_hex: str, index: int, size: int, proof: list[str], root_hex: str
) -> bool:
    """RFC 9162 section 2.1.3.2: whether ``proof`` puts the leaf hash at ``index`` of the
    tree of ``size`` leaves whose root is ``root_hex``."""
    if not 0 <= index < size:
        return False
    try:
        node = bytes.fromhex(leaf_hash_hex)
        path = [bytes.fromhex(p) for p in proof]
    except (TypeError, ValueError):
        return False
    if len(node) != 32 or any(len(p) != 32 for p in path):
        return False
    fn, sn = index, size - 1
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            node = hashlib.sha256(b"\x01" + p + node).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = hashlib.sha256(b"\x01" + node + p).digest()
        fn >>= 1
        sn >>= 1
    return sn == 0 and node.hex() == root_hex


def leaf_hash(leaf: bytes) -> str:
    return hashlib.sha256(b"\x00" + leaf).hexdigest()


def case_head_leaf(case: str, seq: int, head: str) -> bytes:
    """The leaf bytes of a case's head in a checkpoint's cases tree."""
    return hashlib.sha256(canonical({"case": case, "hash": head, "seq": seq})).digest()


def bundle_root(digests: dict[str, str]) -> str:
    """The bundle root: RFC 9162 over {"path", "sha256"} of every file, by name."""
    tree = Merkle()
    for name in sorted(digests):
        tree.add_bytes(canonical({"path": name, "sha256": digests[name]}))
    return tree.root()


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


def is_hex64(value: Any) -> bool:
    return isinstance(value, str) and HEX64.match(value) is not None


def is_tree(value: Any) -> bool:
    """A checkpoint's {size, root}."""
    return (
        isinstance(value, dict)
        and is_int(value.get("size"))
        and value["size"] >= 0
        and is_hex64(value.get("root"))
    )


def is_proof(value: Any) -> bool:
    return isinstance(value, list) and all(is_hex64(p) for p in value)


def is_leaf(value: Any, with_case: bool) -> bool:
    """A case head in the cases tree: {[case,] seq, hash, index, proof}."""
    return (
        isinstance(value, dict)
        and (not with_case or isinstance(value.get("case"), str))
        and is_int(value.get("seq"))
        and is_hex64(value.get("hash"))
        and is_int(value.get("index"))
        and is_proof(value.get("proof"))
    )


def check_manifest(bundle: Bundle) -> tuple[dict[str, Any], str, bytes]:
    if not bundle.exists(MANIFEST_SHA):
        raise Failure(MANIFEST_SHA, "missing: it should hold the SHA-256 of manifest.json")
    seal = read_all(bundle, MANIFEST_SHA)
    parts = seal.decode("utf-8", "replace").split()
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
    return manifest, actual, seal


def manifest_problem(m: Any) -> str | None:
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        found = m.get("format") if isinstance(m, dict) else None
        if isinstance(found, str) and found.startswith("caseledger-bundle/"):
            return f"is a {found} manifest; this checker reads {FORMAT} only (ask for a new export)"
        return f"is not a {FORMAT} manifest"
    files = m.get("files")
    if not isinstance(files, list) or not all(
        isinstance(f, dict)
        and isinstance(f.get("path"), str)
        and is_hex64(f.get("sha256"))
        and is_int(f.get("bytes"))
        for f in files
    ):
        return "files must be a list of {path, sha256, bytes}"
    for f in files:
        path = f["path"]
        problem = name_problem(path)
        if problem:
            return f"files lists {path!r}, which {problem}"
        if "/" in path or path in ("", "."):
            return f"files lists {path!r}: a bundle's files are plain names, in no folder"
    paths = [f["path"] for f in files]
    if len(set(paths)) != len(paths) or EVENTS not in paths:
        return "files must list events.jsonl, each file once"
    if MANIFEST in paths or MANIFEST_SHA in paths:
        return "files must not list manifest.json or manifest.sha256"
    filters = m.get("filters")
    if not (
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
    ):
        return "filters must give cases (a list or null) and occurred_from, occurred_to, as_of"
    events = m.get("events")
    if not isinstance(events, dict) or not is_int(events.get("count")):
        return "events.count is missing"
    merkle = m.get("merkle")
    if not isinstance(merkle, dict) or not is_hex64(merkle.get("root")):
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
        and is_int(checkpoint.get("version"))
        and is_tree(checkpoint.get("events"))
        and (checkpoint.get("cases") is None or is_tree(checkpoint["cases"]))
        and is_int(checkpoint.get("last_position"))
        and isinstance(checkpoint.get("public_key"), str)
        and checkpoint.get("proof") in ("whole", "inclusion")
        and checkpoint.get("proofs_file")
        == (PROOFS if checkpoint["proof"] == "inclusion" else None)
        and is_int(checkpoint.get("covered"))
        and is_int(checkpoint.get("after"))
    ):
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
        at = case.get("at_checkpoint")
        absent = case.get("absent_at_checkpoint")
        if at is not None and not is_leaf(at, False):
            return f"cases.{ref}.at_checkpoint must be null or {{seq, hash, index, proof}}"
        if absent is not None and not (
            isinstance(absent, dict)
            and all(absent.get(k) is None or is_leaf(absent[k], True) for k in ("left", "right"))
        ):
            return f"cases.{ref}.absent_at_checkpoint must be null or {{left, right}}"
        if at is not None and absent is not None:
            return f"cases.{ref} cannot be both at_checkpoint and absent_at_checkpoint"
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


def check_file(bundle: Bundle, entry: dict[str, Any]) -> str:
    digest, size = file_digest(bundle, entry["path"])
    if digest != entry["sha256"]:
        raise Failure(entry["path"], f"SHA-256 is {digest}, the manifest says {entry['sha256']}")
    if size != entry["bytes"]:
        raise Failure(entry["path"], f"is {size} bytes, the manifest says {entry['bytes']}")
    return digest


def check_checkpoint(
    bundle: Bundle, manifest: dict[str, Any], trusted_key: str | None
) -> dict[str, Any] | None:
    """The signed checkpoint, its signature checked (under the trusted key when given)."""
    declared = manifest.get("checkpoint")
    if declared is None:
        if trusted_key is not None:
            raise Failure(
                CHECKPOINT,
                "you gave a trusted key, but the bundle carries no signed checkpoint to "
                "check it against",
            )
        return None
    try:
        checkpoint = json.loads(read_all(bundle, CHECKPOINT))
    except ValueError:
        raise Failure(CHECKPOINT, "is not valid JSON") from None
    if not (
        isinstance(checkpoint, dict)
        and isinstance(checkpoint.get("signature"), str)
        and isinstance(checkpoint.get("public_key"), str)
        and checkpoint.get("version") == 2
        and is_tree(checkpoint.get("events"))
        and (checkpoint.get("cases") is None or is_tree(checkpoint["cases"]))
        and is_int(checkpoint.get("last_position"))
    ):
        raise Failure(
            CHECKPOINT, "is not a version 2 checkpoint with events, last_position and a signature"
        )
    if trusted_key is not None and checkpoint["public_key"] != trusted_key:
        raise Failure(CHECKPOINT, "was not signed by the key you trust")
    body = {k: v for k, v in checkpoint.items() if k != "signature"}
    try:
        public = bytes.fromhex(trusted_key or checkpoint["public_key"])
        signature = bytes.fromhex(checkpoint["signature"])
        good = ed25519_verify(public, canonical(body), signature)
    except ValueError:
        good = False
    if not good:
        raise Failure(CHECKPOINT, "the checkpoint's signature does not verify")
    for key in ("version", "events", "cases", "last_position", "public_key"):
        if checkpoint.get(key) != declared.get(key):
            raise Failure(
                CHECKPOINT, f"does not match the checkpoint the manifest describes ({key})"
            )
    return checkpoint


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
        self.covered = 0
        self.after = 0


class Proofs:
    """proofs.jsonl, read line by line beside events.jsonl."""

    def __init__(self, bundle: Bundle) -> None:
        self.lines = iter(Lines(bundle, PROOFS))
        self.number = 0

    def next(self) -> tuple[Any, int]:
        self.number += 1
        where = f"{PROOFS} line {self.number}"
        line = next(self.lines, b"\n")
        if line == b"\n":
            raise Failure(where, "is missing: proofs.jsonl needs one line per line of events.jsonl")
        if line is None:
            raise Failure(where, "the file ends in the middle of a line")
        row = load_line(line, where)
        index = row.get("index", False) if isinstance(row, dict) else False
        if not (
            isinstance(row, dict)
            and (
                (index is None and set(row) == {"index"})
                or (is_int(index) and set(row) == {"index", "proof"} and is_proof(row["proof"]))
            )
        ):
            raise Failure(where, 'must be {"index": null} or {"index": N, "proof": [hex, ...]}')
        if canonical(row) != line:
            raise Failure(where, "is not canonical JSON")
        return row, self.number

    def finish(self) -> None:
        if next(self.lines, b"\n") != b"\n":
            raise Failure(f"{PROOFS} line {self.number + 1}", "is more than events.jsonl has lines")


def check_proof(
    checkpoint: dict[str, Any],
    info: dict[str, Any],
    ref: str,
    seq: int,
    position: int,
    own: str,
    proofs: Proofs,
    state: list[Any],
) -> bool:
    """One entry's line of proofs.jsonl; ``state`` is [last index, an entry after seen].
    Returns whether the entry is proven in the signed log."""
    row, number = proofs.next()
    index = row["index"]
    last_position = checkpoint["last_position"]
    has_cases = checkpoint.get("cases") is not None
    at = info.get("at_checkpoint")
    if index is None:
        if position <= last_position:
            raise Failure(
                ref,
                f"carries no inclusion proof, yet its position {position} is within the "
                f"checkpoint's (up to {last_position})",
            )
        if has_cases and at is not None and seq <= at["seq"]:
            raise Failure(
                ref,
                f"carries no inclusion proof, yet the case's head at the checkpoint is "
                f"#{at['seq']}",
            )
        state[1] = True
        return False
    if state[1]:
        raise Failure(
            ref, "claims an inclusion proof but comes after an entry recorded after the checkpoint"
        )
    if index <= state[0]:
        raise Failure(ref, f"its leaf index {index} is not after the previous entry's")
    if position > last_position:
        raise Failure(
            ref, f"claims an inclusion proof, but its position {position} is after the checkpoint's"
        )
    if has_cases and (at is None or seq > at["seq"]):
        raise Failure(
            ref, "claims an inclusion proof, but it is after the case's head at the checkpoint"
        )
    events = checkpoint["events"]
    if not verify_inclusion(
        leaf_hash(bytes.fromhex(own)), index, events["size"], row["proof"], events["root"]
    ):
        raise Failure(
            ref,
            f"is not in the signed log: its inclusion proof ({PROOFS} line {number}) does not "
            "verify against the checkpoint's events root",
        )
    state[0] = index
    return True


def check_events(
    bundle: Bundle,
    manifest: dict[str, Any],
    progress: Progress,
    want_personal: bool,
    checkpoint: dict[str, Any] | None,
) -> tuple[str, int, str, dict[str, list[Any]], dict[tuple[str, int, str], Any], str | None]:
    """Stream events.jsonl (and proofs.jsonl beside it); return (sha256, size, Merkle root,
    heads, commitments, and for a whole-log proof the root of the checkpoint's first
    events.size entries)."""
    cases = manifest["cases"]
    heads: dict[str, list[Any]] = {}  # case -> [last seq, last hash, entries, next gap]
    commitments: dict[tuple[str, int, str], Any] = {}
    tree = Merkle()
    whole = checkpoint is not None and manifest["checkpoint"]["proof"] == "whole"
    prefix = checkpoint["events"]["size"] if whole and checkpoint is not None else None
    prefix_root = tree.root() if prefix == 0 else None
    proofs = Proofs(bundle) if checkpoint is not None and not whole else None
    proof_state: list[Any] = [-1, False]
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
        if proofs is not None and checkpoint is not None:
            if check_proof(checkpoint, info, ref, seq, position, own, proofs, proof_state):
                progress.covered += 1
            else:
                progress.after += 1
            at = info.get("at_checkpoint")
            if at is not None and seq == at["seq"] and own != at["hash"]:
                raise Failure(ref, "is not the case's head that the checkpoint signed")
        head[0], head[1] = seq, own
        head[2] += 1
        tree.add(own)
        if tree.size == prefix:
            prefix_root = tree.root()
        if want_personal:
            for name, value in personal_commitments(event).items():
                commitments[(case, seq, name)] = value
        progress.events += 1
    if proofs is not None:
        proofs.finish()
    return reader.sha.hexdigest(), reader.size, tree.root(), heads, commitments, prefix_root


def narrowing(manifest: dict[str, Any]) -> bool:
    """Whether the export's filters leave entries out (dates or an as-of time)."""
    f = manifest["filters"]
    return any(f.get(k) is not None for k in ("occurred_from", "occurred_to", "as_of"))


def check_cases(manifest: dict[str, Any], heads: dict[str, list[Any]], inclusion: bool) -> None:
    narrowed = narrowing(manifest)
    for ref, info in manifest["cases"].items():
        seq, own, count, gap_index = heads.get(ref) or [0, GENESIS, 0, 0]
        if info["head"].get("seq") != seq or info["head"].get("hash") != own:
            raise Failure(ref, f"the chain head is {ref}#{seq} {own}, the manifest says otherwise")
        if info["events"] != count:
            raise Failure(ref, f"has {count} entries, the manifest says {info['events']}")
        at = info.get("at_checkpoint") if inclusion else None
        if at is not None and seq < at["seq"]:
            gaps = info["gaps"]
            trailing = [seq + 1, at["seq"]]
            if gap_index >= len(gaps) or gaps[gap_index] != trailing:
                raise Failure(
                    ref,
                    f"entries {trailing[0]} to {trailing[1]} of {ref} were in the signed log at "
                    "the checkpoint, are not in the bundle, and the manifest lists no such gap",
                )
            gap_index += 1
        if gap_index != len(info["gaps"]):
            raise Failure(ref, "the manifest lists a gap that is not in events.jsonl")
        if info["gaps"] and not narrowed:
            raise Failure(
                ref,
                "the manifest lists left-out entries, but the export's filters (no dates, no "
                "as-of time) leave none out",
            )
    selection = manifest["filters"]["cases"]
    if selection is not None:
        for ref in selection:
            if ref not in manifest["cases"]:
                raise Failure(ref, "is in the export's selection but not in the bundle")
        for ref in manifest["cases"]:
            if ref not in selection:
                raise Failure(ref, "is in the bundle but not in the export's selection")
    elif not narrowed:
        for ref, info in manifest["cases"].items():
            if info["events"] == 0:
                raise Failure(ref, "is listed with no entries in a bundle that leaves none out")


def check_against_checkpoint(
    manifest: dict[str, Any],
    checkpoint: dict[str, Any],
    progress: Progress,
    prefix_root: str | None,
) -> None:
    declared = manifest["checkpoint"]
    size = checkpoint["events"]["size"]
    if declared["proof"] == "whole":
        if progress.events < size:
            raise Failure(
                CHECKPOINT,
                f"the bundle holds {progress.events} entries, fewer than the {size} the "
                "checkpoint counted: entries were deleted",
            )
        if prefix_root != checkpoint["events"]["root"]:
            raise Failure(
                CHECKPOINT,
                f"the first {size} entries do not hash to the checkpoint's events root: "
                "history was removed, reordered or rewritten",
            )
        progress.covered = size
        progress.after = progress.events - size
    else:
        tree = checkpoint.get("cases")
        if tree is not None:
            seen: set[int] = set()
            for ref, info in manifest["cases"].items():
                at = info.get("at_checkpoint")
                absent = info.get("absent_at_checkpoint")
                if at is not None:
                    leaf = leaf_hash(case_head_leaf(ref, at["seq"], at["hash"]))
                    if not verify_inclusion(
                        leaf, at["index"], tree["size"], at["proof"], tree["root"]
                    ):
                        raise Failure(
                            ref,
                            f"its head at the checkpoint (#{at['seq']}) is not in the "
                            "checkpoint's cases tree",
                        )
                    seen.add(at["index"])
                elif absent is not None:
                    if not absent_holds(ref, absent, tree):
                        raise Failure(
                            ref,
                            "the proof that the case is newer than the checkpoint does not hold",
                        )
                else:
                    raise Failure(
                        ref,
                        "needs at_checkpoint or absent_at_checkpoint: the checkpoint has a "
                        "cases tree",
                    )
            if manifest["filters"]["cases"] is None and len(seen) != tree["size"]:
                raise Failure(
                    CHECKPOINT,
                    f"the bundle lists {len(seen)} of the {tree['size']} cases the checkpoint "
                    "signed, yet its selection is every case: a case is missing",
                )
    if declared["covered"] != progress.covered or declared["after"] != progress.after:
        raise Failure(
            CHECKPOINT,
            f"{progress.covered} entries are proven in the signed log and {progress.after} "
            f"are after it; the manifest says {declared['covered']} and {declared['after']}",
        )


def absent_holds(ref: str, absent: dict[str, Any], tree: dict[str, Any]) -> bool:
    """Whether two neighbouring leaves of the sorted cases tree bracket ``ref``."""
    left: dict[str, Any] | None = absent.get("left")
    right: dict[str, Any] | None = absent.get("right")
    size: int = tree["size"]
    for leaf in (left, right):
        if leaf is not None:
            node = leaf_hash(case_head_leaf(leaf["case"], leaf["seq"], leaf["hash"]))
            if not verify_inclusion(node, leaf["index"], size, leaf["proof"], tree["root"]):
                return False
    if left is None:
        if right is None:
            return size == 0
        return bool(right["index"] == 0 and ref < right["case"])
    if right is None:
        return bool(left["index"] == size - 1 and left["case"] < ref)
    return bool(right["index"] == left["index"] + 1 and left["case"] < ref < right["case"])


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
    """Check a bundle; return the verdict (ok, verdict, checked, not_checked, ...).
    Raises NotABundle when the path is no bundle at all."""
    progress = Progress()
    checked: list[str] = []
    result: dict[str, Any] = {
        "ok": False,
        "verdict": "does not verify",
        "bundle": str(path),
        "events": 0,
        "cases": 0,
        "first_bad": None,
        "failure": None,
        "root": None,
        "events_root": None,
        "manifest_sha256": None,
        "personal_data": None,
        "checkpoint": None,
        "checkpoint_trusted": False,
        "covered": 0,
        "after_checkpoint": 0,
        "empty": None,
        "checked": checked,
        "not_checked": ["rest"],
    }
    trusted = trusted_key.lower() if trusted_key else None
    bundle: Bundle | None = None
    try:
        bundle = open_bundle(Path(path))
        manifest, manifest_sha, seal = check_manifest(bundle)
        result["manifest_sha256"] = manifest_sha
        included = manifest["personal_data"]["included"]
        result["personal_data"] = included
        result["checkpoint"] = manifest["checkpoint"] is not None
        check_file_list(bundle, manifest)
        digests = {MANIFEST: manifest_sha, MANIFEST_SHA: hashlib.sha256(seal).hexdigest()}
        events_entry: dict[str, Any] = {}
        for entry in manifest["files"]:
            if entry["path"] == EVENTS:
                events_entry = entry
            else:
                digests[entry["path"]] = check_file(bundle, entry)
        checkpoint = check_checkpoint(bundle, manifest, trusted)
        digest, size, root, heads, commitments, prefix_root = check_events(
            bundle, manifest, progress, included, checkpoint
        )
        result["events_root"] = root
        if digest != events_entry["sha256"]:
            raise Failure(
                EVENTS, f"SHA-256 is {digest}, the manifest says {events_entry['sha256']}"
            )
        if size != events_entry["bytes"]:
            raise Failure(EVENTS, f"is {size} bytes, the manifest says {events_entry['bytes']}")
        digests[EVENTS] = digest
        checked.append("files")
        if progress.events != manifest["events"]["count"]:
            raise Failure(
                EVENTS,
                f"holds {progress.events} entries, the manifest says {manifest['events']['count']}",
            )
        checked += ["entries", "chains"]
        if root != manifest["merkle"]["root"]:
            raise Failure(
                MANIFEST,
                f"the Merkle root of the entries is {root}, the manifest says "
                f"{manifest['merkle']['root']}",
            )
        checked.append("events-root")
        inclusion = checkpoint is not None and manifest["checkpoint"]["proof"] == "inclusion"
        check_cases(manifest, heads, inclusion)
        result["cases"] = len(manifest["cases"])
        checked.append("case-heads")
        if checkpoint is not None:
            checked.append("checkpoint-signature-trusted" if trusted else "checkpoint-signature")
            check_against_checkpoint(manifest, checkpoint, progress, prefix_root)
            if inclusion:
                checked.append("checkpoint-inclusion")
                if checkpoint.get("cases") is not None:
                    checked.append("checkpoint-case-heads")
            else:
                checked.append("checkpoint-whole-log")
            result["checkpoint_trusted"] = trusted is not None
        if included:
            check_personal(bundle, manifest, commitments)
            checked.append("personal-data")
        bundle_hash = bundle_root(digests)
        result["root"] = bundle_hash
        checked.append("bundle-root")
        if expect_root is not None:
            if bundle_hash != expect_root.lower():
                raise Failure(
                    MANIFEST, f"the bundle root is {bundle_hash}, you expected {expect_root}"
                )
            checked.append("expected-root")
        if expect_manifest is not None:
            if manifest_sha != expect_manifest.lower():
                raise Failure(
                    MANIFEST,
                    f"the manifest's SHA-256 is {manifest_sha}, you expected {expect_manifest}",
                )
            checked.append("expected-manifest-sha256")
        result["ok"] = True
        result["not_checked"] = not_checked(
            manifest, checkpoint, progress, trusted, expect_root, expect_manifest
        )
        result["verdict"] = verdict(progress, trusted, expect_root, expect_manifest)
    except Failure as failure:
        result["first_bad"] = failure.where
        result["failure"] = failure.reason
    finally:
        if isinstance(bundle, Zip):
            bundle.zip.close()
    result["events"] = progress.events
    result["covered"] = progress.covered
    result["after_checkpoint"] = progress.after
    result["empty"] = progress.events == 0 if result["ok"] else None
    return result


def not_checked(
    manifest: dict[str, Any],
    checkpoint: dict[str, Any] | None,
    progress: Progress,
    trusted: str | None,
    expect_root: str | None,
    expect_manifest: str | None,
) -> list[str]:
    """What a passing verdict did not establish, most important first."""
    out = []
    given = expect_root is not None or expect_manifest is not None
    if trusted is None and not given:
        out.append("sender")
    if checkpoint is None:
        out.append("signed-log")
    elif trusted is None:
        out.append("checkpoint-signer")
    if progress.after:
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
    if progress.events == 0:
        out.append("empty")
    out += ["report-content", "register"]
    return out


def verdict(
    progress: Progress, trusted: str | None, expect_root: str | None, expect_manifest: str | None
) -> str:
    """One line: against what the bundle verified."""
    parts = []
    if trusted is not None:
        parts.append("proven in the log signed by the key you trust")
    if expect_root is not None or expect_manifest is not None:
        parts.append("matches what you were given")
    text = " and ".join(parts) if parts else "internally consistent only"
    if progress.events == 0:
        text += "; the bundle holds no entries"
    return text


USAGE = (
    "usage: python3 verify.py [BUNDLE] [--json] [--public-key HEX] [--expect-root HEX] "
    "[--expect-manifest-sha256 HEX]"
)


def main(argv: list[str]) -> int:
    args = list(argv)
    as_json = "--json" in args
    while "--json" in args:
        args.remove("--json")
    given: dict[str, str] = {}
    names = {
        "--public-key": "--public-key",
        "--trusted-key": "--public-key",
        "--expect-root": "--expect-root",
        "--expect-manifest-sha256": "--expect-manifest-sha256",
    }
    for option, name in names.items():
        while option in args:
            at = args.index(option)
            if at + 1 >= len(args):
                print(f"{option} needs a value\n{USAGE}", file=sys.stderr)
                return 2
            given[name] = args[at + 1]
            del args[at : at + 2]
    if len(args) > 1 or any(a.startswith("-") for a in args):
        print(USAGE, file=sys.stderr)
        return 2
    for name, value in given.items():
        if not HEX64.match(value.lower()):
            print(f"{name} must be 64 hexadecimal characters\n{USAGE}", file=sys.stderr)
            return 2
    path = Path(args[0]) if args else Path(__file__).resolve().parent
    try:
        result = verify(
            path,
            given.get("--expect-root"),
            given.get("--expect-manifest-sha256"),
            given.get("--public-key"),
        )
    except NotABundle as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    code = 0 if result["ok"] else 1
    try:
        report(path, result, as_json)
        sys.stdout.flush()
    except BrokenPipeError:  # `verify.py ... | head`: the reader left; the verdict stands
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return code


def report(path: Path, result: dict[str, Any], as_json: bool) -> None:
    """Print the verdict: JSON, or lines for people (a failure on standard error)."""
    if as_json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
    elif result["ok"]:
        print(f"OK {path}: {result['verdict']}")
        print(f"  {result['events']} entries in {result['cases']} case(s)")
        print(f"  bundle root {result['root']}")
        for code in result["checked"]:
            print(f"  checked: {CHECKED[code]}")
        for code in result["not_checked"]:
            print(f"  NOT checked: {NOT_CHECKED[code]}")
    else:
        print(f"FAILED {path}: {result['first_bad']}: {result['failure']}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
