"""The nine QM2 questions ("Decision making", SCIE/NSPCC SCR Quality Markers) answered
from a case's record.

Each answer is ``yes``, ``partly``, ``no`` or ``not-applicable``, with the refs of the
entries that evidence it and one sentence saying why.  The rules are written down in
``docs/quality.md``; the vocabulary they read (the key agencies and their name patterns,
what counts as minimum data, local-learning topics, challenge phrases) is data, in
``projections/data/quality.toml``, replaceable per deployment.

"Before the decision" means on or before the day of the decision in force (when both
carry a time of day, at or before its time); without a decision, everything in the view
counts and the answers say "so far".  Question 5 reads the statutory clocks
(:mod:`projections.assess.clocks`): only clocks the rule pack marks justifiable (the decision
clocks) are about the decision's timeliness.

The vocabulary's loading and checking is :mod:`projections.assess.quality_config`, the nine
rules are :mod:`projections.assess.quality_rules`; this module answers a case with them and
is where callers import the questions' names from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from ledger.catalogue.terms import LONDON
from projections.assess.clocks import case_clocks
from projections.assess.quality_config import (
    KeyAgency,
    QualityConfig,
    QualityConfigError,
    default_config,
    load_config,
    loads_config,
    parse_config,
)
from projections.assess.quality_rules import ANSWERS, QUESTIONS, RULES, Answer, rule_context
from projections.fold.case_view import CaseView, fold
from projections.fold.related import RelatedCase
from projections.fold.when import parse_as_of, parse_on

__all__ = [
    "ANSWERS",
    "QUESTIONS",
    "Answer",
    "KeyAgency",
    "QualityConfig",
    "QualityConfigError",
    "answer_questions",
    "default_config",
    "load_config",
    "loads_config",
    "parse_config",
    "quality_from_records",
]


def answer_questions(
    view: CaseView,
    on: date | datetime,
    *,
    config: QualityConfig | None = None,
    related: Sequence[RelatedCase] | None = None,
) -> list[Answer]:
    """The nine QM2 answers for a folded case (already filtered as of T and on D).

    ``on`` is the ``--on`` time, for question 5's clocks.  ``related`` are the earlier
    cases sharing its themes (:func:`projections.queries.related.related_to`, as of the
    same times), for question 8; None when they were not looked up (question 8 then
    answers from this case's record alone, as before themes existed).
    """
    chosen = config if config is not None else default_config()
    clocks = case_clocks(view, on, include_not_started=True)
    context = rule_context(view, chosen, clocks, related)
    return [rule(context) for rule in RULES]


def quality_from_records(
    records: Iterable[Mapping[str, Any]],
    on: datetime | None = None,
    as_of: datetime | None = None,
    *,
    config: QualityConfig | None = None,
) -> list[dict[str, Any]]:
    """The nine answers as JSON-ready dicts from one case's stored records.

    The records are folded here (``as_of``, then ``on``, corrections applied); ``None``
    means now.  An empty list when the case's referral is not among them.
    """
    now = datetime.now(LONDON)
    on_time = parse_on(None, now) if on is None else on
    as_of_time = parse_as_of(None, now) if as_of is None else as_of
    view = fold(list(records), as_of_time=as_of_time, on_time=on_time)
    if view is None:
        return []
    return [a.as_dict() for a in answer_questions(view, on_time, config=config)]
