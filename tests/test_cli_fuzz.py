"""No option of any command ends in a traceback (issue 13 item 15), kept so by hypothesis.

The test walks the real typer command tree (``typer.main.get_command(cli.main.app)``),
so a new command or option is fuzzed without anyone listing it here.  For each leaf
command it builds argument vectors from a strategy per option (chosen by the option's
name and annotation, with a catch-all for names it does not know): dates and times
including extreme ones, integers, paths that are missing, a folder or a file of junk,
files of the right kind with damaged fields, free text with odd unicode, repeated
options and missing required ones.  Each vector runs in-process against a real store
built once per module from the demo's sample (SQLite; PostgreSQL with fewer examples),
and must give an exit code ``cli.md`` allows, no Python traceback, and for exit 2 a
message on standard error and nothing written.

``CASELEDGER_FUZZ_EXAMPLES=N`` raises the examples per command for a long local run.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import traceback
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pydantic
import pytest
import time_machine
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.commands.entries import COMMAND_NAMES
from cli.main import app
from ledger.catalogue import models as catalogue
from ledger.catalogue.models import MODELS_BY_TYPE
from ledger.importing.sample import decision_makers, record_sample, sample_lines
from tests.conftest import FIXED_TODAY, CliResult, invoke, open_ledger, pg_store_url

#: The fixed 2026 data is recorded through the real clock: pin "today" (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("fixed_today")

# --- the command tree ---------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One parameter of a command, as the fuzzer needs it."""

    name: str  # the Python name (click's param.name)
    opts: tuple[str, ...]  # ("--as-of",) for an option, () for an argument
    secondary: tuple[str, ...]  # ("--no-tour",) for a --tour/--no-tour flag
    annotation: Any
    required: bool
    multiple: bool  # a repeatable option or a variadic argument
    flag: bool


@dataclass(frozen=True)
class Command:
    """A leaf command: its words (``("users", "add")``) and its parameters."""

    words: tuple[str, ...]
    params: tuple[Param, ...]

    @property
    def id(self) -> str:
        """The test id: the command as typed."""
        return " ".join(self.words)


def _leaves(command: Any, words: tuple[str, ...]) -> Iterator[Command]:
    """Every leaf command under a click group (duck-typed: typer may vendor click)."""
    subcommands = getattr(command, "commands", None)
    if subcommands:
        for name, sub in sorted(subcommands.items()):
            yield from _leaves(sub, (*words, name))
        return
    hints = typing.get_type_hints(command.callback) if command.callback else {}
    params = []
    for p in command.params:
        if p.name == "help" or getattr(p, "hidden", False):
            continue
        is_option = p.param_type_name == "option"
        params.append(
            Param(
                name=p.name,
                opts=tuple(p.opts) if is_option else (),
                secondary=tuple(getattr(p, "secondary_opts", ()) or ()),
                annotation=hints.get(p.name, str),
                required=bool(p.required),
                multiple=bool(p.multiple) or (not is_option and p.nargs == -1),
                flag=bool(getattr(p, "is_flag", False)),
            )
        )
    yield Command(words, tuple(params))


COMMANDS: tuple[Command, ...] = tuple(_leaves(typer.main.get_command(app), ()))

#: Commands left out, each with its reason.  (None today: nothing here sends e-mail,
#: serves or takes minutes; ``demo`` builds a small store in the current folder, which
#: is the test's own.)
EXCLUDED: dict[str, str] = {}

#: Examples per command; a long local run raises it with CASELEDGER_FUZZ_EXAMPLES.
EXAMPLES = int(os.environ.get("CASELEDGER_FUZZ_EXAMPLES", "0")) or None
#: Commands that take longer per run (a bundle, a tour, a spreadsheet): fewer examples.
SLOW = {"demo": 2, "export": 8, "checkpoint": 8, "import-tracker": 8}
DEFAULT_EXAMPLES = 12
PG_EXAMPLES = 3

#: Exit codes of ``cli.md``; 1 ("does not verify") only where something is verified.
ALLOWED = {0, 2, 3, 4}
VERIFYING = {"verify", "checkpoint"}  # a witness refusing a checkpoint is exit 1 too


