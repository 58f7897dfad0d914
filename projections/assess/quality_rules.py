"""The nine QM2 rules (``docs/quality.md``), each answering one question from the entries
before the decision in force, with the refs that evidence it and one sentence saying why.

Why one module: about 750 lines and one job, the nine rules read as one list against
``docs/quality.md``, and share the helpers and the context at the top of the module
(question 8 reads the related cases, :mod:`projections.fold.related`, passed in).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal

from ledger.catalogue.terms import CRITERIA, LONDON
from ledger.domain.case import answered_request
from projections.assess.clocks import ClockState, recorded_day
from projections.assess.quality_config import TEXT_FIELDS, QualityConfig, normalise_text
from projections.assess.rules import rule_pack
from projections.fold.case_view import REVIEW_OUTCOMES, CaseView, Decision, Entry, areas_of
from projections.fold.related import RelatedCase
from projections.fold.why import mandatory_review

AnswerValue = Literal["yes", "partly", "no", "not-applicable"]
ANSWERS: Final[tuple[str, ...]] = ("yes", "partly", "no", "not-applicable")

#: The nine questions of QM2 (``shared/domain.md``), by number.
QUESTIONS: Final[Mapping[int, str]] = {
    1: "Was enough information gathered, about agency contact with the child and about context?",
    2: "Were key agencies asked for at least minimum data about their involvement?",
    3: "Were checks with neighbouring boards planned where the family lived outside the area?",
    4: "Was there a mechanism for an informed inter-agency discussion leading to a "
    "recommendation to the chair?",
    5: "Is any delay justified by the circumstances of the case?",
    6: "Was independent challenge considered (for example peer discussion with another chair)?",
    7: "Was the decision informed by the statutory criteria, and is that evidenced in the record?",
    8: "Was the decision about the nature of the review informed by local learning and needs?",
    9: "Did member agencies have the opportunity to give input to the decision?",
}


@dataclass(frozen=True)
class Answer:
    """One QM2 question answered."""

    question: int
    answer: AnswerValue
    evidence: tuple[str, ...]
    explanation: str

    @property
    def text(self) -> str:
        """The question itself."""
        return QUESTIONS[self.question]

    def as_dict(self) -> dict[str, Any]:
        """``{question, answer, evidence, explanation}`` (``cli.md``), then the text."""
        return {
            "question": self.question,
            "answer": self.answer,
            "evidence": list(self.evidence),
            "explanation": self.explanation,
            "text": self.text,
        }


def _refs(entries: Iterable[Entry]) -> list[str]:
    return [e.ref for e in entries]


def _seq_of(ref: str) -> int:
    tail = ref.rsplit("#", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _unique(refs: Iterable[str]) -> tuple[str, ...]:
    """Refs without repeats, in record (seq) order."""
    return tuple(sorted(dict.fromkeys(refs), key=_seq_of))


def _day(entry_or_time: str) -> tuple[date, bool]:
    """The London day of an occurred_at and whether it carries a time of day."""
    if len(entry_or_time) == 10:
        return date.fromisoformat(entry_or_time), False
    moment = datetime.fromisoformat(entry_or_time)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return moment.astimezone(LONDON).date(), True


def _not_after(occurred_at: str, limit: str) -> bool:
    """Whether an entry at ``occurred_at`` counts as before (or at) the moment ``limit``.

    Days decide; on the same day, two times of day are compared, and a bare date counts
    as the same moment as anything on its day.
    """
    day, timed = _day(occurred_at)
    limit_day, limit_timed = _day(limit)
    if day != limit_day:
        return day < limit_day
    if timed and limit_timed:
        return datetime.fromisoformat(occurred_at) <= datetime.fromisoformat(limit)
    return True


def _list_names(names: Sequence[str]) -> str:
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


@dataclass(frozen=True)
class _Context:
    """What every rule needs: the view, the entries before the decision, the config."""

    view: CaseView
    before: tuple[Entry, ...]
    """Entries (corrections excluded) on or before the decision in force, timeline order."""
    decision: Decision | None
    config: QualityConfig
    clocks: tuple[ClockState, ...]
    related: tuple[RelatedCase, ...] | None = None
    """The earlier cases sharing the case's themes (None: not looked up)."""

    @property
    def so_far(self) -> str:
        return "" if self.decision is not None else " so far (no decision yet)"

    def of_type(self, *types: str) -> list[Entry]:
        return [e for e in self.before if e.type in types]


