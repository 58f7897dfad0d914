"""What every write shares: who writes (:class:`Recorder`), when (the ledger's clock and
how it stamps ``recorded_at``), what each stored entry is reported as (:class:`Receipt`),
and how a write that loses a race with another writer is tried again."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    OperationalError,
    PersistenceError,
)

from ledger.errors import ConflictError, StoreUnavailable

T = TypeVar("T")
Clock = Callable[[], datetime]
"""The ledger's own clock: returns an aware UTC datetime.  Injectable for tests only."""

MAX_ATTEMPTS = 12
"""How many times a conflicting write is retried before exit code 3."""
BACKOFF_CAP_SECONDS = 0.8
"""The longest pause between two attempts (the pauses double from 10 ms up to this)."""


def retrying(write: Callable[[], T], gave_up: str) -> T:
    """Run a write, again while it loses races with other writers (with jitter); a
    refused write exits 4, and retries running out exit 3, both with nothing written."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            return write()
        except PersistenceError as exc:
            if not is_conflict(exc):
                raise StoreUnavailable(
                    f"the store refused the write ({exc}); nothing was written"
                ) from None
            if attempt == MAX_ATTEMPTS:
                raise ConflictError(gave_up) from None
            # Exponential backoff with full jitter: writers that collided spread out
            # instead of colliding again in step (a fixed small pause made four writers on
            # one case give up under load).
            time.sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, 0.01 * 2**attempt)))
    raise AssertionError("unreachable")


def is_conflict(exc: PersistenceError) -> bool:
    """Whether a failed write lost a race with another writer (worth retrying): a taken
    ``seq`` (the primary key), or a lock that timed out."""
    if isinstance(exc, IntegrityError):
        return True
    text = str(exc).lower()
    return isinstance(exc, (OperationalError, InterfaceError)) and (
        "lock" in text or "deadlock" in text or "could not serialize" in text
    )


def utc_now() -> datetime:
    """The ledger's default clock."""
    return datetime.now(UTC)


def format_recorded_at(moment: datetime) -> str:
    """UTC with microseconds, e.g. ``2026-03-06T10:15:02.123456Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Receipt:
    """What ``record`` reports for each stored entry: its ref, hash and time, and for a
    summary of a large recording its entry type and the command that recorded it."""

    ref: str
    hash: str
    recorded_at: str
    type: str
    command_id: str


Progress = Callable[[str, int, int | None], None]
"""Told ``(what, done, total)`` as a long write advances (``"validating"``, ``"checking"``,
``"saving"``); ``total`` is None while unknown.  Called once per :data:`PROGRESS_EVERY`
lines, never per line, so that following a write costs it nothing measurable."""

PROGRESS_EVERY = 1000
"""How many lines a write handles between two calls of its :data:`Progress`."""


@dataclass(frozen=True)
class Recorder:
    """Who records: the actor and the role stamped on each entry."""

    actor: str
    role: str = "business-unit"