def _literals(annotation: Any, found: set[str]) -> None:
    """Collect the string values of every ``Literal`` inside an annotation."""
    if typing.get_origin(annotation) is typing.Literal:
        found.update(a for a in typing.get_args(annotation) if isinstance(a, str))
        return
    for arg in typing.get_args(annotation):
        _literals(arg, found)
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        for field in annotation.model_fields.values():
            _literals(field.annotation, found)


def _catalogue_words() -> list[str]:
    """Every enumerated value of the catalogue (outcomes, regimes, criteria, ...)."""
    found: set[str] = set()
    for value in vars(catalogue).values():
        if isinstance(value, type) and issubclass(value, pydantic.BaseModel):
            _literals(value, found)
        elif typing.get_origin(value) is typing.Literal:
            _literals(value, found)
    return sorted(found)


WORDS = _catalogue_words()
EVENT_TYPES = [w for w in WORDS if w[:1].isupper()]
ENTRY_COMMANDS = {name: event_type for event_type, name in COMMAND_NAMES.items()}
CASES = sorted({case for case, _, _ in sample_lines()})

# --- values -------------------------------------------------------------------------------

DIGITS = {
    "arabic-indic": "٠١٢٣٤٥٦٧٨٩",
    "devanagari": "०१२३४५६७८९",
    "fullwidth": "０１２３４５６７８９",
    "thai": "๐๑๒๓๔๕๖๗๘๙",
}
EXTREME_MOMENTS = [
    "0001-01-01",
    "9999-12-31",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00+23:59",
    "2026-03-01T12:00+14:00",
    "2026-03-01T12:00-12:00",
    "2026-03-01T12:00+24:00",
    "2026-03-01T12:00-99:99",
    "2026-03-01T12:00+2359",
    "2026-03-01T23:59:60",
    "2026-03-01T23:59:60Z",
    "10000-01-01",
    "-0001-01-01",
    "+2026-03-01",
    "2026-02-30",
    "2026-13-01",
    "2026-00-10",
    "2026-03-01T24:00",
    "2026-03-01T12:00:00.1234567",
    "2026-03-01T12:00:00,5",
    "2026-03-01 12:00",
    "2026-03-01T12",
    "2026-W09-7",
    "2026-060",
    "20260301",
    "1899-12-31",
    "1900-01-01T00:00+14:00",
    "2199-12-31T23:59-12:00",
    "2200-01-01",
    "2026-03-01\x00",
    "2026-03-01T12:00\x00Z",
    "2026-03-01" + "0" * 5000,
    "9" * 400,
    "",
    " ",
    "now",
    "today",
]


def _translate_digits(text: str, script: str) -> str:
    return text.translate(str.maketrans("0123456789", DIGITS[script]))


@st.composite
def moments(draw: st.DrawFn) -> str:
    """A date or a date and time as a user might type it, often extreme or malformed."""
    kind = draw(st.integers(0, 4))
    if kind == 0:
        return draw(st.sampled_from(EXTREME_MOMENTS))
    if kind == 1:
        day = draw(st.dates())
        return day.isoformat()
    year = draw(st.integers(-20000, 20000))
    text = (
        f"{year:04d}-{draw(st.integers(0, 13)):02d}-{draw(st.integers(0, 32)):02d}"
        f"T{draw(st.integers(0, 25)):02d}:{draw(st.integers(0, 61)):02d}"
    )
    if draw(st.booleans()):
        text += f":{draw(st.integers(0, 61)):02d}"
        if draw(st.booleans()):
            text += "." + draw(st.text("0123456789", min_size=1, max_size=9))
    offset = draw(st.sampled_from(["", "Z", "+", "-"]))
    if offset in "+-" and offset:
        text += f"{offset}{draw(st.integers(0, 99)):02d}:{draw(st.integers(0, 99)):02d}"
    else:
        text += offset
    if kind == 4:
        text = _translate_digits(text, draw(st.sampled_from(sorted(DIGITS))))
    return text