def rule_context(
    view: CaseView,
    config: QualityConfig,
    clocks: Sequence[ClockState],
    related: Sequence[RelatedCase] | None = None,
) -> _Context:
    decision = view.decision
    entries = [e for e in view.timeline() if e.type != "EntryCorrected"]
    if decision is not None:
        entries = [
            e
            for e in entries
            if e.seq != decision.seq and _not_after(e.occurred_at, decision.occurred_at)
        ]
    return _Context(
        view,
        tuple(entries),
        decision,
        config,
        tuple(clocks),
        tuple(related) if related is not None else None,
    )


# --- the nine rules -----------------------------------------------------------------


def _q1_information(c: _Context) -> Answer:
    received = c.of_type("InformationReceived")
    declined = c.of_type("InformationDeclined")
    context = c.of_type("ContextRecorded")
    open_requests: dict[str, str] = {}
    request_refs: dict[str, str] = {}
    for e in c.before:
        if e.type == "InformationRequested":
            open_requests[str(e.get("request_id"))] = str(e.get("agency"))
            request_refs[str(e.get("request_id"))] = e.ref
        elif e.type in ("InformationReceived", "InformationDeclined"):
            closed = answered_request(open_requests, dict(e.body))
            if closed is not None:
                del open_requests[closed]
    evidence = _unique(_refs(received) + _refs(context) + _refs(declined))
    if not received:
        return Answer(
            1,
            "no",
            evidence,
            f"No agency gave information about its contact with the child{c.so_far}.",
        )
    gaps: list[str] = []
    if open_requests:
        gaps.append(
            f"{_plural(len(open_requests), 'request')} still unanswered "
            f"({_list_names(sorted(set(open_requests.values())))})"
        )
    if declined:
        gaps.append(
            f"{_plural(len(declined), 'agency', 'agencies')} declined "
            f"({_list_names(sorted({str(e.get('agency')) for e in declined}))})"
        )
    if not context:
        gaps.append("no context (previous learning, parallel processes, family ...) recorded")
    when = "before the decision" if c.decision is not None else "so far"
    got = (
        f"{_plural(len(received), 'agency reply', 'agency replies')} and "
        f"{_plural(len(context), 'context entry', 'context entries')} were recorded {when}"
    )
    if gaps:
        return Answer(1, "partly", evidence, f"{got[0].upper()}{got[1:]}, but {'; '.join(gaps)}.")
    return Answer(1, "yes", evidence, f"{got[0].upper()}{got[1:]}, and every request was answered.")


def _q2_minimum_data(c: _Context) -> Answer:
    requests = [
        e
        for e in c.of_type("InformationRequested")
        if str(e.get("asked_for")) in c.config.minimum_data
    ]
    asked: dict[str, list[Entry]] = {a.key: [] for a in c.config.key_agencies}
    for e in requests:
        for agency in c.config.key_agencies_of(str(e.get("agency", ""))):
            asked[agency.key].append(e)
    evidence = _unique(ref for entries in asked.values() for ref in _refs(entries))
    titles = {a.key: a.title for a in c.config.key_agencies}
    missing = [titles[k] for k, v in asked.items() if not v]
    done = [titles[k] for k, v in asked.items() if v]
    if not done:
        return Answer(
            2,
            "no",
            evidence,
            f"None of the key agencies ({_list_names(list(titles.values()))}) was asked for "
            f"at least minimum data{c.so_far}.",
        )
    if missing:
        return Answer(
            2,
            "partly",
            evidence,
            f"{_list_names(done)} were asked for at least minimum data, but not "
            f"{_list_names(missing)}{c.so_far}.",
        )
    return Answer(
        2,
        "yes",
        evidence,
        f"Every key agency ({_list_names(done)}) was asked for at least minimum data.",
    )


def _same_area(a: str, b: str) -> bool:
    return normalise_text(a).strip() == normalise_text(b).strip()


