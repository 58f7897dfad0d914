"""One line in words for each entry, for the people views (timelines, ``why``).

Built from the (corrected) fields of the entry only; never from personal data, which
the record holds as commitments.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["describe", "shorten"]


def shorten(text: str, limit: int = 90) -> str:
    """Text cut to ``limit`` characters on a word boundary, with an ellipsis."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def _yes(value: Any, yes: str, no: str) -> str:
    return yes if value else no


def _list(value: Any) -> str:
    return ", ".join(str(v) for v in value or ())


_DESCRIBE: Final[Mapping[str, Callable[[Mapping[str, Any]], str]]] = {
    "CaseReferred": lambda f: (
        f"{f.get('subject')} referred by {f.get('referrer')} ({f.get('regime')}): "
        f"{f.get('harm')}, abuse or neglect {f.get('abuse_or_neglect')}. {f.get('summary', '')}"
    ),
    "IncidentNotified": lambda f: f"Notified {_list(f.get('recipients'))}",
    "InformationRequested": lambda f: (
        f"{f.get('asked_for')} requested from {f.get('agency')}"
        + (f", due {f['due']}" if f.get("due") else "")
        + f" [{f.get('request_id')}]"
    ),
    "InformationReceived": lambda f: (
        f"{f.get('agency')} replied "
        f"({_yes(f.get('involved'), 'involved', 'not involved')}): {f.get('summary')}"
    ),
    "InformationDeclined": lambda f: f"{f.get('agency')} declined: {f.get('reason')}",
    "NeighbourCheckRequested": lambda f: f"Check requested with {f.get('area')}",
    "NeighbourCheckAnswered": lambda f: (
        f"{f.get('area')} answered "
        f"({_yes(f.get('involved'), 'involved', 'not involved')}): {f.get('summary')}"
    ),
    "ContextRecorded": lambda f: f"Context ({f.get('topic')}): {f.get('summary')}",
    "DiscussionHeld": lambda f: (
        f"{f.get('forum')} with {len(f.get('attendees') or ())} agencies: {f.get('summary')}"
    ),
    "AgencyViewGiven": lambda f: f"{f.get('agency')} view: {f.get('view')}. {f.get('reasons')}",
    "RecommendationMade": lambda f: (
        f"Recommended {f.get('outcome')} to the {f.get('to')}: {f.get('rationale')}"
    ),
    "PeerChallengeSought": lambda f: f"Challenge sought from {f.get('peer')}: {f.get('question')}",
    "PeerChallengeReceived": lambda f: (
        f"{f.get('peer')} "
        + {True: "agrees", False: "disagrees", None: "gives no view"}.get(f.get("agrees"), "")
        + f": {f.get('advice')}"
    ),
    "DecisionDelayed": lambda f: (
        f"Decision delayed to {f.get('expected_by')}, approved by {f.get('approved_by')}: "
        f"{f.get('reason')}"
    ),
    "DecisionMade": lambda f: (
        f"Decided {f.get('outcome')} ({_list(f.get('decided_by'))}): {f.get('rationale')}"
    ),
    "DecisionCommunicated": lambda f: f"Decision sent to {_list(f.get('to'))}",
    "PanelResponded": lambda f: f"National panel: {f.get('response')}. {f.get('summary')}",
    "ScopeRevised": lambda f: f"Scope revised ({f.get('trigger')}): {f.get('scope')}",
    "ReviewerCommissioned": lambda f: f"Reviewer commissioned: {f.get('reviewer')}",
    "FamilyInformed": lambda f: f"{f.get('who')} informed ({f.get('how')})",
    "ReviewCompleted": lambda f: (
        "Review completed" + (f": {f['summary']}" if f.get("summary") else "")
    ),
    "ReportPublished": lambda f: f"Report published: {f.get('location')}",
    "EntryCorrected": lambda f: (
        f"Corrects {f.get('corrects')} ({_list(sorted(f.get('changes') or {}))}): {f.get('reason')}"
    ),
    "CaseClosed": lambda f: f"Case closed: {f.get('reason')}",
}


def describe(kind: str, fields: Mapping[str, Any], limit: int = 90) -> str:
    """A one-line account of an entry of type ``kind`` with these (corrected) fields."""
    render = _DESCRIBE.get(kind)
    text = render(fields) if render is not None else kind
    return shorten(text, limit) if limit else " ".join(text.split())
