"""``python -m bench.startup``: how long a cold ``caseledger`` takes against ``python -c pass``.

Issue 18's target: a cold ``caseledger why CASE`` and a cold ``caseledger --help`` each
within 6x a cold ``python -c pass`` of the same interpreter.  Every command runs as a new
process, in rounds: each round runs the baseline, then each command once, so a figure
and its baseline are measured under the same load (this machine is shared).  For each
command the median of its rounds, in wall-clock and in CPU time (user + system, from the
kernel's accounting of the finished child: steadier than wall time on a loaded machine),
and two ratios: of the medians, and the median of the per-round ratios.

The store is the demo's (``caseledger demo --no-tour`` in a temporary folder, case
``RR-2026-031``) unless ``--store`` and ``--case`` are given.  The project's bytecode is
compiled first, as an installed wheel's is (``bench.runner.compile_sources``); ``--no-compile``
times whatever is there.  The same figures, on the benchmark's own store, are part of
every ``python -m bench`` run (``cli_why_ratio_python``, ``cli_help_ratio_python``).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

TARGET = 6.0
"""The most a cold command may take, in multiples of a cold ``python -c pass``."""

DEMO_CASE = "RR-2026-031"


def caseledger() -> list[str]:
    """The console command of this interpreter's environment (as a user runs it), or the
    entry point's module where it is not installed."""
    script = Path(sys.executable).with_name("caseledger")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cli.start"]


def demo_store(folder: Path) -> str:
    """A new demo store in ``folder`` (``caseledger demo --no-tour``), as a store URL."""
    done = subprocess.run(
        [*caseledger(), "demo", "--no-tour"], cwd=folder, capture_output=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"caseledger demo failed: {done.stderr.decode()[-400:]}")
    return f"sqlite:///{folder / 'caseledger-demo.db'}"


def commands(store: str, case: str) -> dict[str, list[str]]:
    """What is timed, by name; ``python -c pass`` first (the baseline)."""
    cl = caseledger()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "--help": [*cl, "--help"],
        "why --json": [*cl, "--store", store, "why", case, "--json"],
        "why": [*cl, "--store", store, "why", case],
        "why --help": [*cl, "why", "--help"],
    }


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """One run of ``command`` as a new process: wall and CPU milliseconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, env=env, check=False)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: exit {done.returncode}: {done.stderr[-300:]!r}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def measure(
    store: str, case: str, rounds: int, *, only: tuple[str, ...] = (), warm_up: bool = True
) -> dict[str, Any]:
    """Interleaved rounds of every command of :func:`commands` (or the baseline and those
    named in ``only``); the medians and ratios.  ``warm_up``: one untimed run of each
    first (the OS's file cache)."""
    named = {
        name: command
        for i, (name, command) in enumerate(commands(store, case).items())
        if i == 0 or not only or name in only
    }
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("_CASELEDGER_COMPLETE", None)
    for command in named.values() if warm_up else ():
        timed(command, env)
    wall: dict[str, list[float]] = {name: [] for name in named}
    cpu: dict[str, list[float]] = {name: [] for name in named}
    for _ in range(rounds):
        for name, command in named.items():
            w, c = timed(command, env)
            wall[name].append(w)
            cpu[name].append(c)
    base = "python -c pass"
    figures: dict[str, Any] = {}
    for name in named:
        figures[name] = {
            "wall_ms": round(statistics.median(wall[name]), 1),
            "cpu_ms": round(statistics.median(cpu[name]), 1),
            "wall_ratio": round(statistics.median(wall[name]) / statistics.median(wall[base]), 2),
            "cpu_ratio": round(statistics.median(cpu[name]) / statistics.median(cpu[base]), 2),
            "cpu_ratio_per_round": round(
                statistics.median(c / b for c, b in zip(cpu[name], cpu[base], strict=True)), 2
            ),
        }
    return {
        "rounds": rounds,
        "store": store,
        "case": case,
        "command": " ".join(caseledger()),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "target": TARGET,
        "figures": figures,
    }


def render(result: dict[str, Any]) -> str:
    """The figures as a plain table for people."""
    lines = [
        f"{result['rounds']} interleaved rounds, {result['command']}, store {result['store']}, "
        f"load average {' '.join(map(str, result['load_average']))}; target <= "
        f"{result['target']}x python -c pass",
        f"{'command':<16} {'wall ms':>8} {'x':>6} {'cpu ms':>8} {'x':>6} {'x/round':>8}",
    ]
    for name, f in result["figures"].items():
        lines.append(
            f"{name:<16} {f['wall_ms']:>8} {f['wall_ratio']:>6} {f['cpu_ms']:>8} "
            f"{f['cpu_ratio']:>6} {f['cpu_ratio_per_round']:>8}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Parse the options, make the store if none is given, measure, print."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.startup",
        description="Cold caseledger commands against python -c pass (issue 18).",
    )
    parser.add_argument("--rounds", type=int, default=11, help="rounds (default %(default)s)")
    parser.add_argument("--store", help="a store URL (default: a new demo store)")
    parser.add_argument("--case", default=DEMO_CASE, help="the case for why (%(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--no-compile", action="store_true", help="do not compile the project's bytecode first"
    )
    args = parser.parse_args(argv)
    from bench.runner import compile_sources

    compiled = "not compiled (--no-compile)" if args.no_compile else compile_sources()
    with tempfile.TemporaryDirectory(prefix="caseledger-startup-") as folder:
        store = args.store or demo_store(Path(folder))
        result = measure(store, args.case, args.rounds)
    result["bytecode"] = compiled
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(render(result))


if __name__ == "__main__":
    main()
