"""Realistic synthetic ledgers, deterministic from a seed, streamed in recording order.

A ledger is planned as a list of small :class:`CaseSpec` (one per case: reference, regime,
length, the day the local authority became aware, whether the case is closed by the end);
the events themselves are generated lazily, case by case, and merged across cases in the
order they are recorded, so a million-event ledger never sits in memory (only the cases
in progress at one moment do, about a year's worth).

Each case follows the process of ``shared/domain.md`` under its regime (``wt2015`` before
the 2018-19 transition, ``wt2018``, then ``wt2023`` from December 2024): referral with
personal data, notification, information requests to agencies and their replies,
neighbour checks, context, the inter-agency discussion, agency views, a recommendation,
sometimes peer challenge or an approved delay, the decision with every criterion of the
regime and the entries it relied on, its communication, the panel's response, and for
reviews the reviewer, scope revisions, further information, sometimes a revisited
decision, then the report and closure.  About 2% of entries are corrections
(``EntryCorrected``) of earlier entries and about 6% are recorded well after they
happened (backdated).  Lengths run from 20 to 300 entries, about 100 on average, with
one case in a hundred at exactly 300.

Every line is the catalogue's wire form and is accepted by ``CaseLedger.record_lines``
when the ledger clock is at or after the line's planned recording time (see
:func:`batches`, which gives the clock for each batch).
"""

from __future__ import annotations

import argparse
import heapq
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson

from ledger.catalogue.models import REGIME_IN_FORCE

FIRST_AWARE = date(2015, 1, 5)
LAST_AWARE = date(2026, 4, 30)
HORIZON = date(2026, 10, 30)
"""No entry happens or is recorded after this day."""
WT2018_FROM = date(2018, 6, 29)
WT2018_ALL = date(2019, 9, 29)
WT2023_FROM = date(2024, 12, 9)
WT2023_ALL = date(2025, 3, 31)

MIN_LENGTH = 20
MAX_LENGTH = 300
LONGEST_EVERY = 100
"""One case in this many has exactly :data:`MAX_LENGTH` entries."""
CORRECTION_RATE = 0.02
BACKDATE_RATE = 0.06
PERSONAL_RATE = 0.85

_AREA_HEADS = ("North", "South", "East", "West", "Upper", "Lower", "Great", "Kings", "Market")
_AREA_TAILS = (
    "shire", "moor", "vale", "field", "ford", "bridge", "ham", "wick", "bury", "dale",
    "ton", "mouth", "borough", "wood",
)  # fmt: skip
AREAS = tuple(h + t for h in _AREA_HEADS for t in _AREA_TAILS)
FIRST_NAMES = (
    "Amara", "Ben", "Chloe", "Dylan", "Ella", "Finley", "Grace", "Harry", "Isla", "Jayden",
    "Kai", "Lily", "Mason", "Nia", "Oscar", "Poppy", "Riley", "Sofia", "Tyler", "Zara",
)  # fmt: skip
LAST_NAMES = (
    "Example", "Sample", "Placeholder", "Fictional", "Madeup", "Testcase", "Dummy",
    "Specimen", "Instance", "Model",
)  # fmt: skip
REVIEWERS = ("A. Reviewer", "B. Lead", "C. Independent", "D. Author", "E. Consultant")
FAMILY = ("Mother", "Father", "Both parents", "Grandmother", "Foster carer", "Aunt")
HOW = (
    "Letter from the business manager, followed by a call.",
    "Home visit by the lead reviewer and the business manager.",
    "Meeting at the family's solicitor's office.",
    "Telephone call; a leaflet on the review process was sent afterwards.",
)
SUMMARIES = (
    "Known to the service; {n} contacts in the last year, none escalated.",
    "No prior involvement with the child or family.",
    "Two attendances at the emergency department; no safeguarding referral made.",
    "Records show a referral in {y} closed after a single assessment.",
    "Health visitor contacts as scheduled; one missed appointment not followed up.",
    "Domestic abuse call-outs x{n}; risk assessed as standard each time.",
    "School attendance {p}%; a part-time timetable was not reviewed.",
    "Sibling subject to a child protection plan until {y}.",
    "GP records a bruise at {n} weeks, explained by the parents and not escalated.",
    "Housing moved the family twice; no information was shared with children's services.",
)
CONTEXTS = (
    ("previous-learning", "Earlier reviews in the area found weak information sharing."),
    ("parallel-process", "A police investigation and an inquest are running in parallel."),
    ("local-priority", "Neglect is the partnership's priority theme this year."),
    ("media-interest", "Local press have reported the incident; national interest likely."),
    ("family", "The family wish to contribute to any review."),
    ("practitioners", "Practitioners are distressed; support offered through agencies."),
    ("resources", "Two reviews already commissioned this year; budget is stretched."),
    ("other", "A related case is under review in a neighbouring area."),
)
RATIONALES = {
    "review": "The criteria are met and a local review can add learning about {t}.",
    "other-review": "A statutory review is not required, but a learning review of {t} will help.",
    "no-review": "The learning about {t} is already being acted on; a review would add little.",
    "national-review-referral": "The themes ({t}) are national; referred to the panel.",
}
THEMES = (
    "information sharing between health and social care",
    "bruising in non-mobile infants",
    "escalation of concerns by schools",
    "the voice of the child",
    "exploitation outside the home",
    "domestic abuse risk assessment",
    "neglect and its cumulative effect",
    "transitions between areas",
)
FACTOR_TEXT = {
    "learning": "Significant learning across agencies.",
    "previous_learning": "Builds on earlier reviews in the area.",
    "resources": "Can be resourced within this year's budget.",
    "practitioners": "Practitioners will be supported to take part.",
    "family": "The family have been told and wish to contribute.",
    "other_reviews": "Runs alongside the police investigation; timing agreed.",
    "media": "Media interest noted; not a reason either way.",
    "public_trust": "A review supports public trust in local safeguarding.",
}


