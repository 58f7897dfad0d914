"""The shipped rule packs as parsed, into a table (written by ``python -m cli.reference``).

Every command that judges clocks reads the shipped packs (``projections/rules/*.toml``),
and parsing them validates each against the pydantic schema of
:mod:`projections.assess.rule_schema` and the catalogue's models: about 40 ms of every cold
``status``, ``due`` or ``clocks`` (issue 18).  So this writes each parsed
:class:`~projections.assess.rules.RulePack` (its ``repr``, which builds it again from the
classes of :mod:`projections.assess.rules`) into :mod:`projections.assess.shipped_pack_table`
with the SHA-256 of the text it was parsed from, and
:func:`projections.assess.rules.shipped_rule_pack` takes a pack from the table only for that
very text: a pack file edited where it is installed is parsed, and checked, as before.
Its ``--check`` (run by CI) fails when the table is not what parsing the files gives.
Nothing imports this module (it imports the rules; the rules import only the table).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

__all__ = ["table_source", "text_sha256"]

TABLE_MODULE = Path(__file__).with_name("shipped_pack_table.py")


def text_sha256(text: str) -> str:
    """The digest a pack's table entry is kept under: of its file's text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def table_source() -> str:
    """The text of :mod:`projections.assess.shipped_pack_table`, from parsing the files."""
    # lazy: the rules import this module's table, not this module (no cycle; ~40 ms)
    from projections.assess import rules

    packs = {
        regime: rules.loads_rule_pack(rules._shipped_text(regime), f"{regime}.toml")
        for regime in rules.REGIMES
    }
    reprs = {regime: repr(pack) for regime, pack in packs.items()}
    names = sorted({n for text in reprs.values() for n in re.findall(r"\b([A-Z]\w*)\(", text)})
    lines = [
        '"""The shipped rule packs as parsed, generated from ``projections/rules/*.toml`` by',
        "``python -m cli.reference`` (do not edit; its ``--check`` compares it",
        "with parsing the files).  Each pack is the ``repr`` of its RulePack, built again by",
        ':func:`projections.assess.rules.shipped_rule_pack` from the classes :data:`NAMES`."""',
        "",
        f"NAMES: tuple[str, ...] = {tuple(names)!r}",
        "",
        "SOURCE_SHA256: dict[str, str] = {",
        *(f"    {r!r}: {text_sha256(rules._shipped_text(r))!r}," for r in packs),
        "}",
        "",
        "PACKS: dict[str, str] = {",
        *(f"    {r!r}: {text!r}," for r, text in reprs.items()),
        "}",
    ]
    return "\n".join(lines) + "\n"