ODD_TEXT = st.text(
    st.characters(codec=None, exclude_categories=()),  # surrogates and controls included
    max_size=40,
)
FREE_TEXT = st.one_of(
    st.sampled_from(["Reasons.", "x", " ", "", "\t", "a" * 20001, "‮evil", "\x1b[31mred"]),
    ODD_TEXT,
)
INTEGERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["0", "-1", "1.5", "1e9", "NaN", "inf", "٣", "0x10", "", " 3"]),
)
CASE_REFS = st.one_of(
    st.sampled_from(CASES),
    st.sampled_from(["RR-2099-001", "SCR-2099-001", "rr-2026-004", "RR-2026-004 ", "-", ""]),
    ODD_TEXT,
)
ENTRY_REFS = st.one_of(
    st.builds(lambda c, n: f"{c}#{n}", st.sampled_from(CASES), st.integers(-2, 10**20)),
    st.sampled_from(["#1", "RR-2026-004#", "RR-2026-004#1#2", "register#1"]),
    ODD_TEXT,
)
KEY_VALUE = st.one_of(
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from([*WORDS, "occurred_at", "name", "date_of_birth", "due", "summary"]),
        st.one_of(moments(), FREE_TEXT, st.sampled_from(WORDS)),
    ),
    st.sampled_from(["=", "novalue", "a=b=c", "@", "@/", "@missing", "@/dev/null"]),
    ODD_TEXT,
)
HEX = st.one_of(
    st.text("0123456789abcdef", min_size=0, max_size=70),
    st.sampled_from(["zz", "0" * 64, "f" * 128]),
    ODD_TEXT,
)
ANY_TEXT = st.one_of(
    moments(),
    FREE_TEXT,
    INTEGERS,
    CASE_REFS,
    ENTRY_REFS,
    KEY_VALUE,
    st.sampled_from([*WORDS, "--json", "-", "--", "-h"]),
)


class Files:
    """The files and folders a fuzzed command may be given, made once per module."""

    def __init__(self, root: Path, store: str) -> None:
        self.root = root
        self.store = store
        self.counter = itertools.count()
        self.folder = root / "a-folder"
        self.folder.mkdir()
        self.junk = root / "junk.bin"
        self.junk.write_bytes(bytes(range(256)) * 8)
        self.empty = root / "empty.txt"
        self.empty.write_bytes(b"")
        self.missing = root / "missing" / "file"
        self.signing_key = root / "sign.pem"
        result = invoke(["keys", "signing", "--out", str(self.signing_key)])
        assert result.exit_code == 0, result.stderr
        self.checkpoint = root / "checkpoint.json"
        result = invoke(
            [
                "--store",
                store,
                "checkpoint",
                "--signing-key",
                str(self.signing_key),
                "--out",
                str(self.checkpoint),
                "--json",
            ]
        )
        assert result.exit_code == 0, result.stderr
        self.public_key = str(result.json()["public_key"])
        self.bundle = root / "bundle"
        result = invoke(["--store", store, "export", CASES[0], "--out", str(self.bundle)])
        assert result.exit_code == 0, result.stderr
        examples = Path(__file__).resolve().parents[1] / "docs" / "examples"
        self.tracker = examples / "tracker-sample.csv"
        self.mapping = examples / "tracker-mapping.toml"
        self.policy = Path(__file__).resolve().parents[1] / "ledger" / "data" / "policy.toml"
        self.rules = Path(__file__).resolve().parents[1] / "projections" / "data" / "quality.toml"
        referral = {**orjson.loads(sample_lines()[0][2]), "case": "RR-2099-001"}
        self.records = Path(self.write(orjson.dumps(referral) + b"\n", ".jsonl"))

    def new(self, suffix: str = "") -> Path:
        """A path that does not exist yet, in a folder that does."""
        return self.root / f"new-{next(self.counter)}{suffix}"

    def write(self, data: bytes, suffix: str = "") -> str:
        """A new file holding ``data``; its path."""
        path = self.new(suffix)
        path.write_bytes(data)
        return str(path)


def _damaged_json(value: Any) -> Any:
    """Strategy: ``value`` (a JSON object) with one field, at any depth, replaced."""
    paths: list[tuple[str, ...]] = []

    def walk(node: Any, path: tuple[str, ...]) -> None:
        if isinstance(node, dict):
            for key, sub in node.items():
                paths.append((*path, key))
                walk(sub, (*path, key))

    walk(value, ())
    replacement = st.one_of(
        st.sampled_from(["1", 1.5, 10**30, -1, True, None, [], {}, "x", 0, 1e300]),
        moments(),
        FREE_TEXT,
    )

    def damage(path: tuple[str, ...], new: Any, drop: bool) -> Any:
        copy = orjson.loads(orjson.dumps(value))
        node = copy
        for key in path[:-1]:
            node = node[key]
        if drop:
            del node[path[-1]]
        else:
            node[path[-1]] = new
        return copy

    return st.builds(damage, st.sampled_from(paths), replacement, st.booleans())


