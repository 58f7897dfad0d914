"""The hook through which ``status`` reports overdue statutory clocks.

``status`` prints ``overdue``: the names of the case's clocks that are running past their
limit on the ``--on`` day (``shared/domain.md``, "Timescales").  The clocks themselves
belong to the clocks feature; until it plugs in here, both hooks answer ``[]``.

* :func:`overdue_clocks` is called with a folded :class:`~projections.case_view.CaseView`
  (one case, or every case when ``--as-of``/``--on`` make ``status`` fold).
* :func:`overdue_clocks_for_row` is called with a row of the cross-case index, for
  ``status`` over every case without folding; the row carries the key milestone dates
  (``aware_date``, ``notified_national_at``, ``decided_at`` ...) and
  ``CaseIndex.milestones()`` gives every entry's facts.

Both must give the same answer for the same case, as ``tests/test_index.py`` checks for
the rest of the status.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .case_view import CaseView
    from .index import IndexRow

__all__ = ["overdue_clocks", "overdue_clocks_for_row"]


def overdue_clocks(view: CaseView, on: datetime) -> list[str]:
    """Names of the clocks of a folded case that are overdue on ``on``."""
    del view, on
    return []


def overdue_clocks_for_row(row: IndexRow, on: datetime) -> list[str]:
    """Names of the clocks of an indexed case that are overdue on ``on``."""
    del row, on
    return []
