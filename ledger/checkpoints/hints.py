"""The hints table (``caseledger_checkpoint_leaves``): the leaves a store held at each
checkpoint, kept to name the first leaf that differs when a proof fails.  Untrusted: a hint
is believed only once its leaves hash to a signed root, and a store that refuses the
writes (no grant) only loses the naming.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Final

from ledger.application import CaseLedger
from ledger.checkpoints.leaves import Leaf

HINTS_TABLE: Final = "caseledger_checkpoint_leaves"


class LeafHints:
    """The leaves the store held at its checkpoints, one row per leaf, in a table of the
    store (``caseledger_checkpoint_leaves``).  Untrusted: used only to name a difference,
    after its leaves are checked against a signed root."""

    def __init__(self, ledger: CaseLedger) -> None:
        self.ledger = ledger
        self.postgres = ledger.location.kind == "postgres"
        datastore: Any = ledger.recorder.datastore  # type: ignore[attr-defined]
        self.datastore = datastore
        self.refused: str | None = None
        if self.postgres:
            from psycopg.sql import SQL, Identifier

            schema = datastore.schema or "public"
            self.table: Any = SQL("{}.{}").format(Identifier(schema), Identifier(HINTS_TABLE))
        else:
            self.table = HINTS_TABLE

    @classmethod
    def open(cls, ledger: CaseLedger, create: bool = True) -> LeafHints | None:
        """The store's hints (created when asked and absent); None if there are none, or
        if this user may not create them (a checkpoint is then made without hints)."""
        hints = cls(ledger)
        try:
            if hints._exists():
                return hints
            if create:
                hints._create()
                return hints
        except _refusals() as exc:
            hints.refused = str(exc).strip()
        return None

    def _sql(self, text: str) -> Any:
        if self.postgres:
            from psycopg.sql import SQL

            return SQL(text.replace("?", "%s")).format(t=self.table)
        return text.format(t=self.table)

    def _create(self) -> None:
        kind = ("bytea", "bigint") if self.postgres else ("BLOB", "INTEGER")
        ddl = (
            f"CREATE TABLE IF NOT EXISTS {{t}} (tree TEXT NOT NULL, idx {kind[1]} NOT NULL, "
            f"label TEXT NOT NULL, leaf {kind[0]} NOT NULL, PRIMARY KEY (tree, idx))"
        )
        with self.datastore.transaction(commit=True) as c:
            c.execute(self._sql(ddl))

    def _exists(self) -> bool:
        with self.datastore.transaction(commit=False) as c:
            if self.postgres:
                c.execute(
                    "SELECT to_regclass(%s) IS NOT NULL AS e",
                    (f"{self.datastore.schema or 'public'}.{HINTS_TABLE}",),
                )
                return bool(c.fetchone()["e"])
            c.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (HINTS_TABLE,))
            return c.fetchone() is not None

    def kept(self) -> dict[str, int]:
        """How many leaves of each tree are kept."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._sql("SELECT tree, COUNT(*) AS n FROM {t} GROUP BY tree"))
            rows = c.fetchall()
        if self.postgres:
            return {r["tree"]: int(r["n"]) for r in rows}
        return {r[0]: int(r[1]) for r in rows}

    def leaves(self, tree: str, size: int, batch: int = 5000) -> Iterator[tuple[str, bytes]]:
        """``(label, leaf)`` of the first ``size`` kept leaves of ``tree``, in order."""
        after = -1
        while after + 1 < size:
            with self.datastore.transaction(commit=False) as c:
                c.execute(
                    self._sql(
                        "SELECT idx, label, leaf FROM {t} WHERE tree=? AND idx>? AND idx<? "
                        "ORDER BY idx LIMIT ?"
                    ),
                    (tree, after, size, batch),
                )
                rows = c.fetchall()
            if not rows:
                return
            for row in rows:
                idx, label, leaf = (
                    (row["idx"], row["label"], row["leaf"]) if self.postgres else tuple(row)
                )
                if idx != after + 1:
                    return  # a gap: the kept leaves stop being a prefix here
                after = idx
                yield label, bytes(leaf)

    def writer(self) -> HintWriter:
        """A writer that appends the leaves not kept yet."""
        return HintWriter(self, self.kept())

    def insert(self, rows: list[tuple[str, int, str, bytes]]) -> None:
        """Append rows (tree, index, label, leaf)."""
        with self.datastore.transaction(commit=True) as c:
            if self.postgres:
                from psycopg.sql import SQL

                with c.copy(
                    SQL("COPY {} (tree, idx, label, leaf) FROM STDIN").format(self.table)
                ) as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                c.executemany(self._sql("INSERT INTO {t} VALUES (?, ?, ?, ?)"), rows)


def _refusals() -> tuple[type[Exception], ...]:
    """The errors a store gives a user it does not let write the hints table."""
    import sqlite3

    from eventsourcing.persistence import OperationalError, ProgrammingError

    errors: list[type[Exception]] = [sqlite3.OperationalError, OperationalError, ProgrammingError]
    try:
        from psycopg.errors import InsufficientPrivilege, ReadOnlySqlTransaction
    except ImportError:  # pragma: no cover - the postgres extra is not installed
        return tuple(errors)
    return (*errors, InsufficientPrivilege, ReadOnlySqlTransaction)


class HintWriter:
    """Buffers new leaves for the hints table and writes them in batches."""

    BATCH: Final = 5000

    def __init__(self, hints: LeafHints, kept: dict[str, int]) -> None:
        self.hints = hints
        self.kept = kept
        self.rows: list[tuple[str, int, str, bytes]] = []

    def add(self, tree: str, index: int, leaf: Leaf) -> None:
        """Keep ``leaf`` as leaf ``index`` of ``tree`` if not kept yet."""
        if index >= self.kept.get(tree, 0):
            self.rows.append((tree, index, leaf.label, leaf.value))
            if len(self.rows) >= self.BATCH:
                self.flush()

    def flush(self) -> None:
        """Write what is buffered; if the store refuses (no grant to write the hints),
        stop keeping them: they only help to name a difference."""
        if self.rows and self.hints.refused is None:
            try:
                self.hints.insert(self.rows)
            except _refusals() as exc:
                self.hints.refused = str(exc).strip()
        self.rows = []

    def close(self) -> None:
        """Write the rest."""
        self.flush()