def _json_bytes(value: Any) -> bytes:
    """JSON that may hold what orjson refuses (huge integers): fall back to repr-safe."""
    try:
        return orjson.dumps(value)
    except TypeError:
        import json

        return json.dumps(value).encode()


def path_values(files: Files, kind: str, valid: bool = False) -> st.SearchStrategy[str]:
    """Paths of every awkward kind, plus files of the right ``kind`` (damaged or not);
    with ``valid``, only a good file of that kind."""
    if valid:
        good = {
            "out": st.builds(lambda: str(files.new())),
            "checkpoint": st.just(str(files.checkpoint)),
            "policy": st.just(str(files.policy)),
            "records": st.just(str(files.records)),
            "signing-key": st.just(str(files.signing_key)),
            "bundle": st.just(str(files.bundle)),
            "tracker": st.just(str(files.tracker)),
            "mapping": st.just(str(files.mapping)),
            "witness": st.builds(lambda: str(files.new())),
            "rules": st.just(str(files.rules)),
        }
        return good.get(kind, st.just(str(files.junk)))
    awkward = st.sampled_from(
        [
            str(files.missing),
            str(files.folder),
            str(files.junk),
            str(files.empty),
            "/dev/null",
            "/",
            "",
            "missing.txt",
        ]
    )
    if kind == "out":
        return st.one_of(
            st.builds(lambda: str(files.new())),
            st.builds(lambda: str(files.new() / "missing" / "x")),
            awkward,
            st.just(str(files.junk)),
        )
    if kind == "checkpoint":
        base = orjson.loads(files.checkpoint.read_bytes())
        right = _damaged_json(base).map(lambda v: files.write(_json_bytes(v), ".json"))
        return st.one_of(st.just(str(files.checkpoint)), right, awkward)
    if kind == "policy":
        texts = st.sampled_from(
            [
                files.policy.read_bytes(),
                b'[roles.chair]\nrecord = ["DecisionMade"]\n',
                b"not = toml = at all",
                b"roles = 1",
                b"[roles.admin]\nactions = 3\n",
                b"\xff\xfe",
                b"[roles]\n" + b"x" * 100,
            ]
        )
        return st.one_of(texts.map(lambda t: files.write(t, ".toml")), awkward)
    if kind == "records":
        lines = [orjson.loads(line) for _, _, line in sample_lines()[:6]]
        referral = {**lines[0], "case": "RR-2099-777"}
        one = st.one_of(_damaged_json(referral), _damaged_json(lines[1]), st.just(referral))
        body = st.lists(one, min_size=1, max_size=3).map(
            lambda vs: b"\n".join(_json_bytes(v) for v in vs) + b"\n"
        )
        raw = st.binary(max_size=200)
        return st.one_of(body.map(files.write), raw.map(files.write), awkward, st.just("-"))
    if kind == "signing-key":
        return st.one_of(st.just(str(files.signing_key)), awkward)
    if kind == "bundle":
        return st.one_of(st.just(str(files.bundle)), awkward)
    if kind == "tracker":
        return st.one_of(st.just(str(files.tracker)), awkward)
    if kind == "mapping":
        return st.one_of(st.just(str(files.mapping)), path_values(files, "policy"))
    if kind == "rules":
        return st.one_of(st.just(str(files.rules)), path_values(files, "policy"))
    if kind == "witness":
        return st.one_of(st.builds(lambda: str(files.new())), path_values(files, "checkpoint"))
    return awkward