def _q3_neighbours(c: _Context) -> Answer:
    """Every area the case involves before the decision (home, incident, ``other_areas``,
    an area it was transferred from or to) other than the one responsible then needs a
    ``NeighbourCheckRequested``; answered checks are named."""
    referral = c.view.referral
    transfers = c.of_type("ResponsibilityTransferred")
    responsible, involved = areas_of([referral, *transfers])
    areas = [a for a in involved if not _same_area(a, responsible)]
    checks = c.of_type("NeighbourCheckRequested")
    answers = c.of_type("NeighbourCheckAnswered")
    checked = [str(e.get("area", "")) for e in checks]
    if not areas:
        if checks:
            return Answer(
                3,
                "yes",
                _unique(_refs(checks) + _refs(answers)),
                f"No other area is recorded for the family, and checks were still made with "
                f"{_list_names(sorted(set(checked)))}.",
            )
        return Answer(
            3,
            "not-applicable",
            (referral.ref,),
            "The referral records no other area where the family lived, so no neighbour "
            "check was needed.",
        )
    covered = [a for a in areas if any(_same_area(a, x) for x in checked)]
    missing = [a for a in areas if a not in covered]
    relevant = [e for e in checks if any(_same_area(str(e.get("area", "")), a) for a in areas)]
    relevant_answers = [
        e for e in answers if any(_same_area(str(e.get("area", "")), a) for a in areas)
    ]
    evidence = _unique(
        [referral.ref, *_refs(transfers), *_refs(relevant), *_refs(relevant_answers)]
    )
    where = (
        f"{responsible} is responsible{' after the transfer' if transfers else ''}; the case "
        f"also involves {_list_names(areas)}"
    )
    if not covered:
        return Answer(
            3,
            "no",
            evidence,
            f"{where}, but no check with {'that' if len(areas) == 1 else 'any'} board or "
            f"partnership was requested{c.so_far}.",
        )
    if missing:
        return Answer(
            3,
            "partly",
            evidence,
            f"{where}: checks were requested with {_list_names(covered)} but not with "
            f"{_list_names(missing)}{c.so_far}.",
        )
    answered = [a for a in areas if any(_same_area(a, str(e.get("area"))) for e in answers)]
    tail = (
        "and answered"
        if len(answered) == len(areas)
        else f"({_plural(len(answered), 'answer')} recorded)"
    )
    return Answer(
        3,
        "yes",
        evidence,
        f"{where}; a check was requested with {'each' if len(areas) > 1 else 'it'} {tail}.",
    )


def _inter_agency(e: Entry) -> bool:
    attendees = {normalise_text(str(a)).strip() for a in (e.get("attendees") or [])}
    return len(attendees) >= 2


def _q4_discussion(c: _Context) -> Answer:
    discussions = c.of_type("DiscussionHeld")
    recommendations = c.of_type("RecommendationMade")
    informing = c.of_type(
        "InformationReceived", "InformationDeclined", "NeighbourCheckAnswered", "ContextRecorded"
    )
    multi = [e for e in discussions if _inter_agency(e)]
    informed = [
        d for d in multi if any(_not_after(i.occurred_at, d.occurred_at) for i in informing)
    ]
    led = [
        r
        for r in recommendations
        if any(_not_after(d.occurred_at, r.occurred_at) for d in informed)
    ]
    evidence = _unique(_refs(informed or multi or discussions) + _refs(led or recommendations))
    if not discussions and not recommendations:
        return Answer(
            4,
            "no",
            (),
            f"No inter-agency discussion and no recommendation are recorded{c.so_far}.",
        )
    if led:
        d, r = informed[0], led[0]
        return Answer(
            4,
            "yes",
            evidence,
            f"The {str(d.get('forum')).replace('-', ' ')} on {d.occurred_day.isoformat()} brought "
            f"{_plural(len(d.get('attendees') or []), 'agency', 'agencies')} together after "
            f"information had been gathered, and led to a recommendation ({r.get('outcome')}) "
            f"to the {r.get('to')}.",
        )
    if not discussions:
        why = "a recommendation was made without any recorded inter-agency discussion"
    elif not multi:
        why = "the discussion recorded involved only one agency"
    elif not informed:
        why = "the discussion took place before any information had been gathered"
    else:
        why = "no recommendation followed the discussion"
    return Answer(4, "partly", evidence, f"There is a mechanism, but {why}{c.so_far}.")


