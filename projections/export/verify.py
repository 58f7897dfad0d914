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

The steps are modules of their own and this one runs them in order: what they share (the
file names, the result, the failure, strict JSON: ``verify_common``), opening the bundle
(``verify_source``), the manifest's form (``verify_manifest``), the events pass
(``verify_events``; in worker processes for a large bundle, ``verify_parallel``), the
checkpoint (``verify_checkpoint``), and the cases, the personal data and the bundle root
(``verify_cases``), all in :mod:`projections.export`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Final

from projections.export.verify_cases import bundle_root, check_cases, check_personal
from projections.export.verify_checkpoint import check_against_checkpoint, check_checkpoint
from projections.export.verify_common import (
    CHECKED,
    EVENTS,
    MANIFEST,
    MANIFEST_SHA,
    NOT_CHECKED,
    BundleFailure,
    BundleVerifyResult,
    NotABundle,
)
from projections.export.verify_events import (
    EventCounter,
    EventsPass,
    LineReader,
    SequenceCheck,
    check_event_line,
)
from projections.export.verify_manifest import read_manifest
from projections.export.verify_parallel import check_events_in_parallel, worker_count
from projections.export.verify_rules import check_rules
from projections.export.verify_source import BundleSource

__all__ = [
    "CHECKED",
    "NOT_CHECKED",
    "BundleFailure",
    "BundleVerifyResult",
    "NotABundle",
    "verify_bundle",
]

#: The events of a bundle checked by worker processes (see
#: :data:`~projections.export.verify_parallel.PARALLEL_FROM_BYTES`) go to them in byte ranges
#: of about this many bytes.
PARALLEL_CHUNK: Final = 8 << 20


def _check_events(
    source: BundleSource,
    manifest: dict[str, Any],
    counter: EventCounter,
    want_personal: bool,
    checkpoint: dict[str, Any] | None,
    workers: int | None = None,
    chunk_bytes: int = PARALLEL_CHUNK,
) -> EventsPass:
    """Stream events.jsonl through the per-line and the sequential checks."""
    folder = source.folder_path(EVENTS)
    if folder is not None:
        size = folder.stat().st_size
        count = worker_count(workers, size)
        if count > 1:
            from concurrent.futures.process import BrokenProcessPool

            sequence = SequenceCheck(manifest, counter, checkpoint, source)
            try:
                return check_events_in_parallel(folder, sequence, want_personal, count, chunk_bytes)
            except (BrokenProcessPool, PermissionError, NotImplementedError):
                counter.reset()  # no worker processes here: check it in this one
            finally:
                sequence.close()
    sequence = SequenceCheck(manifest, counter, checkpoint, source)
    check_line = check_event_line
    step = sequence.step
    try:
        with source.open(EVENTS) as stream:
            reader = LineReader(stream, EVENTS)
            number = 0
            for text in reader:
                number += 1
                step(check_line(text, number, want_personal))
        return sequence.result(reader.sha.hexdigest(), reader.size)
    finally:
        sequence.close()


def verify_bundle(
    path: Path | str,
    *,
    expect_root: str | None = None,
    expect_manifest_sha256: str | None = None,
    trusted_key: str | None = None,
    workers: int | None = None,
    chunk_bytes: int = PARALLEL_CHUNK,
    shipped_rules: bool = False,
) -> BundleVerifyResult:
    """Check a bundle folder or ``.zip``; never raises for a bad bundle, only
    :class:`NotABundle` for a path that is no bundle at all.

    ``expect_root`` (the bundle root), ``expect_manifest_sha256`` and ``trusted_key``
    (the checkpoint signer's Ed25519 public key, hex) are what the recipient was told by
    another route; given a trusted key, the checkpoint is always applied and its absence
    fails.  ``workers``: how many processes check the lines of a folder bundle's
    events.jsonl (default: up to 4 when it is at least 64 MB, else 1), in byte ranges of
    about ``chunk_bytes`` of whole lines; the verdict is the same either way.  The clock
    rules the report was judged with are reported (``rules``); ``shipped_rules`` fails a
    bundle judged with a local override (or one that does not say).
    """
    path = Path(path)
    counter = EventCounter()
    result = BundleVerifyResult(bundle=str(path))
    trusted = trusted_key.lower() if trusted_key else None
    checked = result.checked
    source: BundleSource | None = None
    try:
        source = BundleSource(path)
        manifest, manifest_sha, seal = read_manifest(source)
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
        result.rules = check_rules(source, manifest, shipped_only=shipped_rules)
        if result.rules is not None:
            checked.append("rules")
        if shipped_rules:
            checked.append("shipped-rules")
        checkpoint = check_checkpoint(source, manifest, trusted)
        passed = _check_events(
            source, manifest, counter, included, checkpoint, workers, chunk_bytes
        )
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
        check_cases(manifest, passed.heads, inclusion)
        result.cases = len(manifest["cases"])
        checked.append("case-heads")
        if checkpoint is not None:
            checked.append("checkpoint-signature-trusted" if trusted else "checkpoint-signature")
            check_against_checkpoint(manifest, checkpoint, counter, passed.prefix_root)
            if inclusion:
                checked.append("checkpoint-inclusion")
                if checkpoint.get("cases") is not None:
                    checked.append("checkpoint-case-heads")
            else:
                checked.append("checkpoint-whole-log")
            result.checkpoint_trusted = trusted is not None
        if included:
            check_personal(source, manifest, passed.commitments)
            checked.append("personal-data")
        root = bundle_root(digests)
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
    counter: EventCounter,
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


def _verdict(counter: EventCounter, trusted: str | None, given: bool) -> str:
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
