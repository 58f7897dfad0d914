"""The events pass of the bundle verifier: ``events.jsonl`` line by line (canonical JSON,
hashes, positions, chain links and gaps) with each entry's inclusion proof from
``proofs.jsonl`` beside it, keeping one head per case and the personal-data commitments.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import IO, Any

import orjson

from ledger.integrity.canonical import GENESIS_HASH, personal_commitments
from ledger.integrity.merkle import MerkleTree, leaf_hash, verify_inclusion
from projections.export.verify_common import (
    EVENTS,
    HEX_DIGITS,
    PROOFS,
    READ_CHUNK,
    READ_ERRORS,
    SORT_KEYS,
    BundleFailure,
    canonical_bytes,
    is_int,
    load_line,
)
from projections.export.verify_manifest import is_proof
from projections.export.verify_source import BundleSource


@dataclass(slots=True)
class CaseHead:
    seq: int = 0
    hash: str = GENESIS_HASH
    count: int = 0
    gap_index: int = 0


@dataclass
class EventsPass:
    sha256: str
    size: int
    root: str
    heads: dict[str, CaseHead]
    commitments: dict[tuple[str, int, str], Any]
    prefix_root: str | None


class EventCounter:
    """How many entries were checked, proven in the signed log, and after it."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.events = 0
        self.covered = 0
        self.after = 0


class LineReader:
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
                block = self._stream.read(READ_CHUNK)
            except READ_ERRORS as exc:
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


LineFacts = tuple[str, int, int, str, str, dict[str, Any] | None]
"""What the sequential checks need of a line: case, seq, position, hash, prev_hash and
the personal-data commitments (when asked for)."""


def check_event_line(text: bytes | None, number: int, want_personal: bool) -> LineFacts:
    """The checks of one line of events.jsonl on its own: JSON, integers only, the
    fields, canonical form, and the entry's own hash.  Raises the first failure."""
    if text is None:
        raise BundleFailure(f"{EVENTS} line {number}", "the file ends in the middle of a line")
    event, exact = load_line(text, EVENTS, number)
    if type(event) is not dict:
        raise BundleFailure(f"{EVENTS} line {number}", "is not a JSON object")
    case = event.get("case")
    seq = event.get("seq")
    position = event.get("position")
    own = event.get("hash")
    prev = event.get("prev_hash")
    if not (type(case) is str and type(seq) is int and seq >= 1 and type(position) is int):
        raise BundleFailure(f"{EVENTS} line {number}", "needs case, seq and position")
    if type(own) is not str or len(own) != 64 or own.strip(HEX_DIGITS):
        raise BundleFailure(f"{EVENTS} line {number}", "needs a hash of 64 hex digits")
    if type(prev) is not str or len(prev) != 64 or prev.strip(HEX_DIGITS):
        raise BundleFailure(f"{EVENTS} line {number}", "needs a prev_hash of 64 hex digits")
    if exact:
        canonical = orjson.dumps(event, option=SORT_KEYS) == text
    else:
        try:
            canonical = canonical_bytes(event) == text
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
        body = canonical_bytes(event)
    if hashlib.sha256(body).hexdigest() != own:
        raise BundleFailure(f"{case}#{seq}", "does not match its hash (the entry was altered)")
    found = personal_commitments(event) if want_personal else None
    return case, seq, position, own, prev, found or None


class _Proofs:
    """``proofs.jsonl``, read line by line beside ``events.jsonl`` (in this process)."""

    def __init__(self, source: BundleSource) -> None:
        self._stack = ExitStack()
        stream = self._stack.enter_context(source.open(PROOFS))
        self._lines = iter(LineReader(stream, PROOFS))
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
        row, _ = load_line(line, PROOFS, self.number)
        index = row.get("index", False) if isinstance(row, dict) else False
        if not (
            isinstance(row, dict)
            and (
                (index is None and set(row) == {"index"})
                or (is_int(index) and set(row) == {"index", "proof"} and is_proof(row["proof"]))
            )
        ):
            raise BundleFailure(
                where, 'must be {"index": null} or {"index": N, "proof": [hex, ...]}'
            )
        if canonical_bytes(row) != line:
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


class SequenceCheck:
    """The checks that need the lines before: positions increasing, chain links and
    listed gaps per case, the Merkle tree (and the root of the checkpoint's first
    entries for a whole-log proof), each entry's inclusion proof, and the personal-data
    commitments.  Memory: one head per case."""

    def __init__(
        self,
        manifest: dict[str, Any],
        counter: EventCounter,
        checkpoint: dict[str, Any] | None,
        source: BundleSource,
    ) -> None:
        self.cases: dict[str, Any] = manifest["cases"]
        self.heads: dict[str, CaseHead] = {}
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

    def step(self, facts: LineFacts) -> None:
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
            head = self.heads[case] = CaseHead()
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

    def result(self, sha256: str, size: int) -> EventsPass:
        if self.proofs is not None:
            self.proofs.finish()
        return EventsPass(
            sha256, size, self.tree.root(), self.heads, self.commitments, self.prefix_root
        )

    def close(self) -> None:
        if self.proofs is not None:
            self.proofs.close()
