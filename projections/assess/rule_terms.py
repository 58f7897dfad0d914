"""The rule packs' vocabulary: the regimes, clock names, flags, kinds and operators a pack may
use, and the error a pack that cannot be used raises.

Kept apart from :mod:`projections.assess.rules` (which re-exports every name) so that the
pydantic schema (:mod:`projections.assess.rule_schema`) can check a pack against it without
importing the loader that imports the schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "CLOCK_FLAGS",
    "CLOCK_KINDS",
    "CLOCK_NAMES",
    "OPERATORS",
    "REGIMES",
    "Operator",
    "RuleError",
    "Scalar",
]

#: The regimes that ship a rule pack, in date order.
REGIMES: Final[tuple[str, ...]] = ("wt2015", "wt2018", "wt2023")

#: The clock names ``shared/domain.md`` defines; the CLI reports them as they are.
CLOCK_NAMES: Final[tuple[str, ...]] = (
    "notification",
    "scr_decision",
    "no_scr_explanation",
    "rapid_review",
    "review_completion",
    "ofsted_notification",
    "panel_follow_up",
    "final_report",
)

#: The flags a clock can carry (``early_end``), each with what it means.
CLOCK_FLAGS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "decided-before-notification": (
            "the decision came before the notification that starts the clock, so the clock "
            "is met on the day it started"
        ),
    }
)

#: The comparison operators a ``where`` condition may use.
OPERATORS: Final[tuple[str, ...]] = ("equals", "contains", "in")

Operator = Literal["equals", "contains", "in"]
Scalar = str | int | bool

#: How a clock counts: ``after`` its start (every clock but one), or ``lead``: due a limit
#: *before* the day its ``before`` entry names (a final report sent to the panel no later
#: than seven working days before publication).
CLOCK_KINDS: Final[tuple[str, ...]] = ("after", "lead")


class RuleError(ValueError):
    """A rule pack that cannot be used, with the file and the place in it."""