@dataclass(frozen=True)
class CaseSpec:
    """One planned case: everything decided before its events are generated."""

    index: int
    ref: str
    regime: str
    length: int
    aware: date
    closes: bool


@dataclass(frozen=True)
class LedgerSpec:
    """A planned ledger: its seed and its cases (small; the events are streamed)."""

    seed: int
    events: int
    cases: tuple[CaseSpec, ...]


def decision_makers() -> list[tuple[str, str]]:
    """Everyone the generated delays may name as approver (``approved_by`` is a case's
    first decider), with the role that approves in its regime: a store must have them
    enrolled before it records a generated ledger (only a decision-maker approves)."""
    return [(f"{a} LSCB Chair", "chair") for a in AREAS] + [
        (f"{a} Council", "safeguarding-partner") for a in AREAS
    ]


def in_force(regime: str, incident: date, aware: date) -> bool:
    """Whether the regime was in force on the incident or the aware date, as the ledger
    checks it (``ledger.catalogue.models.REGIME_IN_FORCE``); otherwise the case is transitional."""
    start, end = REGIME_IN_FORCE[regime]
    return any(start <= d and (end is None or d <= end) for d in (incident, aware))


def regime_for(aware: date, rng: random.Random) -> str:
    """The regime in force when the local authority became aware, with transitions."""
    if aware < WT2018_FROM:
        return "wt2015"
    if aware < WT2018_ALL:
        share = (aware - WT2018_FROM).days / (WT2018_ALL - WT2018_FROM).days
        return "wt2018" if rng.random() < share else "wt2015"
    if aware < WT2023_FROM:
        return "wt2018"
    if aware < WT2023_ALL:
        share = (aware - WT2023_FROM).days / (WT2023_ALL - WT2023_FROM).days
        return "wt2023" if rng.random() < share else "wt2018"
    return "wt2023"


def _lengths(rng: random.Random, events: int) -> list[int]:
    """Case lengths in [MIN_LENGTH, MAX_LENGTH] that add up to exactly ``events``."""
    if events < MIN_LENGTH:
        raise ValueError(f"a ledger needs at least {MIN_LENGTH} events")
    lengths: list[int] = []
    total = 0
    while total < events:
        if len(lengths) % LONGEST_EVERY == 0:
            n = MAX_LENGTH
        else:
            n = MIN_LENGTH + round((MAX_LENGTH - MIN_LENGTH) * rng.betavariate(1.2, 3.0))
        lengths.append(n)
        total += n
    excess = total - events
    # Take the excess off the last cases, never below the minimum.
    for i in range(len(lengths) - 1, -1, -1):
        if excess == 0:
            break
        cut = min(excess, lengths[i] - MIN_LENGTH)
        lengths[i] -= cut
        excess -= cut
    if excess:
        raise ValueError(f"cannot fit {events} events into cases of {MIN_LENGTH} or more")
    return lengths