def _q5_delay(c: _Context) -> Answer:
    pack = rule_pack(c.view.regime)
    # The decision clocks: those a DecisionDelayed justifies (not the notification and
    # publication clocks, which their own deferral entries justify).
    decision_clocks = {r.name for r in pack.clocks if "DecisionDelayed" in r.justifiable_by}
    states = [s for s in c.clocks if s.clock in decision_clocks and s.status != "not-started"]
    if not states:
        return Answer(
            5,
            "not-applicable",
            (),
            "The decision clock has not started, so there is no delay to justify.",
        )
    delayed = [s for s in states if s.status in ("late", "overdue")]
    on_time = [s for s in states if s not in delayed]
    if not delayed:
        s = on_time[0]
        # The decision itself is a mark of a clock that ends when the review is sent.
        refs = [r for r in (s.start_ref, *(m.ref for m in s.marks), s.end_ref) if r]
        if s.status == "met":
            what = f"the decision met its {s.clock} clock ({s.ended} on or before {s.due})"
        else:
            what = f"the {s.clock} clock is still running and due {s.due}"
        return Answer(5, "not-applicable", _unique(refs), f"There is no delay: {what}.")
    justified = [s for s in delayed if s.justified]
    refs = [
        r
        for s in delayed
        for r in (s.start_ref, *(m.ref for m in s.marks), s.end_ref, *s.delay_refs)
        if r
    ]
    if justified and len(justified) == len(delayed):
        s = justified[0]
        assert s.delay is not None
        late = "was made late" if s.status == "late" else "is overdue"
        beyond = (
            f", though it also ran past the expected date {s.delay.expected_by}"
            if s.beyond_expected
            else ""
        )
        return Answer(
            5,
            "yes",
            _unique(refs),
            f"The decision {late} ({s.days_over} days past {s.due}), and the delay was "
            f"approved by {s.delay.approved_by} ({s.delay.ref}) because: "
            f"{str(s.delay.reason).rstrip('.')}{beyond}.",
        )
    if justified:
        return Answer(
            5,
            "partly",
            _unique(refs),
            "Some delays were approved with reasons, but "
            f"{_list_names([s.clock for s in delayed if not s.justified])} ran late without one.",
        )
    s = delayed[0]
    late = "was made late" if s.status == "late" else "is overdue"
    after = [d for d in s.late_delays if d.recorded_at is not None]
    if after:
        told = ", ".join(
            f"{d.ref} (approved by {d.approved_by}, recorded {recorded_day(str(d.recorded_at))})"
            for d in after
        )
        return Answer(
            5,
            "no",
            _unique([*refs, *(d.ref for d in after)]),
            f"The decision {late} ({s.days_over} days past {s.due} on the {s.clock} clock); "
            f"a delay is on record, {told}, but it was recorded after "
            f"{'the decision' if s.ended is not None else s.on}, so it cannot justify it.",
        )
    return Answer(
        5,
        "no",
        _unique(refs),
        f"The decision {late} ({s.days_over} days past {s.due} on the {s.clock} clock) and no "
        "approved delay with a reason is recorded.",
    )


def _texts(entry: Entry) -> list[str]:
    texts = [str(entry.get(name)) for name in TEXT_FIELDS if entry.get(name)]
    factors = entry.get("factors")
    if isinstance(factors, Mapping):
        texts.extend(str(v) for v in factors.values() if v)
    return texts


def _q6_challenge(c: _Context) -> Answer:
    sought = c.of_type("PeerChallengeSought", "PeerChallengeReceived")
    if sought:
        peers = sorted({str(e.get("peer")) for e in sought})
        received = [e for e in sought if e.type == "PeerChallengeReceived"]
        tail = " and answered" if received else " (no answer recorded yet)"
        return Answer(
            6,
            "yes",
            _unique(_refs(sought)),
            f"Independent challenge was sought from {_list_names(peers)}{tail}.",
        )
    considered = list(c.before)
    if c.decision is not None:
        decision_entry = c.view.entry(c.decision.seq)
        if decision_entry is not None:
            considered.append(decision_entry)
    mentions: list[Entry] = []
    negated: list[Entry] = []
    for e in considered:
        found = [c.config.challenge_mention(t) for t in _texts(e)]
        if "considered" in found:
            mentions.append(e)
        elif "negated" in found:
            negated.append(e)
    if mentions:
        return Answer(
            6,
            "partly",
            _unique(_refs(mentions)),
            "No entry records independent challenge (no PeerChallengeSought or "
            "PeerChallengeReceived); read from free text, the words of "
            f"{_list_names(_refs(mentions))} say it was considered, but none was sought.",
        )
    tail = (
        f"; the free text of {_list_names(_refs(negated))} mentions it only in a negation "
        "(for example that none was sought), which is not evidence that it was considered"
        if negated
        else ""
    )
    return Answer(
        6,
        "no",
        _unique(_refs(negated)),
        "No independent challenge was sought or recorded as considered"
        f" (no PeerChallengeSought or PeerChallengeReceived){c.so_far}{tail}.",
    )