#: What an option means, by the Python name of the parameter (a command's own meaning
#: first).  A name not here gets every kind of value, so new options are fuzzed too.
KINDS: dict[tuple[str, str], str] = {
    ("delays", "from_"): "event-type",
    ("delays", "to"): "event-type",
    ("delays", "from_type"): "event-type",
    ("delays", "to_type"): "event-type",
    ("export", "from_"): "moment",
    ("export", "to"): "moment",
    ("record", "file"): "records",
    ("policy set", "file"): "policy",
    ("import-tracker", "file"): "tracker",
    ("verify", "bundle"): "bundle",
    ("quality", "rules"): "rules",
    ("clocks", "status"): "clock-status",
}
KINDS_BY_NAME: dict[str, str] = {
    "as_of": "moment",
    "on": "moment",
    "occurred_at": "moment",
    "due": "moment",
    "expected_by": "moment",
    "incident_date": "moment",
    "aware_date": "moment",
    "case": "case",
    "cases": "case",
    "corrects": "entry-ref",
    "relied_on": "entry-ref",
    "over": "int",
    "within": "int",
    "since": "checkpoint",
    "public_key": "hex",
    "expect_root": "hex",
    "expect_manifest_sha256": "hex",
    "signing_key": "signing-key",
    "out_file": "out",
    "out": "out",
    "witness": "witness",
    "mapping": "mapping",
    "sources": "sources",
    "role": "role",
    "report": "report",
    "criteria": "criteria",
    "changes": "changes",
    "personal": "personal",
    "factors": "factors",
}


def _is_path(annotation: Any) -> bool:
    return Path in (annotation, *typing.get_args(annotation)) or any(
        Path in typing.get_args(a) for a in typing.get_args(annotation)
    )


def _is_int(annotation: Any) -> bool:
    return int in (annotation, *typing.get_args(annotation))


def _kind_of(command: Command, param: Param) -> str | None:
    """What a parameter means (see :data:`KINDS`), or None for plain text."""
    kind = KINDS.get((command.id, param.name)) or KINDS_BY_NAME.get(param.name)
    if kind is None and _is_path(param.annotation):
        kind = "out" if "out" in param.name else "path"
    if kind is None and _is_int(param.annotation):
        kind = "int"
    return kind


def _field_words(command: Command, param: Param) -> list[str]:
    """The catalogue's values for a one-entry command's option (``--outcome`` of
    ``decide``: review, no-review, ...), so the other options reach deep code."""
    event_type = ENTRY_COMMANDS.get(command.id)
    if event_type is None:
        return []
    field = MODELS_BY_TYPE[event_type].model_fields.get(param.name)
    if field is None:
        return []
    found: set[str] = set()
    _literals(field.annotation, found)
    if bool in (field.annotation, *typing.get_args(field.annotation)):
        found.update({"true", "false"})
    return sorted(found)


#: Values that pass, by kind, so that one fuzzed option is what a command meets.
VALID: dict[str, st.SearchStrategy[str]] = {
    "moment": st.dates(date(2025, 1, 1), date(2026, 8, 31)).map(date.isoformat),
    "case": st.sampled_from(CASES),
    "entry-ref": st.builds(lambda c, n: f"{c}#{n}", st.sampled_from(CASES), st.integers(1, 15)),
    "int": st.integers(0, 30).map(str),
    "event-type": st.sampled_from(EVENT_TYPES),
    "sources": st.just("Strategy minutes|minutes-2026-02-12"),
    "role": st.sampled_from(["business-unit", "admin"]),
    "report": st.sampled_from(["auto", "full", "index"]),
    "clock-status": st.sampled_from(["running", "met", "overdue", "late", "withdrawn"]),
    "criteria": st.builds(
        lambda c: f"{c}=met:Reasons given", st.sampled_from(catalogue.ALL_CRITERIA)
    ),
    "changes": st.sampled_from(["occurred_at=2026-03-01", "summary=Corrected text."]),
    "personal": st.sampled_from(["name=Zoe Sample", "date_of_birth=2025-08-14"]),
    "factors": st.just("learning=Protocol gap"),
}


def valid_values(files: Files, command: Command, param: Param) -> st.SearchStrategy[str]:
    """Values a user would give that the command should accept."""
    kind = _kind_of(command, param)
    if kind in VALID:
        return VALID[kind]
    words = _field_words(command, param)
    if words:
        return st.sampled_from(words)
    if kind == "hex":
        return st.just(files.public_key)
    if kind is not None and kind not in ("key-value", "path"):
        return path_values(files, kind, valid=True)
    return st.sampled_from(["Reasons given.", "Northshire Police", "RR-2026-004"])


