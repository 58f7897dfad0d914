"""The verifier's checks after the events pass: each case's head, count and gaps against the
manifest and the export's selection, the personal data against its commitments, and the
bundle root over every file.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ledger.integrity.merkle import MerkleTree
from projections.export.verify_common import (
    HEX32,
    PERSONAL,
    BundleFailure,
    canonical_bytes,
    is_int,
    load_line,
    std_canonical_bytes,
)
from projections.export.verify_events import CaseHead, LineReader
from projections.export.verify_source import BundleSource


def _narrowing(manifest: dict[str, Any]) -> bool:
    """Whether the export's filters leave entries out (dates or an as-of time)."""
    f = manifest["filters"]
    return any(f.get(k) is not None for k in ("occurred_from", "occurred_to", "as_of"))


def check_cases(manifest: dict[str, Any], heads: dict[str, CaseHead], inclusion: bool) -> None:
    narrowed = _narrowing(manifest)
    for ref, info in manifest["cases"].items():
        head = heads.get(ref) or CaseHead()
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


def bundle_root(digests: dict[str, str]) -> str:
    """The bundle root: RFC 9162 over ``{"path", "sha256"}`` of every file, by name."""
    tree = MerkleTree()
    for name in sorted(digests):
        tree.add_bytes(std_canonical_bytes({"path": name, "sha256": digests[name]}))
    return tree.root()


def check_personal(
    source: BundleSource, manifest: dict[str, Any], commitments: dict[tuple[str, int, str], Any]
) -> None:
    seen: set[tuple[str, int, str]] = set()
    number = 0
    with source.open(PERSONAL) as stream:
        for line in LineReader(stream, PERSONAL):
            number += 1
            where = f"{PERSONAL} line {number}"
            if line is None:
                raise BundleFailure(where, "the file ends in the middle of a line")
            row, _ = load_line(line, PERSONAL, number)
            if not (
                isinstance(row, dict)
                and isinstance(row.get("case"), str)
                and is_int(row.get("seq"))
                and isinstance(row.get("field"), str)
                and "value" in row
                and isinstance(row.get("salt"), str)
                and HEX32.fullmatch(row["salt"])
            ):
                raise BundleFailure(where, "needs case, seq, field, value and a 16-byte hex salt")
            label = f"{row['case']}#{row['seq']} personal.{row['field']}"
            try:
                text = canonical_bytes(row)
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
            actual = hashlib.sha256(bytes.fromhex(row["salt"]) + canonical_bytes(row["value"]))
            if actual.hexdigest() != expected:
                raise BundleFailure(label, "does not match its commitment in the hashed entry")
    declared = manifest["personal_data"]["values"]
    if number != declared:
        raise BundleFailure(PERSONAL, f"holds {number} values, the manifest says {declared}")
