"""Errors a user can cause or meet, each with the CLI exit code of ``cli.md``."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error the ledger reports to a user; never shown as a traceback."""

    exit_code = 1


class InputError(LedgerError):
    """Bad input: names the line, the field and the reason.  Exit code 2."""

    exit_code = 2

    def __init__(self, reason: str, *, field: str | None = None, line: int | None = None):
        self.reason = reason
        self.field = field
        self.line = line
        super().__init__(self.describe())

    def at_line(self, line: int) -> InputError:
        """The same problem, placed on an input line."""
        return InputError(self.reason, field=self.field, line=line)

    def describe(self) -> str:
        """``line 7, field `criteria`: reason`` in words a business manager understands."""
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field `{self.field}`")
        return (", ".join(where) + ": " if where else "") + self.reason


class InputErrors(InputError):
    """Several bad lines at once; the first is the headline."""

    def __init__(self, problems: list[InputError]):
        self.problems = problems
        first = problems[0]
        super().__init__(first.reason, field=first.field, line=first.line)

    def describe(self) -> str:
        return "\n".join(p.describe() for p in getattr(self, "problems", [])) or super().describe()


class UsageError(InputError):
    """A command was used wrongly (bad option value, unknown case for a query)."""


class ConflictError(LedgerError):
    """A concurrent write conflicted and retrying did not resolve it.  Exit code 3."""

    exit_code = 3


class StoreUnavailable(LedgerError):
    """The store cannot be reached or opened.  Exit code 4."""

    exit_code = 4
