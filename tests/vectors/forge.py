"""A forger's tools, for the attack tests and the tampered vectors (test code only).

Each function changes a folder bundle the way someone who controls the whole bundle
(but not the store's signing key) would: after the change the bundle is made consistent
again wherever that is possible without the key, entry hashes, chain links, counts,
heads, the entries' Merkle root, the manifest's file hashes and ``manifest.sha256``
included, so that only what the signed checkpoint (or a root given by another route)
proves can catch it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ledger.integrity.canonical import event_hash
from ledger.integrity.merkle import merkle_root


def manifest_of(bundle: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((bundle / "manifest.json").read_bytes())
    return data


def reseal(bundle: Path, manifest: dict[str, Any] | None = None) -> None:
    """Rewrite the manifest's file hashes (of the files that exist) and manifest.sha256."""
    manifest = manifest if manifest is not None else manifest_of(bundle)
    for entry in manifest["files"]:
        path = bundle / entry["path"]
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            entry["sha256"] = hashlib.sha256(data).hexdigest()
            entry["bytes"] = len(data)
    data = orjson.dumps(manifest, option=orjson.OPT_INDENT_2) + b"\n"
    (bundle / "manifest.json").write_bytes(data)
    (bundle / "manifest.sha256").write_text(f"{hashlib.sha256(data).hexdigest()}  manifest.json\n")


def entries_of(bundle: Path) -> list[dict[str, Any]]:
    return [orjson.loads(x) for x in (bundle / "events.jsonl").read_bytes().splitlines()]


def proofs_of(bundle: Path) -> list[bytes] | None:
    path = bundle / "proofs.jsonl"
    return path.read_bytes().splitlines(keepends=True) if path.is_file() else None


def write_entries(
    bundle: Path, entries: list[dict[str, Any]], proofs: list[bytes] | None = None
) -> None:
    """Write events.jsonl (and proofs.jsonl when given), then recompute the manifest's
    count, Merkle root and each listed case's head and count, and reseal."""
    lines = [orjson.dumps(e, option=orjson.OPT_SORT_KEYS) + b"\n" for e in entries]
    (bundle / "events.jsonl").write_bytes(b"".join(lines))
    if proofs is not None:
        (bundle / "proofs.jsonl").write_bytes(b"".join(proofs))
    manifest = manifest_of(bundle)
    manifest["events"]["count"] = len(entries)
    manifest["merkle"].update(root=merkle_root(e["hash"] for e in entries), size=len(entries))
    for ref, case in manifest["cases"].items():
        mine = [e for e in entries if e["case"] == ref]
        case["events"] = len(mine)
        case["head"] = (
            {"seq": mine[-1]["seq"], "hash": mine[-1]["hash"]}
            if mine
            else {"seq": 0, "hash": "0" * 64}
        )
    # The checkpoint's counts, as a forger would claim them.
    if manifest.get("checkpoint"):
        declared = manifest["checkpoint"]
        if declared.get("proof") == "whole":
            size = declared["events"]["size"]
            declared["covered"] = min(size, len(entries))
            declared["after"] = max(0, len(entries) - size)
        elif proofs is not None:
            nulls = sum(1 for p in proofs if orjson.loads(p)["index"] is None)
            declared["covered"] = len(entries) - nulls
            declared["after"] = nulls
    reseal(bundle, manifest)


def rewrite_entry(
    bundle: Path, case: str, seq: int, edit: Callable[[dict[str, Any]], None]
) -> None:
    """Change one entry, re-hash it and re-chain the case's later entries."""
    entries = entries_of(bundle)
    previous = None
    for entry in entries:
        if entry["case"] != case or entry["seq"] < seq:
            continue
        if entry["seq"] == seq:
            edit(entry)
        elif previous is not None:
            entry["prev_hash"] = previous
        entry["hash"] = event_hash(entry)
        previous = entry["hash"]
    write_entries(bundle, entries, proofs_of(bundle))


def delete_entries(
    bundle: Path, doomed: Callable[[dict[str, Any]], bool], drop_cases: bool = False
) -> None:
    """Remove entries (and their proofs.jsonl lines); ``drop_cases`` also removes the
    cases left with no entry from the manifest."""
    entries = entries_of(bundle)
    proofs = proofs_of(bundle)
    keep = [i for i, e in enumerate(entries) if not doomed(e)]
    gone = {e["case"] for e in entries} - {entries[i]["case"] for i in keep}
    write_entries(
        bundle, [entries[i] for i in keep], None if proofs is None else [proofs[i] for i in keep]
    )
    if drop_cases and gone:
        manifest = manifest_of(bundle)
        for ref in gone:
            manifest["cases"].pop(ref, None)
        reseal(bundle, manifest)


def switch_checkpoint_off(bundle: Path) -> None:
    """What the forger of issue 12 wrote: ``checkpoint.applies: false`` (format 1's switch;
    in format 2 an unknown key that changes nothing)."""
    manifest = manifest_of(bundle)
    if manifest.get("checkpoint"):
        manifest["checkpoint"]["applies"] = False
    reseal(bundle, manifest)


def strip_checkpoint(bundle: Path) -> None:
    """Remove the checkpoint and every proof, as if the store had none."""
    manifest = manifest_of(bundle)
    manifest["checkpoint"] = None
    manifest["files"] = [
        f for f in manifest["files"] if f["path"] not in ("checkpoint.json", "proofs.jsonl")
    ]
    for case in manifest["cases"].values():
        case.pop("at_checkpoint", None)
        case.pop("absent_at_checkpoint", None)
    for name in ("checkpoint.json", "proofs.jsonl"):
        (bundle / name).unlink(missing_ok=True)
    reseal(bundle, manifest)


def edit_file(bundle: Path, name: str, old: bytes, new: bytes) -> None:
    """Change the text of one file (report.html, timeline.csv) and reseal."""
    path = bundle / name
    data = path.read_bytes()
    assert old in data, f"{old!r} is not in {name}"
    path.write_bytes(data.replace(old, new, 1))
    reseal(bundle)


def decision_seq(bundle: Path, case: str) -> int:
    """The seq of the case's first DecisionMade in the bundle."""
    return next(
        e["seq"] for e in entries_of(bundle) if e["case"] == case and e["type"] == "DecisionMade"
    )


def rewrite_decision(bundle: Path, case: str) -> None:
    """Turn the case's decision around: its rationale says the opposite."""

    def edit(entry: dict[str, Any]) -> None:
        entry["rationale"] = "No review is needed: the criteria are not met."

    rewrite_entry(bundle, case, decision_seq(bundle, case), edit)