def plan_ledger(seed: int, events: int) -> LedgerSpec:
    """Plan a ledger of exactly ``events`` entries (at least 20)."""
    rng = random.Random(f"caseledger-bench:{seed}")
    lengths = _lengths(rng, events)
    span = (LAST_AWARE - FIRST_AWARE).days
    cases = []
    for i, length in enumerate(lengths):
        aware = FIRST_AWARE + timedelta(days=span * i // len(lengths))
        regime = regime_for(aware, rng)
        prefix = "SCR" if regime == "wt2015" else "RR"
        # Recent cases are still in progress; a few older reviews run on for years.
        closes = (HORIZON - aware).days > 400 and rng.random() > 0.04
        cases.append(
            CaseSpec(i, f"{prefix}-{aware.year}-{i + 1:05d}", regime, length, aware, closes)
        )
    return LedgerSpec(seed, events, tuple(cases))


# --- one case ----------------------------------------------------------------------


@dataclass
class _Step:
    kind: str
    day: float
    link: int = -1  # a reply's request, a neighbour answer's check


def _spread(start: float, end: float, n: int, rng: random.Random) -> list[float]:
    """``n`` sorted days inside ``[start, end]``."""
    return sorted(rng.uniform(start, max(start, end)) for _ in range(n))


class _CasePlan:
    """The steps of one case in the order they are recorded, with their world days."""

    def __init__(self, spec: CaseSpec, rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng
        r = rng
        wt2015 = spec.regime == "wt2015"
        length = spec.length
        n_corrections = int(length * CORRECTION_RATE) + (1 if r.random() < 0.3 else 0)
        self.n_agencies = r.randint(3, 6)
        self.n_neighbours = r.choice((0, 0, 1, 1, 2))
        n_context = r.randint(1, 2)
        n_views = r.randint(2, 4)
        peer = r.random() < 0.3
        late = r.random() < 0.15
        delayed = late and r.random() < 0.6
        panel = not wt2015 and r.random() < 0.6
        if length >= 40:
            self.outcome = r.choices(("review", "other-review", "no-review"), (80, 15, 5))[0]
        else:
            self.outcome = r.choices(
                ("no-review", "review", "other-review", "national-review-referral"),
                (45, 35, 12, 8),
            )[0]
        reviewing = self.outcome in ("review", "other-review")
        revisit = reviewing and length >= 40 and r.random() < 0.12
        family = True
        closes = spec.closes

        def core_size() -> int:
            size = 2 + 2 * self.n_agencies + 2 * self.n_neighbours + n_context + 1 + n_views
            size += 1 + 2 * peer + delayed + 2 + panel + family + n_corrections
            if reviewing:
                size += 1 + 3 * revisit + (2 if closes else 0)
            elif closes:
                size += 1
            return size

        # Shrink the optional parts until the core fits the planned length.
        while core_size() > length:
            if panel:
                panel = False
            elif peer:
                peer = False
            elif revisit:
                revisit = False
            elif delayed:
                delayed = False
            elif self.n_neighbours:
                self.n_neighbours -= 1
            elif n_context > 1:
                n_context -= 1
            elif n_views > 1:
                n_views -= 1
            elif self.n_agencies > 2:
                self.n_agencies -= 1
            elif n_corrections:
                n_corrections -= 1
            else:
                raise AssertionError(f"case of {length} entries cannot hold its core")
        padding = length - core_size()

        # World days, counted from the day the local authority became aware.
        notified = r.uniform(1, 7) if r.random() > 0.08 else r.uniform(8, 17)
        if wt2015:
            decision = notified + (r.uniform(32, 60) if late else r.uniform(12, 29))
        else:
            decision = notified + (r.uniform(22, 45) if late else r.uniform(10, 20))
        discussion = decision - r.uniform(2, 5)
        review_end = decision + r.uniform(150, 330)
        steps: list[_Step] = [_Step("referred", r.uniform(0, 1)), _Step("notified", notified)]
        gather_end = discussion - 0.5
        for i, day in enumerate(_spread(notified, notified + 2, self.n_agencies, r)):
            steps.append(_Step("request", day, i))
            steps.append(_Step("reply", r.uniform(day + 3, max(day + 3, gather_end)), i))
        for i, day in enumerate(_spread(notified, notified + 4, self.n_neighbours, r)):
            steps.append(_Step("neighbour_req", day, i))
            steps.append(_Step("neighbour_ans", r.uniform(day + 3, max(day + 3, gather_end)), i))
        steps += [_Step("context", d) for d in _spread(1, gather_end, n_context, r)]
        steps.append(_Step("discussion", discussion))
        steps += [_Step("view", d) for d in _spread(discussion, discussion + 1, n_views, r)]
        steps.append(_Step("recommendation", discussion + 1))
        if peer:
            steps.append(_Step("peer_sought", discussion + 1.2))
            steps.append(_Step("peer_received", r.uniform(discussion + 1.3, decision - 0.1)))
        if delayed:
            steps.append(_Step("delayed", notified + (20 if wt2015 else 14)))
        steps.append(_Step("decision", decision))
        steps.append(_Step("communicated", decision + r.uniform(0, 3)))
        if panel:
            steps.append(_Step("panel", decision + r.uniform(7, 30)))
        steps.append(_Step("family", decision + r.uniform(3, 20)))
        if reviewing:
            pad_start, pad_end = decision + 10, review_end
        else:  # further information, before and after the decision
            pad_start, pad_end = notified + 3, decision + 30 + length
        if reviewing:
            steps.append(_Step("reviewer", decision + r.uniform(10, 40)))
            if revisit:
                day = r.uniform(decision + 40, review_end - 20)
                steps.append(_Step("scope", day))
                steps.append(_Step("decision", day + 1))
                steps.append(_Step("communicated", day + 2))
            if closes:
                steps.append(_Step("completed", review_end))
        steps += self._padding(padding, pad_start, pad_end)
        steps.sort(key=lambda s: s.day)  # stable: a reply never precedes its request
        if closes:  # nothing but corrections after the closure
            steps.append(_Step("closed", steps[-1].day + r.uniform(1, 30)))
        first, last = steps[4].day, steps[-1].day + 30
        for day in _spread(first, last, n_corrections, r):
            steps.append(_Step("correction", day))
        steps.sort(key=lambda s: s.day)
        # Squeeze the case into the time left before the horizon.
        room = (HORIZON - spec.aware).days - 2
        end = steps[-1].day
        if end > room:
            for step in steps:
                step.day *= room / end
        assert len(steps) == length, (len(steps), length)
        self.steps = steps

    def _padding(self, n: int, start: float, end: float) -> list[_Step]:
        """Further work in the gathering phase or during the review: ``n`` steps."""
        r = self.rng
        out: list[_Step] = []
        pair = 1000
        while len(out) < n:
            left = n - len(out)
            day = r.uniform(start, end)
            if left >= 2 and r.random() < 0.55:
                out.append(_Step("pad_request", day, pair))
                out.append(_Step("reply", min(end, day + r.uniform(5, 30)), pair))
                pair += 1
            else:
                kind = r.choices(
                    ("context", "pad_discussion", "view", "scope", "family"), (35, 30, 15, 10, 10)
                )[0]
                out.append(_Step(kind, day))
        return out


class _CaseWriter:
    """Turns a case's steps into wire-form lines, keeping what later lines refer to."""

    def __init__(self, spec: CaseSpec, seed: int) -> None:
        self.spec = spec
        self.rng = r = random.Random(f"caseledger-bench:{seed}:{spec.index}")
        self.plan = _CasePlan(spec, r)
        self.wt2015 = spec.regime == "wt2015"
        self.incident = spec.aware - timedelta(days=r.randint(0, 10))
        self.home = r.choice(AREAS)
        self.others = [a for a in r.sample(AREAS, 3) if a != self.home][: self.plan.n_neighbours]
        health = "CCG" if self.wt2015 else "ICB"
        pool = [
            f"{self.home} Police",
            f"{self.home} {health}",
            f"{self.home} Children's Social Care",
            f"{self.home} Education",
            f"{self.home} NHS Foundation Trust",
            f"{self.home} Probation Service",
            f"{self.home} Housing",
            f"{self.home} Ambulance Service",
        ]
        self.agencies = pool[:4] + r.sample(pool[4:], 2)
        self.deciders = (
            [f"{self.home} LSCB Chair"]
            if self.wt2015
            else [f"{self.home} Council", f"{self.home} {health}", f"{self.home} Police"]
        )
        self.harm = r.choices(("death", "serious-harm", "other"), (40, 55, 5))[0]
        self.abuse = r.choices(("known", "suspected", "not-suspected"), (30, 62, 8))[0]
        self.theme = r.choice(THEMES)
        self.seq = 0
        self.types: list[str] = []
        self.days: list[date] = []
        self.evidence: list[int] = []
        self.requests: dict[int, tuple[str, str | None]] = {}
        self.request_counter = 0

    # --- helpers -------------------------------------------------------------------

    def _occurred(self, day: date, timed: bool) -> str:
        if timed:
            hour, minute = self.rng.randint(9, 16), self.rng.choice((0, 15, 30, 45))
            return f"{day.isoformat()}T{hour:02d}:{minute:02d}"
        return day.isoformat()

    def _sources(self) -> list[dict[str, str]] | None:
        r = self.rng
        if r.random() > 0.2:
            return None
        return [
            {
                "title": r.choice(("Minutes", "Chronology", "E-mail", "Report", "Letter")),
                "ref": f"DOC-{self.spec.index}-{self.seq + 1}",
                "sha256": f"{r.getrandbits(256):064x}",
            }
        ]

    def _criteria(self, outcome: str) -> dict[str, dict[str, str]]:
        r = self.rng
        met = {
            "abuse_or_neglect": self.abuse != "not-suspected",
            "child_died": self.harm == "death",
            "seriously_harmed": self.harm == "serious-harm",
        }
        names = (
            ("agency_concern",)
            if self.wt2015
            else ("improvements_needed", "recurring_themes", "multi_agency_concern", "panel_view")
        )
        for name in names:
            met[name] = outcome in ("review", "national-review-referral") and r.random() < 0.7
        out = {}
        for name, yes in met.items():
            finding = "met" if yes else ("unclear" if r.random() < 0.1 else "not-met")
            label = name.replace("_", " ").capitalize()
            reason = "evidenced in the agencies' returns" if yes else "not shown"
            out[name] = {"finding": finding, "reason": f"{label}: {reason}."}
        return out

    def _relied_on(self) -> list[str]:
        r = self.rng
        chosen = sorted(r.sample(self.evidence, min(len(self.evidence), r.randint(2, 5))))
        return [f"{self.spec.ref}#{s}" for s in chosen]

    def _nature(self) -> str:
        return self.rng.choice(
            (
                "Systems review, from birth to the incident.",
                "Learning review with practitioner events, the last two years.",
                "Appreciative inquiry into multi-agency practice, the last 18 months.",
            )
        )

    # --- the entries ---------------------------------------------------------------

    def body(self, step: _Step, day: date) -> dict[str, Any]:
        """The kind-specific fields of one step's entry."""
        r = self.rng
        spec = self.spec
        kind = step.kind
        if kind == "referred":
            born = self.incident - timedelta(days=r.randint(30, 17 * 365))
            age = (self.incident - born).days // 365
            body: dict[str, Any] = {
                "type": "CaseReferred",
                "regime": spec.regime,
                "subject": f"Child {chr(65 + spec.index % 26)} ({spec.ref})",
                "incident_date": self.incident.isoformat(),
                "aware_date": spec.aware.isoformat(),
                "harm": self.harm,
                "abuse_or_neglect": self.abuse,
                "looked_after": r.random() < 0.12,
                "home_area": self.home,
                "referrer": self.agencies[r.randrange(3)],
                "route": "statutory" if r.random() < 0.9 else "discretionary",
                "summary": f"Child aged {age}: {self.harm.replace('-', ' ')}; "
                f"concerns about {self.theme}.",
            }
            if not in_force(spec.regime, self.incident, spec.aware):
                body["transitional"] = True  # begun under the old regime in a transition
            if r.random() < 0.15:
                body["incident_area"] = r.choice(AREAS)
            if self.others:
                body["other_areas"] = list(self.others)
            if r.random() < PERSONAL_RATE:
                body["personal"] = {
                    "name": f"{r.choice(FIRST_NAMES)} {r.choice(LAST_NAMES)}",
                    "date_of_birth": born.isoformat(),
                }
            return body
        if kind == "notified":
            recipients = ["ofsted", "dfe"] if self.wt2015 else ["national-panel", "ofsted"]
            if r.random() < 0.3:
                recipients.append("local-board" if self.wt2015 else "dfe")
            return {
                "type": "IncidentNotified",
                "recipients": recipients,
                "reference": f"SIN-{day.year}-{spec.index:05d}",
            }
        if kind in ("request", "pad_request"):
            agency = (
                self.agencies[step.link % len(self.agencies)]
                if kind == "request"
                else (r.choice(self.agencies))
            )
            self.request_counter += 1
            # Further requests always carry an id; first requests (one per agency) do
            # not always, and their replies then close the agency's earliest open one.
            pad = kind == "pad_request"
            explicit = f"REQ-{self.request_counter}" if pad or r.random() < 0.4 else None
            self.requests[step.link] = (agency, explicit)
            body = {
                "type": "InformationRequested",
                "agency": agency,
                "asked_for": "minimum-data"
                if kind == "request"
                else r.choice(("chronology", "summary", "records", "other")),
                "due": (day + timedelta(days=7 if kind == "request" else 21)).isoformat(),
            }
            if explicit:
                body["request_id"] = explicit
            return body
        if kind == "reply":
            agency, explicit = self.requests.pop(step.link)
            if r.random() < 0.05:
                body = {
                    "type": "InformationDeclined",
                    "agency": agency,
                    "reason": "Records are held by a provider that has closed; none available.",
                }
            else:
                body = {
                    "type": "InformationReceived",
                    "agency": agency,
                    "involved": r.random() < 0.7,
                    "summary": r.choice(SUMMARIES).format(
                        n=r.randint(2, 9), y=day.year - r.randint(1, 4), p=r.randint(20, 95)
                    ),
                }
            if explicit:
                body["request_id"] = explicit
            return body
        if kind == "neighbour_req":
            return {
                "type": "NeighbourCheckRequested",
                "area": self.others[step.link],
                "reason": f"The family lived in {self.others[step.link]} until {day.year - 1}.",
            }
        if kind == "neighbour_ans":
            return {
                "type": "NeighbourCheckAnswered",
                "area": self.others[step.link],
                "involved": r.random() < 0.3,
                "summary": r.choice(("Records checked; none held.", "One early-help episode.")),
            }
        if kind == "context":
            topic, summary = r.choice(CONTEXTS)
            return {"type": "ContextRecorded", "topic": topic, "summary": summary}
        if kind in ("discussion", "pad_discussion"):
            core = kind == "discussion"
            forum = (
                ("scr-subgroup" if self.wt2015 else "rapid-review-meeting")
                if core
                else (r.choice(("board", "other")))
            )
            return {
                "type": "DiscussionHeld",
                "forum": forum,
                "attendees": self.agencies[: r.randint(3, len(self.agencies))],
                "summary": f"Facts agreed; concerns about {self.theme}."
                if core
                else "Progress of the review discussed; practitioner events planned.",
            }
        if kind == "view":
            view = self.plan.outcome if r.random() < 0.7 else r.choice(("review", "no-view"))
            view = view if view != "national-review-referral" else "other-review"
            return {
                "type": "AgencyViewGiven",
                "agency": r.choice(self.agencies),
                "view": view,
                "reasons": f"Learning about {self.theme}.",
            }
        if kind == "recommendation":
            outcome = self.plan.outcome
            body = {
                "type": "RecommendationMade",
                "to": "chair" if self.wt2015 else "partners",
                "outcome": outcome,
                "rationale": RATIONALES[outcome].format(t=self.theme),
            }
            if r.random() < 0.5:
                full = self._criteria(outcome)
                body["criteria"] = dict(list(full.items())[: r.randint(1, len(full))])
            if outcome in ("review", "other-review"):
                body["nature"] = self._nature()
            return body
        if kind == "peer_sought":
            self.peer = (
                f"Chair of {r.choice(AREAS)} LSCB"
                if self.wt2015
                else f"Independent scrutineer, {r.choice(AREAS)}"
            )
            return {
                "type": "PeerChallengeSought",
                "peer": self.peer,
                "question": "Does the case meet the criteria, and is the proposed scope right?",
            }
        if kind == "peer_received":
            return {
                "type": "PeerChallengeReceived",
                "peer": self.peer,
                "agrees": r.choice((True, True, False, None)),
                "advice": "Consider widening the period to include the pregnancy.",
            }
        if kind == "delayed":
            return {
                "type": "DecisionDelayed",
                "reason": "Awaiting health's chronology; the trust's records were archived.",
                "expected_by": (day + timedelta(days=14)).isoformat(),
                "approved_by": self.deciders[0],
            }
        if kind == "decision":
            revisiting = "DecisionMade" in self.types
            outcome = self.plan.outcome
            if revisiting and r.random() < 0.4:
                outcome = "other-review" if outcome == "review" else "review"
            body = {
                "type": "DecisionMade",
                "outcome": outcome,
                "decided_by": list(self.deciders),
                "criteria": self._criteria(outcome),
                "rationale": RATIONALES[outcome].format(t=self.theme),
                "relied_on": self._relied_on(),
            }
            if r.random() < 0.8:
                keys = r.sample(list(FACTOR_TEXT), r.randint(2, 6))
                body["factors"] = {k: FACTOR_TEXT[k] for k in keys}
            if outcome in ("review", "other-review"):
                body["nature"] = self._nature()
            if not body["relied_on"]:
                del body["relied_on"]
            return body
        if kind == "communicated":
            to = ["national-panel", "ofsted"] if r.random() < 0.8 else ["national-panel"]
            to += r.sample(["board-members", "family", "agencies"], r.randint(0, 2))
            return {"type": "DecisionCommunicated", "to": to}
        if kind == "panel":
            response = r.choices(("agree", "advice", "request-info", "disagree"), (70, 15, 10, 5))
            return {
                "type": "PanelResponded",
                "response": response[0],
                "summary": "The panel's letter to the partnership.",
            }
        if kind == "reviewer":
            return {
                "type": "ReviewerCommissioned",
                "reviewer": r.choice(REVIEWERS),
                "independence": "No prior involvement with the agencies or the family.",
            }
        if kind == "scope":
            return {
                "type": "ScopeRevised",
                "scope": "Period extended to include the " + r.choice(("pregnancy", "move")),
                "reason": "New information from the agencies' chronologies.",
                "trigger": r.choice(("new-information", "reviewer-commissioning", "panel-advice")),
            }
        if kind == "family":
            return {"type": "FamilyInformed", "who": r.choice(FAMILY), "how": r.choice(HOW)}
        if kind == "completed":
            if self.wt2015:
                return {"type": "ReviewCompleted", "summary": "Report agreed by the LSCB."}
            return {
                "type": "ReportPublished",
                "location": f"https://example.org/{self.home.lower()}/{spec.ref.lower()}",
            }
        if kind == "closed":
            return {"type": "CaseClosed", "reason": "Review completed and actions handed over."}
        if kind == "correction":
            return self._correction()
        raise AssertionError(kind)

    def _correction(self) -> dict[str, Any]:
        r = self.rng
        ref = self.spec.ref
        # Not PeerChallengeReceived: the ledger stores it without a null ``agrees``, and
        # then rejects any correction of it (reported with docs/performance.md).
        skip = ("EntryCorrected", "PeerChallengeReceived")
        targets = [i for i, t in enumerate(self.types, 1) if t not in skip and i > 1]
        seq = r.choice(targets)
        kind = self.types[seq - 1]
        changes: dict[str, Any]
        if kind == "InformationReceived" and r.random() < 0.5:
            changes = {"summary": "Corrected after the agency re-checked its records."}
        elif kind == "InformationRequested" and r.random() < 0.5:
            changes = {"due": (self.days[seq - 1] + timedelta(days=14)).isoformat()}
        elif kind in ("ContextRecorded", "DiscussionHeld", "NeighbourCheckAnswered"):
            changes = {"summary": "Corrected: the minutes were amended at the next meeting."}
        elif kind == "DecisionMade":
            changes = {"rationale": "Corrected wording agreed by the decision-makers."}
        else:
            day = max(self.incident, self.days[seq - 1] - timedelta(days=r.randint(1, 3)))
            changes = {"occurred_at": day.isoformat()}
        return {
            "type": "EntryCorrected",
            "corrects": f"{ref}#{seq}",
            "changes": changes,
            "reason": "Wrong in the original entry; checked against the source document.",
        }

    def lines(self) -> Iterator[tuple[datetime, bytes]]:
        """``(planned recording time, wire-form line)`` of every entry, in order."""
        r = self.rng
        spec = self.spec
        aware = spec.aware
        previous = datetime.combine(aware, datetime.min.time(), UTC)
        for step in self.plan.steps:
            world = aware + timedelta(days=int(step.day))
            occurred = world
            backdate = step.kind in ("context", "view", "family", "reply", "neighbour_ans")
            if backdate and r.random() < BACKDATE_RATE / 0.5:
                occurred = max(aware, world - timedelta(days=r.randint(7, 45)))
            body = self.body(step, world)
            body["case"] = spec.ref
            body["occurred_at"] = (
                spec.aware.isoformat()
                if step.kind == "referred"
                else self._occurred(occurred, r.random() < 0.25)
            )
            if step.kind == "referred":
                occurred = aware
            sources = self._sources()
            if sources:
                body["sources"] = sources
            if r.random() < 0.05:
                body["note"] = "Entered by the business unit from the tracker."
            recorded = datetime.combine(world, datetime.min.time(), UTC) + timedelta(
                hours=17, minutes=r.randint(30, 40 * 60)
            )
            recorded = max(recorded, previous + timedelta(seconds=1))
            previous = recorded
            self.seq += 1
            self.types.append(body["type"])
            self.days.append(occurred)
            if body["type"] in (
                "InformationReceived",
                "NeighbourCheckAnswered",
                "DiscussionHeld",
                "AgencyViewGiven",
                "RecommendationMade",
                "ContextRecorded",
            ):
                self.evidence.append(self.seq)
            yield recorded, orjson.dumps(body)


# --- the whole ledger ------------------------------------------------------------


def iter_lines(spec: LedgerSpec) -> Iterator[tuple[datetime, bytes]]:
    """Every entry of the ledger as ``(planned recording time, line)``, in recording order.

    Cases are started as the merge reaches the day their local authority became aware;
    only cases in progress are held.
    """
    heap: list[tuple[datetime, int, bytes, Iterator[tuple[datetime, bytes]]]] = []
    cases = iter(spec.cases)
    waiting = next(cases, None)
    while heap or waiting is not None:
        while waiting is not None and (
            not heap or datetime.combine(waiting.aware, datetime.min.time(), UTC) <= heap[0][0]
        ):
            stream = _CaseWriter(waiting, spec.seed).lines()
            first = next(stream)
            heapq.heappush(heap, (first[0], waiting.index, first[1], stream))
            waiting = next(cases, None)
        recorded, index, line, stream = heapq.heappop(heap)
        yield recorded, line
        following = next(stream, None)
        if following is not None:
            heapq.heappush(heap, (following[0], index, following[1], stream))


def batches(spec: LedgerSpec, size: int = 10_000) -> Iterator[tuple[datetime, list[bytes]]]:
    """Lines in batches of ``size``, each with the ledger clock to record it at.

    The clock is the planned recording time of the batch's last line, so ``recorded_at``
    moves forward through the years with the entries, and no ``occurred_at`` is ever in
    the future of the ledger's clock.
    """
    batch: list[bytes] = []
    last = datetime.min.replace(tzinfo=UTC)
    for recorded, line in iter_lines(spec):
        batch.append(line)
        last = recorded
        if len(batch) == size:
            yield last, batch
            batch = []
    if batch:
        yield last, batch


FOLLOW_UPS = (
    {"type": "ContextRecorded", "topic": "other", "summary": "Update from the business unit."},
    {
        "type": "DiscussionHeld",
        "forum": "other",
        "attendees": ["Police", "Health", "Children's Social Care"],
        "summary": "Progress of the review discussed.",
    },
    {"type": "FamilyInformed", "who": "Mother", "how": "Letter from the business manager."},
    {
        "type": "AgencyViewGiven",
        "agency": "Police",
        "view": "review",
        "reasons": "New information supports the scope.",
    },
)


def follow_up(case: str, n: int, day: date) -> bytes:
    """A further entry for an open case (the ``n``-th of a run), happening on ``day``."""
    body = {**FOLLOW_UPS[n % len(FOLLOW_UPS)], "case": case, "occurred_at": day.isoformat()}
    return orjson.dumps(body)


def open_cases(spec: LedgerSpec, typical: int = 100, limit: int = 20) -> list[CaseSpec]:
    """Cases still open at the end (no closure), nearest to a typical length first."""
    found = [c for c in spec.cases if not c.closes]
    found.sort(key=lambda c: (abs(c.length - typical), c.index))
    return found[:limit]


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.generate --events N [--seed S]``: print the wire-form lines."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    out = sys.stdout.buffer
    for _, line in iter_lines(plan_ledger(args.seed, args.events)):
        out.write(line + b"\n")


if __name__ == "__main__":
    main()