def fuzz_values(files: Files, command: Command, param: Param) -> st.SearchStrategy[str]:
    """The values to try for one parameter: its own kind most often, anything sometimes."""
    kind = _kind_of(command, param)
    own: st.SearchStrategy[str]
    if kind == "moment":
        own = moments()
    elif kind == "case":
        own = CASE_REFS
    elif kind == "entry-ref":
        own = ENTRY_REFS
    elif kind in ("key-value", "criteria", "changes", "personal", "factors"):
        own = KEY_VALUE
    elif kind == "int":
        own = INTEGERS
    elif kind == "hex":
        own = st.one_of(HEX, st.just(files.public_key))
    elif kind == "event-type":
        own = st.one_of(st.sampled_from(EVENT_TYPES), st.sampled_from(WORDS), FREE_TEXT)
    elif kind in ("sources", "role", "report", "clock-status"):
        own = st.one_of(VALID[kind], FREE_TEXT, st.sampled_from(["|", "a|", "|b", "a|b|zz"]))
    elif kind is not None:
        own = path_values(files, kind)
    else:
        own = st.one_of(st.sampled_from(WORDS), FREE_TEXT)
    return st.one_of(own, own, own, ANY_TEXT)


@st.composite
def argument_vectors(draw: st.DrawFn, files: Files, command: Command) -> tuple[list[str], bytes]:
    """One command line for ``command`` (with the store) and what standard input holds.

    Mostly every option but one has a value a user would give and one option (the
    target) is fuzzed, so that the fuzzed value reaches deep into the command; sometimes
    every option is fuzzed at once."""
    positional: list[str] = []
    options: list[list[str]] = []
    valued = [p for p in command.params if not p.flag]
    target = draw(st.sampled_from(valued)) if valued else None
    everything = draw(st.integers(0, 4)) == 0
    for param in command.params:
        if param.flag:
            choices = [[], [param.opts[0]], *([[o] for o in param.secondary])]
            options.append(draw(st.sampled_from(choices)))
            continue
        fuzzed = everything or param is target
        chance = 0.92 if param.required else (0.8 if fuzzed else 0.6)
        if draw(st.floats(0, 1)) >= chance:
            continue
        strategy = (fuzz_values if fuzzed else valid_values)(files, command, param)
        count = draw(st.integers(1, 3)) if param.multiple else 1
        if not param.multiple and param.opts and draw(st.integers(0, 9)) == 0:
            count = 2  # a repeated single-valued option
        values = [draw(strategy) for _ in range(count)]
        if not param.opts:
            positional.extend(values)
            continue
        for value in values:
            if draw(st.booleans()) and not value.startswith("-"):
                options.append([f"{param.opts[-1]}={value}"])
            else:
                options.append([param.opts[-1], value])
    options = draw(st.permutations(options))
    argv = [*command.words, *positional, *(a for option in options for a in option)]
    store = ["--store", files.store]
    argv = [*store, *argv] if draw(st.booleans()) else [*argv, *store]
    stdin = draw(st.binary(max_size=100)) if "-" in argv else b""
    return argv, stdin


# --- the stores ---------------------------------------------------------------------------


def _build(root: Path, store: str) -> Files:
    """The demo's sample in ``store``, and the files commands may be given."""
    root.mkdir(parents=True, exist_ok=True)
    if store.startswith("postgresql://"):  # the demo's recorder is SQLite's; here the role's
        led = open_ledger(store)
        admin = led.recorder_for("admin")
        for name, role in decision_makers():  # who approves the sample's delay
            led.enrol(name, [role], admin)
        led.record_lines([line for _, _, line in sample_lines()], led.recorder_for())
        led.close()
    else:
        record_sample(store)
    return Files(root, store)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder of the module's own, made the current one (``demo`` writes there), with
    no store, key or signing key taken from the environment."""
    root = tmp_path_factory.mktemp("fuzz")
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("CASELEDGER_")}
    keep = {k: v for k, v in saved.items() if k.startswith("CASELEDGER_TEST")}
    os.environ.update(keep)
    here = os.getcwd()
    os.chdir(root)
    try:
        # the module's stores are built once, before any test's own pin: pin them too
        with time_machine.travel(FIXED_TODAY, tick=True):
            yield root
    finally:
        os.chdir(here)
        os.environ.update(saved)


@pytest.fixture(scope="module")
def sqlite_files(workspace: Path) -> Files:
    """The sample in an SQLite store, built once for the module."""
    return _build(workspace / "sqlite", str(workspace / "sqlite.db"))


@pytest.fixture(scope="module")
def pg_files(workspace: Path) -> Iterator[Files]:
    """The sample in a PostgreSQL schema, built once for the module."""
    for url in pg_store_url():
        yield _build(workspace / "postgres", url)


# --- the property -------------------------------------------------------------------------


def _written(store: str) -> tuple[int, int]:
    """How many events and register entries an SQLite store holds."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as conn:
        events = conn.execute("SELECT count(*) FROM stored_events").fetchone()[0]
        register = conn.execute("SELECT count(*) FROM ledger_register").fetchone()[0]
    conn.close()
    return int(events), int(register)


