"""Errors a user can cause or meet, in the domain's words.

An error names what was wrong by its domain name: ``field`` is the parameter of the Python
API that carried the value (``as_of``, ``role``, ``signing_key``: the names the facade
functions and the CLI's options share) or the field of an entry (``occurred_at``), never a
command-line option.  A front end words an error its own way: the CLI turns each class into
an exit code of ``cli.md``, names its options for the fields, and says in its own words the
refusals that carry a ``code`` (``cli.common``).
"""

from __future__ import annotations

from collections.abc import Mapping


class LedgerError(Exception):
    """Base of every error the ledger reports to a user; never shown as a traceback.

    ``code`` names a refusal that a front end may put in its own words (the CLI names
    the command or option that helps); ``params`` holds the values its wording needs."""

    def __init__(
        self,
        message: str = "",
        *,
        code: str | None = None,
        params: Mapping[str, str] | None = None,
    ) -> None:
        self.code = code
        self.params: dict[str, str] = dict(params or {})
        super().__init__(message)


class InputError(LedgerError):
    """Bad input: names the line, the field and the reason.

    ``within`` names the document whose field it is (a checkpoint file), when the field
    is not a parameter of the call; a field on an input ``line`` is that line's."""

    def __init__(
        self,
        reason: str,
        *,
        field: str | None = None,
        line: int | None = None,
        code: str | None = None,
        params: Mapping[str, str] | None = None,
        within: str | None = None,
    ):
        self.reason = reason
        self.field = field
        self.line = line
        self.within = within
        super().__init__(self.describe(), code=code, params=params)

    def at_line(self, line: int) -> InputError:
        """The same problem, placed on an input line."""
        return InputError(
            self.reason,
            field=self.field,
            line=line,
            code=self.code,
            params=self.params,
            within=self.within,
        )

    def restated(self, reason: str, field: str | None) -> InputError:
        """The same problem (its class, line and code) with another reason and field: how
        a front end says it in its own words."""
        other = type(self).__new__(type(self))  # no __init__: a subclass keeps its own state
        other.__dict__.update(self.__dict__)
        other.reason, other.field = reason, field
        other.args = (other.describe(),)
        return other

    def describe(self) -> str:
        """``line 7, field `criteria`: reason`` in words a business manager understands."""
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.field:
            where.append(f"field `{self.field}`")
        return (", ".join(where) + ": " if where else "") + self.reason


MAX_REPORTED_PROBLEMS = 100
"""Most problems one refused command lists; the lines of the others are counted."""


class InputErrors(InputError):
    """Several problems at once (every bad line of a record, every bad option of a
    command), in line order; the first is the headline.  At most
    :data:`MAX_REPORTED_PROBLEMS` are listed, and ``more_lines`` counts the other lines
    that have problems."""

    def __init__(self, problems: list[InputError], *, more_lines: int = 0):
        self.problems = problems
        self.more_lines = more_lines
        first = problems[0]
        super().__init__(first.reason, field=first.field, line=first.line)

    def at_line(self, line: int) -> InputError:
        """Every problem of one input line, placed on it."""
        return InputErrors([p.at_line(line) for p in self.problems])

    def describe(self) -> str:
        listed = [p.describe() for p in getattr(self, "problems", [])]
        more = getattr(self, "more_lines", 0)
        if more:
            listed.append(f"... and {more} more line{'s' if more != 1 else ''} with problems")
        return "\n".join(listed) or super().describe()


def each_problem(error: InputError) -> list[InputError]:
    """The single problems an error stands for (an :class:`InputErrors` holds several)."""
    if isinstance(error, InputErrors):
        return [single for p in error.problems for single in each_problem(p)]
    return [error]


def gathered(problems: list[InputError], limit: int = MAX_REPORTED_PROBLEMS) -> InputError:
    """One error for all the problems found, in line order: the first ``limit`` listed,
    the lines of the rest counted (``... and N more lines with problems``)."""
    found = sorted(
        (single for p in problems for single in each_problem(p)),
        key=lambda p: p.line if p.line is not None else 0,
    )
    if len(found) == 1:
        return found[0]
    listed = found[:limit]
    shown = {p.line for p in listed}
    more = len({p.line for p in found[limit:]} - shown)
    return InputErrors(listed, more_lines=more)


def problem_list(error: InputError) -> dict[str, object]:
    """An error as programs read it (``--json``): ``problems`` as a list of
    ``{"line", "field", "reason"}`` and ``more_lines``, the count of lines not listed."""
    return {
        "problems": [
            {"line": p.line, "field": p.field, "reason": p.reason} for p in each_problem(error)
        ],
        "more_lines": getattr(error, "more_lines", 0),
    }


class UsageError(InputError):
    """A command was used wrongly (bad option value, unknown case for a query)."""


class ConflictError(LedgerError):
    """A concurrent write conflicted and retrying did not resolve it."""


class StoreUnavailable(LedgerError):
    """The store cannot be reached or opened."""
