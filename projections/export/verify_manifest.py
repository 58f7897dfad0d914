"""The bundle manifest's form: ``manifest.sha256`` seals it, and every field the format
(``docs/bundle-format.md``) gives it has its type and shape, before any check relies on it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from projections.export.verify_common import (
    CHECKPOINT,
    EVENTS,
    FORMAT,
    HEX64,
    MANIFEST,
    MANIFEST_SHA,
    PERSONAL,
    PROOFS,
    BundleFailure,
    is_int,
    name_problem,
)
from projections.export.verify_source import BundleSource


def _is_hex64(value: Any) -> bool:
    return isinstance(value, str) and HEX64.fullmatch(value) is not None


def is_tree(value: Any) -> bool:
    """A checkpoint's ``{size, root}``."""
    return (
        isinstance(value, dict)
        and is_int(value.get("size"))
        and value["size"] >= 0
        and _is_hex64(value.get("root"))
    )


def is_proof(value: Any) -> bool:
    return isinstance(value, list) and all(_is_hex64(p) for p in value)


def _is_leaf(value: Any, with_case: bool) -> bool:
    """A case head in the cases tree: ``{[case,] seq, hash, index, proof}``."""
    return (
        isinstance(value, dict)
        and (not with_case or isinstance(value.get("case"), str))
        and is_int(value.get("seq"))
        and _is_hex64(value.get("hash"))
        and is_int(value.get("index"))
        and is_proof(value.get("proof"))
    )


def read_manifest(source: BundleSource) -> tuple[dict[str, Any], str, bytes]:
    if not source.exists(MANIFEST_SHA):
        raise BundleFailure(MANIFEST_SHA, "missing: it should hold the SHA-256 of manifest.json")
    seal = source.read(MANIFEST_SHA)
    parts = seal.decode("utf-8", "replace").split()
    if len(parts) != 2 or not HEX64.fullmatch(parts[0]) or parts[1].lstrip("*") != MANIFEST:
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
    )


def _case_problem(ref: str, case: Any) -> str | None:
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
    if not isinstance(events, dict) or not is_int(events.get("count")):
        return "events.count is missing"
    merkle = m.get("merkle")
    if not isinstance(merkle, dict) or not _is_hex64(merkle.get("root")):
        return "merkle.root is missing"
    personal = m.get("personal_data")
    if not isinstance(personal, dict) or not isinstance(personal.get("included"), bool):
        return "personal_data.included is missing"
    if personal["included"] != (PERSONAL in paths):
        return "personal_data.included does not match whether personal.jsonl is listed"
    if personal["included"] and not is_int(personal.get("values")):
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