def run_once(command: Command, argv: list[str], stdin: bytes, sqlite_store: str | None) -> None:
    """Run one command line and check the property."""
    before = _written(sqlite_store) if sqlite_store else None
    typed = [a if len(a) <= 120 else f"{a[:60]}...({len(a)} characters)" for a in argv]
    try:
        result: CliResult = invoke(argv, stdin)
    except Exception:  # an uncaught exception is exactly what the property forbids
        pytest.fail(f"caseledger {typed!r} raised:\n{traceback.format_exc(limit=-8)[-6000:]}")
    shown = (
        f"caseledger {typed!r} -> {result.exit_code}\n{result.stdout[-2000:]}\n"
        f"{result.stderr[-2000:]}"
    )
    allowed = ALLOWED | ({1} if command.words[0] in VERIFYING else set())
    assert result.exit_code in allowed, shown
    for text in (result.stdout, result.stderr):
        assert "Traceback (most recent call last)" not in text, shown
    if result.exit_code == 2:
        assert result.stderr.strip(), shown
        if before is not None:
            assert _written(str(sqlite_store)) == before, f"exit 2 but written: {shown}"


def _examples(command: Command, default: int) -> int:
    return EXAMPLES or SLOW.get(command.id, default)


FUZZED = [c for c in COMMANDS if c.id not in EXCLUDED]


def test_the_walk_finds_every_command() -> None:
    """The tree walk sees the commands and options people use (a walk that found
    nothing would make the property vacuous)."""
    ids = {c.id for c in COMMANDS}
    assert {"record", "status", "why", "decide", "verify", "keys new", "policy set"} <= ids
    status = next(c for c in COMMANDS if c.id == "status")
    assert {"--as-of", "--on"} <= {o for p in status.params for o in p.opts}
    assert len(COMMANDS) >= 40


@pytest.mark.parametrize("command", FUZZED, ids=lambda c: c.id)
def test_no_traceback_from_any_option_on_sqlite(sqlite_files: Files, command: Command) -> None:
    """Every command line ends with an allowed exit code and no traceback (SQLite)."""

    @settings(
        max_examples=_examples(command, DEFAULT_EXAMPLES),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def check(data: st.DataObject) -> None:
        argv, stdin = data.draw(argument_vectors(sqlite_files, command), label="argv")
        run_once(command, argv, stdin, sqlite_files.store)

    check()


@pytest.mark.postgres
@pytest.mark.parametrize("command", FUZZED, ids=lambda c: c.id)
def test_no_traceback_from_any_option_on_postgres(pg_files: Files, command: Command) -> None:
    """The same property on PostgreSQL, with a few examples per command."""

    @settings(
        max_examples=EXAMPLES or PG_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def check(data: st.DataObject) -> None:
        argv, stdin = data.draw(argument_vectors(pg_files, command), label="argv")
        run_once(command, argv, stdin, None)

    check()


def test_an_uncaught_exception_reaches_the_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """The in-process CLI does not swallow a bug (as CliRunner would, into an exit code
    of 1): it propagates, so :func:`run_once` reports it with its traceback."""
    import ledger.api

    def broken() -> dict[str, Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(ledger.api, "entry_schema", broken)  # what `schema` calls
    with pytest.raises(RuntimeError, match="a bug"):
        invoke(["schema"])
    schema = next(c for c in COMMANDS if c.id == "schema")
    with pytest.raises(pytest.fail.Exception, match="RuntimeError: a bug"):
        run_once(schema, ["schema"], b"", None)
