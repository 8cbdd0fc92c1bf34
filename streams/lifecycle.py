"""Alert lifecycle on the household stage: raise, update with new evidence, auto-resolve,
cooldown. Pure functions over the household view; no Kafka here.

One alert per dedup key (the alert id is derived from rule and key). New
evidence for an open alert updates it instead of raising another. A rule with
``auto_resolve`` resolves its alert when the condition no longer holds (the
help that overlapped has ended). After a resolution, evidence dated within the
rule's cooldown does not raise the alert again. Dates are event time, so a
replay takes the same steps as live traffic did.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from wijkhub.streams.household import View
from wijkhub.streams.rules import AlertDraft, Rule

CONDITION_ENDED = "condition ended"


@dataclass(frozen=True)
class Change:
    kind: str  # "raised" | "updated" | "resolved"
    alert_id: str
    rule: Rule
    facts: list[dict]


def _entry(value: object) -> dict:
    """Open-alert entries from before the lifecycle held only the rule id."""
    return value if isinstance(value, dict) else {"rule": value, "facts": [], "on": ""}


def _today(view: View) -> str:
    return dt.datetime.fromtimestamp(view["updated_at"] / 1000, dt.UTC).date().isoformat()


def step(view: View, holding: list[AlertDraft], rules: dict[str, Rule]) -> list[Change]:
    """Compare what holds now with the open alerts; update the view; return the changes."""
    open_alerts = view["open_alerts"]
    resolved = view.setdefault("resolved_alerts", {})
    changes: list[Change] = []
    now_holding = {d.alert_id: d for d in holding}
    for aid, draft in now_holding.items():
        facts_ids = sorted(f["event_id"] for f in draft.facts)
        if aid in open_alerts:
            entry = _entry(open_alerts[aid])
            if sorted(f["event_id"] for f in entry["facts"]) != facts_ids and entry["facts"]:
                changes.append(Change("updated", aid, draft.rule, draft.facts))
            open_alerts[aid] = {"rule": draft.rule.id, "facts": draft.facts, "on": draft.raised_on}
            continue
        ended_on = resolved.get(aid)
        if ended_on:
            quiet_until = dt.date.fromisoformat(ended_on) + dt.timedelta(
                days=draft.rule.cooldown_days
            )
            if dt.date.fromisoformat(draft.raised_on) < quiet_until:
                continue  # cooldown: the same situation again too soon after resolution
        open_alerts[aid] = {"rule": draft.rule.id, "facts": draft.facts, "on": draft.raised_on}
        changes.append(Change("raised", aid, draft.rule, draft.facts))
    for aid, value in list(open_alerts.items()):
        entry = _entry(value)
        rule = rules.get(entry["rule"])
        if aid not in now_holding and rule is not None and rule.auto_resolve:
            del open_alerts[aid]
            resolved[aid] = _today(view)
            changes.append(Change("resolved", aid, rule, entry["facts"]))
    return changes