def _q7_criteria(c: _Context) -> Answer:
    decision = c.decision
    if decision is None:
        return Answer(7, "not-applicable", (), "No decision has been made yet.")
    expected = CRITERIA.get(c.view.regime, ())
    given = [
        name
        for name in expected
        if (f := decision.criteria.get(name)) is not None and f.finding and f.reason.strip()
    ]
    missing = [name for name in expected if name not in given]
    evidence = _unique([decision.ref, *decision.relied_on])
    counts: dict[str, int] = {}
    for name in given:
        finding = decision.criteria[name].finding
        counts[finding] = counts.get(finding, 0) + 1
    tally = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    problems: list[str] = []
    if missing:
        problems.append(f"no finding with a reason on {_list_names(missing)}")
    if given and counts.get("unclear", 0) == len(given):
        problems.append("every finding is unclear")
    if not decision.rationale.strip():
        problems.append("no rationale is recorded")
    if decision.outcome == "no-review" and mandatory_review(c.view.regime, decision):
        problems.append("the findings make a review mandatory yet the outcome is no-review")
    if not given:
        return Answer(
            7, "no", evidence, f"The decision {decision.ref} records no statutory findings."
        )
    if problems:
        return Answer(
            7,
            "partly",
            evidence,
            f"The decision {decision.ref} records findings ({tally}), but {'; '.join(problems)}.",
        )
    return Answer(
        7,
        "yes",
        evidence,
        f"The decision {decision.ref} records a finding with its reason on each of the "
        f"{len(expected)} {c.view.regime} criteria ({tally}) and a rationale consistent "
        "with them.",
    )


def _q8_local(c: _Context) -> Answer:
    """Question 8 from this case's own record: local learning and needs recorded
    (``ContextRecorded`` topics) and weighed (factors) or relied on."""
    decision = c.decision
    if decision is None:
        return Answer(8, "not-applicable", (), "No decision has been made yet.")
    if decision.outcome not in REVIEW_OUTCOMES:
        return Answer(
            8,
            "not-applicable",
            (decision.ref,),
            f"The outcome is {decision.outcome}, so no local review's nature was decided.",
        )
    learning = [
        e
        for e in c.of_type("ContextRecorded")
        if str(e.get("topic")) in c.config.local_learning_topics
    ]
    weighed = [f for f in c.config.learning_factors if decision.factors.get(f)]
    learning_refs = {e.ref for e in learning}
    relied = [r for r in decision.relied_on if r in learning_refs]
    evidence = _unique([decision.ref, *_refs(learning)])
    nature = (decision.nature or "").strip()
    if not nature:
        return Answer(
            8, "no", evidence, f"The decision {decision.ref} does not say what review it is."
        )
    topics = _list_names(sorted({str(e.get("topic")) for e in learning}))
    if learning and (weighed or relied):
        return Answer(
            8,
            "yes",
            evidence,
            f"The nature of the review ({nature.rstrip('.')}) was decided with local learning "
            f"on record ({topics}) and the decision weighs "
            f"{_list_names(weighed) if weighed else 'it (relied on)'}.",
        )
    if learning:
        return Answer(
            8,
            "partly",
            evidence,
            f"Local learning was recorded ({topics}), but the decision does not weigh "
            "learning among its factors.",
        )
    if weighed:
        return Answer(
            8,
            "partly",
            evidence,
            f"The decision weighs {_list_names(weighed)}, but no local learning or local "
            "priority is recorded to inform it.",
        )
    return Answer(
        8,
        "no",
        evidence,
        "Neither local learning nor local needs are recorded or weighed for the nature of "
        "the review.",
    )


