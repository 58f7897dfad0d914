"""Which clock rules a bundle's judgements used: the manifest's ``rules`` against
``rules.json``, and ``verify --shipped-rules``.

An export records the rules its report judged clocks with (:mod:`projections.export.
export_rules`); a verifier reports them, so that an inspector is never shown a local
override's judgements as the shipped rule packs', and with ``shipped_only`` fails a bundle
judged with an override (or one that does not say).
"""

from __future__ import annotations

import json
from typing import Any

from projections.export.verify_common import BundleFailure
from projections.export.verify_source import BundleSource

__all__ = ["check_rules"]

_MANIFEST = "manifest.json"


def _record(value: object, where: str) -> dict[str, Any]:
    """A ``{shipped, override}`` record: the shipped packs' SHA-256 and the override."""
    if not isinstance(value, dict) or not isinstance(value.get("shipped"), str):
        raise BundleFailure(where, "rules: expected {file, shipped, override}")
    override = value.get("override")
    if override is not None and (
        not isinstance(override, dict) or not isinstance(override.get("sha256"), str)
    ):
        raise BundleFailure(where, "rules.override: expected null or {path, sha256}")
    return {"shipped": value["shipped"], "override": override}


def check_rules(
    source: BundleSource, manifest: dict[str, Any], *, shipped_only: bool
) -> dict[str, Any] | None:
    """The rules the bundle's clocks were judged with (None: the bundle does not say, as
    before exports recorded them), after checking that ``rules.json`` (hashed with the
    other files already) says the same as the manifest; with ``shipped_only``, a
    BundleFailure unless they were the shipped packs."""
    if "rules" not in manifest:
        if shipped_only:
            raise BundleFailure(
                _MANIFEST,
                "the manifest does not say which clock rules the report was judged with, so "
                "it cannot be shown to be the shipped rule packs (--shipped-rules)",
            )
        return None
    said = _record(manifest["rules"], _MANIFEST)
    name = manifest["rules"].get("file")
    if not isinstance(name, str) or name not in {f["path"] for f in manifest["files"]}:
        raise BundleFailure(_MANIFEST, "rules.file: not one of the files the manifest lists")
    try:
        kept = json.loads(source.read(name))
    except ValueError:
        raise BundleFailure(name, "is not JSON") from None
    if not isinstance(kept, dict):
        raise BundleFailure(name, "expected an object")
    if _record(kept, name) != said:
        raise BundleFailure(name, "names other rules than the manifest's rules")
    override = said["override"]
    if shipped_only and override is not None:
        raise BundleFailure(
            name,
            f"clocks were judged with local rules {override.get('path')} (sha256 "
            f"{override['sha256']}), not the shipped rule packs (--shipped-rules)",
        )
    return said
