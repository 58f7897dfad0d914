"""The clock rules an export's judgements used: ``rules.json`` and the manifest's ``rules``.

A bundle's report judges clocks; an inspector must be able to tell whether that was done
with the shipped rule packs or with a user's local override (``--rules FILE``), so the
export writes the rules in use as canonical JSON (``rules.json``, listed and hashed in the
manifest's files and so covered by the bundle root) and records in the manifest
``rules: {"file", "shipped": <sha256 of the shipped packs>, "override": null | {"path",
"sha256"}}``.  Both verifiers report it, and ``verify --shipped-rules`` fails a bundle
whose ``override`` is not null.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from ledger.integrity.canonical import canonical_json
from projections.assess.rules import all_rule_packs, local_rules, shipped_rules_sha256

__all__ = ["RULES_FILE", "rules_json", "rules_record"]

RULES_FILE: Final = "rules.json"
"""The clock rules the bundle's judgements used, as canonical JSON."""


def rules_record(local: Any) -> dict[str, Any]:
    """The manifest's ``rules``: the SHA-256 of the shipped packs, and the local override
    file the clocks were judged with (None when they were judged with the shipped packs)."""
    return {
        "file": RULES_FILE,
        "shipped": shipped_rules_sha256(),
        "override": None if local is None else local.as_dict(),
    }


def rules_json() -> bytes:
    """``rules.json``: every rule pack in use (shipped, or with the override laid over),
    each clock rule with its dates, limit and source, as canonical JSON."""
    packs = {
        regime: {
            "title": pack.title,
            "calendar": pack.calendar,
            "clocks": [
                {
                    "name": rule.name,
                    "limit": rule.limit,
                    "unit": rule.unit,
                    "effective_from": _day(rule.effective_from),
                    "effective_to": _day(rule.effective_to),
                    "source": rule.source,
                    "rule": repr(rule),
                }
                for rule in pack.clocks
            ],
        }
        for regime, pack in all_rule_packs().items()
    }
    local = local_rules()
    body = {
        "shipped": shipped_rules_sha256(),
        "override": None if local is None else local.as_dict(),
        "packs": packs,
    }
    return canonical_json(body) + b"\n"


def _day(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None