def _q8_nature(c: _Context) -> Answer:
    """Question 8 (``docs/quality.md``): where the case has practice themes and the
    related cases were looked up, ``yes`` only when the decision cites related learning
    (relies on a ``previous-learning`` context, or gives a ``previous_learning`` factor)
    and earlier cases sharing its themes recorded learning by the decision, or says
    there is none (the same, when none had); without themes, the case's own record
    decides (:func:`_q8_local`)."""
    base = _q8_local(c)
    decision = c.decision
    if (
        c.related is None
        or decision is None
        or base.answer == "not-applicable"
        or not (decision.nature or "").strip()
    ):
        return base
    if not c.view.themes:
        return Answer(
            8,
            base.answer,
            base.evidence,
            f"{base.explanation} No practice themes are recorded for this case, so no earlier "
            "case's learning can be related to it: the answer rests on its own record.",
        )
    available = [
        (r, [item for item in r.learning if _not_after(item.occurred_at, decision.occurred_at)])
        for r in c.related
    ]
    taught = [(r, items) for r, items in available if items]
    silent = [r.case for r, items in available if not items]
    contexts = [e for e in c.of_type("ContextRecorded") if e.get("topic") == "previous-learning"]
    cited = [e for e in contexts if e.ref in decision.relied_on]
    factor = str(decision.factors.get("previous_learning") or "").strip()
    how = [f"relies on {_list_names(_refs(cited))}"] if cited else []
    if factor:
        how.append("weighs previous learning among its factors")
    themes = _list_names(list(c.view.themes))
    cases = "; ".join(
        f"{r.case} on {', '.join(r.themes)}: {', '.join(item.ref for item in items)}"
        for r, items in taught
    )
    evidence = _unique([decision.ref, *_refs(cited)])
    quiet = (
        f" {_list_names(silent)} {'shares' if len(silent) == 1 else 'share'} its themes but "
        "had recorded no learning by then."
        if silent
        else ""
    )
    weaker: AnswerValue = "partly" if base.answer in ("yes", "partly") else "no"
    if taught:
        if how:
            return Answer(
                8,
                "yes",
                evidence,
                f"Earlier cases sharing its themes had recorded learning ({cases}), and the "
                f"decision cites previous learning: it {' and '.join(how)}.{quiet}",
            )
        return Answer(
            8,
            weaker,
            evidence,
            f"Earlier cases sharing its themes had recorded learning ({cases}), but the "
            "decision does not cite it (no previous-learning context it relies on, no "
            f"previous_learning factor).{quiet}",
        )
    said = how or (
        [f"records previous learning in {_list_names(_refs(contexts))}"] if contexts else []
    )
    evidence = _unique([decision.ref, *_refs(cited or contexts)])
    if said:
        return Answer(
            8,
            "yes",
            evidence,
            f"No earlier case sharing its themes ({themes}) had recorded learning, and the "
            f"decision addresses previous learning: it {' and '.join(said)}.{quiet}",
        )
    return Answer(
        8,
        weaker,
        evidence,
        f"No earlier case sharing its themes ({themes}) had recorded learning, but the "
        "decision does not say there is none (no previous-learning context or "
        f"previous_learning factor).{quiet}",
    )


def _q9_input(c: _Context) -> Answer:
    discussions = c.of_type("DiscussionHeld")
    views = c.of_type("AgencyViewGiven")
    had: dict[str, list[Entry]] = {a.key: [] for a in c.config.key_agencies}
    for e in views:
        for agency in c.config.key_agencies_of(str(e.get("agency", ""))):
            had[agency.key].append(e)
    for e in discussions:
        for name in e.get("attendees") or []:
            for agency in c.config.key_agencies_of(str(name)):
                if e not in had[agency.key]:
                    had[agency.key].append(e)
    titles = {a.key: a.title for a in c.config.key_agencies}
    done = [titles[k] for k, v in had.items() if v]
    missing = [titles[k] for k, v in had.items() if not v]
    evidence = _unique(ref for entries in had.values() for ref in _refs(entries))
    others = sorted(
        {
            str(e.get("agency"))
            for e in views
            if not c.config.key_agencies_of(str(e.get("agency", "")))
        }
    )
    extra = f" Other agencies gave views too ({_list_names(others)})." if others else ""
    if not done:
        return Answer(
            9,
            "no",
            evidence,
            f"No key agency attended a discussion or gave a view{c.so_far}.{extra}",
        )
    if missing:
        return Answer(
            9,
            "partly",
            evidence,
            f"{_list_names(done)} had the opportunity (a view given or a discussion attended), "
            f"but not {_list_names(missing)}{c.so_far}.{extra}",
        )
    return Answer(
        9,
        "yes",
        evidence,
        f"Every key agency ({_list_names(done)}) attended the inter-agency discussion or gave "
        f"its view {'before the decision' if c.decision is not None else 'so far'}.{extra}",
    )


RULES: Final = (
    _q1_information,
    _q2_minimum_data,
    _q3_neighbours,
    _q4_discussion,
    _q5_delay,
    _q6_challenge,
    _q7_criteria,
    _q8_nature,
    _q9_input,
)
