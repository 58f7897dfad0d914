"""Audit export bundles that an inspector can verify without trusting us.

``export_bundle`` writes, for the whole store or some cases, optionally filtered by when
things happened (``occurred_at``) and by what the record showed at a time (``as_of``):

- ``events.jsonl``: each entry's canonical JSON (the exact bytes that were hashed, plus
  ``position`` and ``hash``), one per line, in global position order;
- ``personal.jsonl`` (only with ``include_personal_data``): values and salts;
- ``timeline.csv`` and ``report.html`` (in a large bundle with a ``case-<REF>.html`` per
  case) for people, and ``rules.json`` (the clock rules they were judged with: the
  shipped packs, or a local override, said in a banner);
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

This module is the export itself, its two passes and the manifest; the rest are modules of
their own in :mod:`projections.export`: what an export selects and reads from the store
(``export_selection``), the bundle's files written and hashed, its destination and the zip
(``export_files``), the manifest's rules and the bundle root (``export_manifest``), the
clock rules the bundle's judgements used (``export_rules``: ``rules.json``), a
subset's inclusion proofs against the checkpoint (``export_proofs``), and the files for
people, one case at a time (``export_cases``).

Why one module: what is left here is the one streaming run, whose two passes share its
state as they go (the incremental Merkle root, each case's chain head and gaps, the
personal-data screen of every line written); splitting the passes apart would pass that
state between modules for no reader's benefit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Final

import orjson

from ledger.checkpoints.checkpoint import latest_checkpoint, make_checkpoint
from ledger.errors import UsageError
from ledger.integrity.canonical import canonical_json, personal_commitments
from ledger.integrity.merkle import MerkleTree
from projections.assess.rules import local_rules
from projections.export.export_cases import (
    CASE_PAGES_ABOVE,
    REPORT_DETAIL_CASES,
    CaseState,
    check_case_pages_above,
    is_case_page,
    load_template,
    write_case_files,
)
from projections.export.export_files import (
    CHECKPOINT_FILE,
    EVENTS_FILE,
    MANIFEST_FILE,
    MANIFEST_SHA_FILE,
    PERSONAL_FILE,
    PROOFS_FILE,
    REPORT_FILE,
    TIMELINE_FILE,
    VERIFY_MD,
    VERIFY_PY,
    HashingFile,
    check_destination,
    swap_in,
    write_file,
    zip_folder,
)
from projections.export.export_manifest import (
    BUNDLE_FORMAT,
    BUNDLE_ROOT_RULE,
    CANONICAL_JSON_RULE,
    CHAIN_RULE,
    CHECKPOINT_RULE,
    EVENT_HASH_RULE,
    bundle_root,
    generator_version,
)
from projections.export.export_proofs import log_index
from projections.export.export_rules import RULES_FILE, rules_json, rules_record
from projections.export.export_selection import (
    ExportFilters,
    LedgerToExport,
    StoreDoesNotVerify,
    TimeBound,
    entries_in_order,
    parse_moment,
    recorded_key,
)
from projections.export.export_timeline import EntryRows, PipedEntryRows, entry_rows
from projections.export.personal_check import scan_bytes, scan_file
from projections.export.verify import BundleVerifyResult, verify_bundle

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


#: Lines and rows are written in batches of this many.
_BATCH: Final = 2000


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
    local_rules: Any = None
    """The :class:`~projections.assess.rules.LocalRules` the clocks were judged with, or
    None for the shipped packs (recorded in the manifest's ``rules`` and ``rules.json``)."""

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
            "rules": rules_record(self.local_rules),
        }

    def to_json(self) -> dict[str, Any]:
        """``export --json`` (the facade's name for :meth:`as_dict`)."""
        return self.as_dict()

    def summary(self) -> str:
        n = len(self.cases)
        return (
            f"wrote {self.out}: {self.events} entries in {n} case{'s' if n != 1 else ''}, "
            f"bundle root {self.root}, manifest SHA-256 {self.manifest_sha256}; personal "
            f"data {'INCLUDED' if self.personal_data else 'left out'}"
        )


