"""What every step of the in-package bundle verifier shares: the bundle's file names, the
codes of what a verdict did and did not check, the verdict itself
(:class:`BundleVerifyResult`), the first failure (:class:`BundleFailure`), and strict JSON
(no float, no duplicate key) with its canonical form.
"""

from __future__ import annotations

import json
import re
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from ledger.errors import UsageError

FORMAT: Final = "caseledger-bundle/2"
MANIFEST: Final = "manifest.json"
MANIFEST_SHA: Final = "manifest.sha256"
EVENTS: Final = "events.jsonl"
PROOFS: Final = "proofs.jsonl"
PERSONAL: Final = "personal.jsonl"
CHECKPOINT: Final = "checkpoint.json"
HEX64: Final = re.compile(r"^[0-9a-f]{64}$")
HEX32: Final = re.compile(r"^[0-9a-f]{32}$")
READ_CHUNK: Final = 1 << 20
SORT_KEYS: Final = orjson.OPT_SORT_KEYS
HEX_DIGITS: Final = "0123456789abcdef"
#: What reading a damaged file or zip member can raise.
READ_ERRORS: Final = (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error)

#: What each code in a verdict's ``checked`` list means (the same as verify.py's).
CHECKED: Final = {
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
    "rules": "which clock rules the report was judged with (rules.json against the "
    "manifest's rules)",
    "shipped-rules": "the report's clocks were judged with the shipped rule packs, no "
    "local override",
}
#: What each code in a verdict's ``not_checked`` list means (the same as verify.py's).
NOT_CHECKED: Final = {
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
    "report-content": "that report.html, its case pages (case-*.html) and timeline.csv say "
    "what the entries say (only their hashes are checked)",
    "register": "the register (who was enrolled, with which roles): it is not in a bundle",
    "rest": "the checks after the first failure",
}


class BundleFailure(Exception):
    """The first check that failed: ``where`` (file, line, entry or case) and why."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


class NotABundle(UsageError):
    """The path is no bundle at all: a usage error (exit code 2), not a verdict."""


@dataclass
class BundleVerifyResult:
    """What ``caseledger verify BUNDLE`` reports: the same keys as ``verify.py --json``."""

    bundle: str
    ok: bool = False
    verdict: str = "does not verify"
    events: int = 0
    cases: int = 0
    first_bad: str | None = None
    failure: str | None = None
    root: str | None = None
    events_root: str | None = None
    manifest_sha256: str | None = None
    personal_data: bool | None = None
    checkpoint: bool | None = None
    checkpoint_trusted: bool = False
    covered: int = 0
    after_checkpoint: int = 0
    empty: bool | None = None
    checked: list[str] = field(default_factory=list)
    not_checked: list[str] = field(default_factory=lambda: ["rest"])
    rules: dict[str, Any] | None = None
    """The clock rules the report was judged with: ``{shipped, override}`` (None: the
    bundle does not say)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "bundle": self.bundle,
            "events": self.events,
            "cases": self.cases,
            "first_bad": self.first_bad,
            "failure": self.failure,
            "root": self.root,
            "events_root": self.events_root,
            "manifest_sha256": self.manifest_sha256,
            "personal_data": self.personal_data,
            "checkpoint": self.checkpoint,
            "checkpoint_trusted": self.checkpoint_trusted,
            "covered": self.covered,
            "after_checkpoint": self.after_checkpoint,
            "empty": self.empty,
            "checked": list(self.checked),
            "not_checked": list(self.not_checked),
            "rules": self.rules,
        }

    def summary(self) -> str:
        """The verdict for people: against what it verified, and what it did not check."""
        if not self.ok:
            return f"bundle {self.bundle} DOES NOT VERIFY at {self.first_bad}: {self.failure}"
        cases = f"{self.cases} case{'' if self.cases == 1 else 's'}"
        lines = [
            f"bundle {self.bundle}: {self.verdict}",
            f"  {self.events} entries in {cases}; bundle root {self.root}",
            f"  {rules_line(self.rules)}",
        ]
        lines += [f"  checked: {CHECKED[c]}" for c in self.checked]
        lines += [f"  NOT checked: {NOT_CHECKED[c]}" for c in self.not_checked]
        return "\n".join(lines)


def rules_line(rules: dict[str, Any] | None) -> str:
    """One line for people: which clock rules the bundle's judgements used."""
    if rules is None:
        return "rules: the bundle does not say which clock rules judged it (an older export)"
    override = rules["override"]
    if override is None:
        return f"rules: clocks judged with the shipped rule packs (sha256 {rules['shipped']})"
    return (
        f"rules: clocks judged with LOCAL rules {override.get('path')} (sha256 "
        f"{override['sha256']}), not the shipped rule packs (sha256 {rules['shipped']})"
    )


# --- JSON, strictly ----------------------------------------------------------------------


class _NotInteger(ValueError):
    pass


def _reject_number(text: str) -> Any:
    raise _NotInteger(text)


def _strict_loads(data: bytes) -> Any:
    """The standard library's reading, with every non-integer number refused."""
    return json.loads(data, parse_float=_reject_number, parse_constant=_reject_number)


def std_canonical_bytes(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def canonical_bytes(value: Any) -> bytes:
    """Canonical JSON; orjson when it can (it refuses integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, option=SORT_KEYS)
    except orjson.JSONEncodeError:
        return std_canonical_bytes(value)


_SCALARS: Final = frozenset({str, int, bool, type(None)})


def _has_float(value: Any) -> bool:
    """Whether a number that is not an integer is inside (orjson also reads integers
    beyond 64 bits as floats)."""
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is float:
            return True
        if (kind is dict or kind is list) and _has_float(item):
            return True
    return False


def load_line(line: bytes, file: str, number: int) -> tuple[Any, bool]:
    """One JSON line, integers only, and whether orjson read it exactly.

    orjson reads integers beyond 64 bits as floats and refuses lone surrogates, so such
    lines are read again by the standard library, as ``verify.py`` reads them."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        pass
    else:
        kind = type(value)
        if kind is float or ((kind is dict or kind is list) and _has_float(value)):
            pass
        else:
            return value, True
    try:
        value = _strict_loads(line)
    except _NotInteger:
        raise BundleFailure(
            f"{file} line {number}", "holds a number that is not an integer"
        ) from None
    except ValueError:
        raise BundleFailure(f"{file} line {number}", "is not valid JSON") from None
    return value, False


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def name_problem(name: str) -> str | None:
    """Why a name is refused in a bundle (a zip member or a manifest path), or ``None``."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path: refused"
    if ".." in re.split(r"[/\\]", name):
        return "climbs out of the bundle with '..': refused"
    if "\\" in name:
        return "holds a backslash: refused"
    return None
