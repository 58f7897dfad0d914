"""The real ``caseledger`` in a child process, at a pseudo-terminal (``pty``) as a person
at the keyboard runs it, or with pipes as a script does: for the tests of what only a
terminal shows (progress bars, prompts) and of what a script must never get."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(sys.executable).parent / "caseledger"
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "cli.main"]

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def plain(text: str) -> str:
    """Terminal output without its escape sequences and carriage returns."""
    return _ESCAPES.sub("", text).replace("\r", "")


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a person's terminal: a real terminal type, a known width, no
    store from the test runner's own environment."""
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", **extra}
    env.pop("CASELEDGER_STORE", None)
    env.pop("NO_COLOR", None)
    return env


class Terminal:
    """``caseledger ARGS`` running at a pseudo-terminal: standard input, output and error
    are all the terminal, as in a person's shell."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes caseledger
            os.chdir(ROOT)
            os.execvpe(COMMAND[0], [*COMMAND, *args], env or child_env())
        self.seen = ""
        self.exit_code: int | None = None

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout`` seconds; False once the child is gone."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not chunk:
            return False
        self.seen += chunk.decode("utf-8", errors="replace")
        return True

    def expect(self, pattern: str, timeout: float = 60.0) -> str:
        """Wait until ``pattern`` (a regular expression) shows in the plain output, and
        return that output; it is consumed (the next expectation looks at what follows:
        a prompt waits for its answer, so nothing after it is lost)."""
        deadline = time.monotonic() + timeout
        alive = True
        while True:
            text = plain(self.seen)
            if re.search(pattern, text):
                self.seen = ""
                return text
            if not alive or time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never shown; the terminal showed:\n{text}")
            alive = self._read(0.2)

    def answer(self, text: str) -> None:
        """Type ``text`` and Enter."""
        os.write(self.fd, text.encode("utf-8") + b"\r")

    def finish(self, timeout: float = 120.0) -> tuple[int, str]:
        """Read to the end; the exit code and everything shown since the last match."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.2):
            pass
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        self.exit_code = os.waitstatus_to_exitcode(status)
        return self.exit_code, plain(self.seen)


def piped(
    args: list[str], stdin: bytes = b"", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``caseledger ARGS`` as a script runs it: every stream a pipe, no terminal."""
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin.decode(),
        capture_output=True,
        text=True,
        env=env or child_env(),
        cwd=ROOT,
        timeout=180,
    )
