"""The first detection rules, evaluated on a household view.

Each rule is a readable prompt for a professional, never a score: it names its
legal basis and the facts that made it fire. Alerts get a deterministic id
from the rule and its dedup key, so a replay or a redelivered event produces
the same alert id and no second alert. (Rules as versioned configuration,
consent gating and the full lifecycle come with issue #5.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from wijkhub.streams.household import View

EARLY_DETECTION = "early_detection"
DUPLICATE_HELP = "duplicate_help"


@dataclass(frozen=True)
class Rule:
    id: str
    version: int
    family: str
    severity: str
    legal_basis: str
    summary: str
    evaluate: Callable[[View], Iterator[tuple[str, list[dict]]]]
    """Yields (dedup key, facts) for every condition that holds now."""


@dataclass(frozen=True)
class AlertDraft:
    alert_id: str
    rule: Rule
    household_ref: str
    facts: list[dict]

    @property
    def raised_on(self) -> str:
        return max(f["on"] for f in self.facts)


def alert_id(rule_id: str, dedup_key: str) -> str:
    return "A-" + hashlib.sha256(f"{rule_id}|{dedup_key}".encode()).hexdigest()[:24]


def _arrears_in_window(view: View, days: int = 90) -> Iterator[tuple[str, list[dict]]]:
    arrears = [s for s in view["signals"] if s["type"] == "arrears" and not s.get("repeated")]
    for a, b in combinations(arrears, 2):
        if a["category"] == b["category"]:
            continue
        gap = abs(dt.date.fromisoformat(a["on"]) - dt.date.fromisoformat(b["on"]))
        if gap <= dt.timedelta(days=days):
            facts = [
                {
                    "event_id": s["event_id"],
                    "on": s["on"],
                    "type": "debt.arrears-signal",
                    "description": f"Betalingsachterstand gemeld, schuldeiser: {s['category']}",
                }
                for s in (a, b)
            ]
            yield view["household_ref"], facts
            return


def _duplicate_cases(view: View) -> Iterator[tuple[str, list[dict]]]:
    for kind in ("schuldhulp", "zorg"):
        active = [i for i in view["involvements"] if i["kind"] == kind]
        if len({i["holder"] for i in active}) >= 2:
            facts = [
                {
                    "event_id": i["event_id"],
                    "on": i["since"],
                    "type": f"involvement.{kind}",
                    "description": f"Actief {kind}-traject bij {i['holder']}"
                    + (f" (contact: {i['contact']})" if i["contact"] else ""),
                }
                for i in active
            ]
            yield f"{view['household_ref']}|{kind}", facts


RULES: tuple[Rule, ...] = (
    Rule(
        id="VS-ARREARS-2-CREDITORS-90D",
        version=1,
        family=EARLY_DETECTION,
        severity="high",
        legal_basis="Wgs art. 3 lid 2 (vroegsignalering van schulden)",
        summary="Twee of meer betalingsachterstanden bij verschillende soorten schuldeisers "
        "binnen 90 dagen",
        evaluate=_arrears_in_window,
    ),
    Rule(
        id="DH-TWO-HOLDERS-SAME-HELP",
        version=1,
        family=DUPLICATE_HELP,
        severity="medium",
        legal_basis="Jeugdwet hfst. 7.1 (verwijsindex-patroon); Wmo 2015 art. 5.1.1",
        summary="Twee of meer organisaties bieden dezelfde soort hulp aan dit huishouden; "
        "stem af wie de regie heeft",
        evaluate=_duplicate_cases,
    ),
)


def evaluate(view: View, rules: tuple[Rule, ...] = RULES) -> list[AlertDraft]:
    """New alerts for this view: conditions that hold and are not already open."""
    drafts = []
    for rule in rules:
        for key, facts in rule.evaluate(view):
            aid = alert_id(rule.id, key)
            if aid not in view["open_alerts"]:
                drafts.append(AlertDraft(aid, rule, view["household_ref"], facts))
    return drafts


def alert_record(
    draft: AlertDraft, team: str, municipality: str, correlation_id: str
) -> dict[str, Any]:
    """The Alert as published: rule, facts and routing; no amounts, no names."""

    def at(day: str) -> dt.datetime:
        return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC)

    rule = draft.rule
    return {
        "alert_id": draft.alert_id,
        "rule_id": rule.id,
        "rule_version": rule.version,
        "family": rule.family,
        "severity": rule.severity,
        "state": "open",
        "household_ref": draft.household_ref,
        "team": team,
        "municipality": municipality,
        "summary": f"{rule.summary}. Grondslag: {rule.legal_basis}.",
        "raised_at": at(draft.raised_on),
        "facts": [
            {
                "event_id": f["event_id"],
                "type": f["type"],
                "occurred_at": at(f["on"]),
                "description": f["description"],
            }
            for f in draft.facts
        ],
        "correlation_id": correlation_id,
    }
