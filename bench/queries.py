"""``status``, ``clocks`` and ``delays`` over every case as the CLI answers them, in a new
process each time: ``python -m bench.queries URL CLOCK REPS QUERY...``.

The CLI's path is the facade of :mod:`projections.api` the command calls, then its
``--json`` rendering (``cli.common.emit_json``: orjson, indented by two, and a newline),
in a process that starts with nothing kept (no clock states, no clock facts, no cached due
dates).  So the modules are imported and the rule packs and the bank-holiday tables'
module loaded first, untimed (they are the start-up, measured by ``cli_*_cold_ms``), and
each measurement is a child forked from that process, which asks the question once on a
newly opened ledger (``cold``: what a command pays) and once more on another (``warm``: a
server asking again, with what the process keeps).  It prints one JSON object: per
question, ``REPS`` runs (the questions in turn), each with the wall and CPU milliseconds of
both calls, the rows, and the bytes' length and SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

#: What each query asks, as ``caseledger QUERY --json`` does (``status_all``: ``--all``).
QUERIES = ("status", "status_all", "clocks", "delays")

DELAY = ("IncidentNotified", "DecisionMade")
"""The interval ``delays`` asks for: notification to decision (every regime's clock)."""


def facade(query: str) -> Callable[[Any], Any]:
    """The facade call of ``caseledger QUERY --json`` (options as the command passes them)."""
    from projections import api

    calls: dict[str, Callable[[Any], Any]] = {
        "status": lambda led: api.status(led),
        "status_all": lambda led: api.status(led, include_closed=True),
        "clocks": lambda led: api.clocks(led),
        "delays": lambda led: api.delays(led, from_type=DELAY[0], to_type=DELAY[1]),
    }
    return calls[query]


def json_bytes(value: Any) -> bytes:
    """What ``cli.common.emit_json`` writes for ``value``."""
    return orjson.dumps(value, option=orjson.OPT_INDENT_2) + b"\n"


def prepare() -> None:
    """Import what the questions import and load the rule packs: the start-up, untimed."""
    # here, not at the top: imported before timing, as start-up (the calls import them
    # lazily); the bank holidays' generated table too, or the package where it answers
    from projections.assess.bank_holidays import shipped_year

    if shipped_year("ENG", 2026) is None:
        import holidays.countries  # noqa: F401

    import projections.index.areas
    import projections.index.records
    import projections.queries.delays
    from projections.assess.rules import all_rule_packs

    del projections  # only imported: the modules the call would import lazily
    all_rule_packs()  # the rule packs' files parsed


def measure(url: str, query: str, clock: str) -> dict[str, Any]:
    """Ask ``query`` twice on newly opened ledgers (cold, then warm); the figures."""
    # here, not at the top: the runner imports this module without the store's packages
    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store

    from .child import BenchClock

    ask = facade(query)
    now = datetime.fromisoformat(clock)
    figures: dict[str, Any] = {"query": query}
    digests = []
    for label in ("cold", "warm"):
        ledger = CaseLedger(parse_store(url), clock=BenchClock(now))
        wall, cpu = time.perf_counter(), time.process_time()
        answer = ask(ledger).to_json()
        out = json_bytes(answer)
        figures[f"{label}_ms"] = round((time.perf_counter() - wall) * 1000, 1)
        figures[f"{label}_cpu_ms"] = round((time.process_time() - cpu) * 1000, 1)
        ledger.close()
        figures["rows"] = len(answer)
        figures["bytes"] = len(out)
        digests.append(hashlib.sha256(out).hexdigest())
    if digests[0] != digests[1]:
        raise SystemExit(f"{query}: the second answer differs from the first")
    figures["sha256"] = digests[0]
    return figures


def forked(url: str, query: str, clock: str) -> dict[str, Any]:
    """:func:`measure` in a child forked from this process (started up, nothing asked
    yet): a new process for each question without paying the imports each time."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, write the figures, leave without cleaning up
        os.close(read)
        code = 0
        try:
            os.write(write, orjson.dumps(measure(url, query, clock)))
        except BaseException as exc:  # the parent reports it
            os.write(write, orjson.dumps({"error": f"{type(exc).__name__}: {exc}"}))
            code = 1
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        figures: dict[str, Any] = orjson.loads(pipe.read())
    os.waitpid(pid, 0)
    if "error" in figures:
        raise SystemExit(f"{query}: {figures['error']}")
    return figures


def main(argv: list[str]) -> None:
    if len(argv) < 4 or not argv[2].isdigit() or not set(argv[3:]) <= set(QUERIES):
        raise SystemExit(
            f"usage: python -m bench.queries URL CLOCK REPS {{{','.join(QUERIES)}}}..."
        )
    url, clock, reps, queries = argv[0], argv[1], int(argv[2]), argv[3:]
    prepare()
    runs: dict[str, list[dict[str, Any]]] = {query: [] for query in queries}
    for _ in range(reps):
        for query in queries:  # interleaved: a busy moment slows every question alike
            runs[query].append(forked(url, query, clock))
    sys.stdout.buffer.write(orjson.dumps(runs))


if __name__ == "__main__":
    main(sys.argv[1:])
