"""``status``, ``clocks`` and ``delays`` over every case as the CLI answers them, in a new
process each time: ``python -m bench.queries URL QUERY CLOCK``.

The CLI's path is the facade of :mod:`projections.api` the command calls, then its
``--json`` rendering (``cli.common.emit_json``: orjson, indented by two, and a newline),
in a process that starts with nothing kept (no clock states, no clock facts, no cached due
dates).  So each measurement is a child process: the modules are imported and the rule
packs and the bank-holiday tables' module loaded first, untimed (they are the start-up,
measured by ``cli_*_cold_ms``); then the question is asked once on a newly opened ledger
(``cold``: what a command pays) and once more on another (``warm``: a server asking again,
with what the process keeps).  It prints one JSON object: the wall and CPU milliseconds of
each, the rows, and the bytes' length and SHA-256 (the same answer at every repetition).
"""

from __future__ import annotations

import hashlib
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


def measure(url: str, query: str, clock: str) -> dict[str, Any]:
    """Ask ``query`` twice on newly opened ledgers (cold, then warm); the figures."""
    # here, not at the top: the runner imports this module without the store's packages
    # loaded; and imported before timing, as start-up (the call imports them lazily)
    import holidays.countries  # noqa: F401

    import projections.index.areas
    import projections.index.records
    import projections.queries.delays
    from ledger.application import CaseLedger
    from ledger.store.locations import parse_store
    from projections.assess.rules import all_rule_packs

    from .child import BenchClock

    del projections  # only imported: the modules the call would import lazily
    all_rule_packs()  # start-up: the rule packs' files parsed
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


def main(argv: list[str]) -> None:
    if len(argv) != 3 or argv[1] not in QUERIES:
        raise SystemExit(f"usage: python -m bench.queries URL {{{','.join(QUERIES)}}} CLOCK")
    sys.stdout.buffer.write(orjson.dumps(measure(*argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