def export_bundle(
    ledger: LedgerToExport,
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
    case_pages_above: int = CASE_PAGES_ABOVE,
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
    forces one or the other; above ``case_pages_above`` cases each section is a page of
    its own (:func:`~projections.export.export_cases.write_case_files`).  The bundle
    appears whole or not at all: it is written beside ``out`` and moved into place at the end.
    """
    check_case_pages_above(case_pages_above)
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
    filters = ExportFilters(
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
    earlier = check_destination(out, as_zip, replace)
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
            ledger,
            work,
            filters,
            include_personal_data,
            full_report,
            progress,
            checkpoint,
            case_pages_above,
        )
        if as_zip:
            zip_folder(work, out, summary.files, top=out.stem)  # replaces it atomically
            shutil.rmtree(work)
        elif earlier:
            swap_in(work, out)
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


PROGRESS_EVERY = 10_000
"""How often (in entries read) an export reports its progress."""


def _write_bundle(
    ledger: LedgerToExport,
    work: Path,
    filters: ExportFilters,
    include_personal: bool,
    full_report: bool | None,
    progress: Callable[[int], None] | None = None,
    checkpoint: dict[str, Any] | None = None,
    case_pages_above: int = CASE_PAGES_ABOVE,
) -> ExportSummary:
    # The timeline's rows, and the personal values looked for in each entry as it is
    # written: in a second process for a large store (started before any thread).
    count = getattr(ledger, "count_events", None)
    screen = entry_rows(
        ledger,
        work / TIMELINE_FILE,
        screening=not include_personal,
        stored=count() if callable(count) else 0,
    )
    try:
        return _write_files(
            ledger,
            work,
            filters,
            include_personal,
            full_report,
            progress,
            checkpoint,
            case_pages_above,
            screen,
        )
    except BaseException:
        screen.abort()
        raise
    finally:
        screen.end()


def _write_files(
    ledger: LedgerToExport,
    work: Path,
    filters: ExportFilters,
    include_personal: bool,
    full_report: bool | None,
    progress: Callable[[int], None] | None,
    checkpoint: dict[str, Any] | None,
    case_pages_above: int,
    screen: EntryRows | PipedEntryRows,
) -> ExportSummary:
    states: dict[str, CaseState] = {}
    read = 0
    tree = MerkleTree()
    limit = filters.recorded_limit
    cutoff = 0
    commitments = 0
    whole_store = filters.cases is None and not filters.narrowing
    # The signed log the bundle proves its entries against: a whole-store bundle holds
    # the log's first `size` entries, whose root the verifier recomputes; a subset
    # carries an inclusion proof per entry (proofs.jsonl) and each case's head.
    log = None if checkpoint is None or whole_store else log_index(ledger, checkpoint)
    signed_size = int(checkpoint["events"]["size"]) if checkpoint is not None else 0
    prefix_root = tree.root() if checkpoint is not None and signed_size == 0 else None
    covered = 0
    events = HashingFile(work / EVENTS_FILE, background=True)
    proofs = HashingFile(work / PROOFS_FILE) if log is not None else None
    lines: list[bytes] = []
    proof_lines: list[bytes] = []
    records: list[dict[str, Any]] = []
    add_leaf = tree.add
    known = filters.known
    in_window = filters.in_window
    narrowing = filters.narrowing
    # Pass 1: the entries, in global position order, straight to events.jsonl (and one
    # timeline.csv row each); per case only its chain head and gaps are kept.
    for position, record, line in entries_in_order(ledger, filters.cases):
        read += 1
        if progress is not None and read % PROGRESS_EVERY == 0:
            progress(read)
        ref = record["case"]
        seq = record["seq"]
        state = states.get(ref)
        if state is None:
            state = states[ref] = CaseState()
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
        records.append(record)
        add_leaf(own)
        if checkpoint is not None and log is None and tree.size == signed_size:
            prefix_root = tree.root()
        if log is not None:
            proof = log.entry_proof(ref, seq, position, own)
            covered += proof["index"] is not None
            proof_lines.append(canonical_json(proof) + b"\n")
        if len(lines) >= _BATCH:
            joined = b"".join(lines)
            events.write(joined)
            screen.add(tree.size - len(lines) + 1, joined, lines, records)
            lines = []
            records = []
            if proofs is not None:
                proofs.write(b"".join(proof_lines))
                proof_lines.clear()
        if "personal" in record or record["type"] == "EntryCorrected":
            found = personal_commitments(record)
            if found:
                commitments += len(found)
                state.personal_seqs.add(seq)
    joined = b"".join(lines)
    events.write(joined)
    screen.add(tree.size - len(lines) + 1, joined, lines, records)
    files = [events.close(), screen.close()]
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
    generated_at = recorded_key(now)
    version = generator_version()
    # The personal values to look for in every file before the bundle says none is there.
    check = None if include_personal else screen.finish(exported)
    if check is not None:
        screen.start_timeline_scan(check, list(exported))
    statement = (
        "Personal data is included in personal.jsonl (value and salt per field); "
        "check each against its commitment."
        if check is None
        else check.statement()
    )
    local = local_rules()
    # Pass 2: one case at a time, the files for people and the personal data.
    detail = full_report if full_report is not None else len(exported) <= REPORT_DETAIL_CASES
    personal_values, pass2_files, report_form = write_case_files(
        ledger,
        work,
        filters,
        exported,
        cutoff,
        include_personal,
        now=now,
        detail=detail,
        case_pages=detail and len(exported) > case_pages_above,
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
            "local_rules": local.as_dict() if local is not None else None,
        },
    )
    files.append(write_file(work / RULES_FILE, rules_json()))
    files.extend(pass2_files)
    subset = bool(filters.cases) or filters.narrowing
    checkpoint_manifest: dict[str, Any] | None = None
    if checkpoint is not None:
        data = orjson.dumps(checkpoint, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
        files.append(write_file(work / CHECKPOINT_FILE, data + b"\n"))
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
    verify_md = load_template("VERIFY.md.jinja").render(
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
    files.append(write_file(work / VERIFY_MD, verify_md.encode("utf-8")))
    checker = resources.files("projections").joinpath("data", "verify.py").read_bytes()
    files.append(write_file(work / VERIFY_PY, checker))
    order = [
        EVENTS_FILE,
        PROOFS_FILE,
        PERSONAL_FILE,
        TIMELINE_FILE,
        REPORT_FILE,
        RULES_FILE,
        CHECKPOINT_FILE,
        VERIFY_MD,
        VERIFY_PY,
    ]
    # A stable sort: the case pages (written after report.html) stay right after it.
    files.sort(key=lambda f: order.index(REPORT_FILE if is_case_page(f["path"]) else f["path"]))
    if check is not None:
        for written in files:
            if written["path"] == EVENTS_FILE and screen.complete:
                screen.raise_first(check)  # screened as it was written
            elif written["path"] == TIMELINE_FILE:
                screen.scan_timeline(check)  # in two halves for a large store
            else:
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
        "report": report_form,
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
        "rules": rules_record(local),
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
        local_rules=local,
    )
