"""Alert lifecycle on the household stage. Pure functions over the household view; no Kafka.

    open ──► acknowledged ──► resolved (by a team, with an outcome)
      └──────────┴──────────► resolved (condition ended | expired)

One alert per dedup key (the alert id is derived from rule and key). New
evidence for an open alert updates it, and escalates its severity when the
rule says so, instead of raising another. A rule with ``auto_resolve``
resolves its alert when the condition no longer holds; a duplicate-help alert
expires after its rule's ``expires_after_days`` (two years at most). After a
resolution, evidence dated within the rule's cooldown does not raise the alert
again. Team actions (claim, acknowledge, contact made, a contact attempt, a
warm hand-over, resolve) arrive as events and are applied here too, so the
alerts topic is the one record of every state change. Dates are event time: a
replay takes the same steps.

Contact attempts, the warm hand-over and the end result are what a municipality
reports per vroegsignaal in the DDAS exchange model, so they are recorded in its
value lists (:mod:`ddas`). Attempts are kept in the order of their own date and
part of day, not of arrival: the same set of attempts is the same list.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from wijkhub.streams import ddas
from wijkhub.streams.authenticity import SIGNED_IF_PRESENT
from wijkhub.streams.household import View
from wijkhub.streams.rules import DUPLICATE_HELP, SEVERITIES, AlertDraft, AlertFact, Rule

CONDITION_ENDED = "condition ended"
EXPIRED = "expired"
# A team's outcome when it resolves an alert (code → what the inbox shows).
OUTCOMES = {
    "contact_made": "Contact gelegd",
    "help_accepted": "Hulp geaccepteerd",
    "help_refused": "Hulp geweigerd",
    "no_action_needed": "Geen actie nodig",
    "wrong_link": "Onjuiste koppeling",
}
# what a member may do, in the inbox's order
TEAM_ACTIONS = ("claim", "acknowledge", "contact_made", "contact_attempt", "warm_handover",
                "resolve")  # fmt: skip
# Outcomes by which a rule's precision is judged (``wijkhub rules report``): the alert was
# not needed, or linked the wrong people. "wrong link" also sends the link to review.
NOT_NEEDED = ("no_action_needed", "wrong_link")
WRONG_LINK = "wrong_link"
EXPIRE = "expire"  # the worker's own action on an alert's expiry date (see :func:`expiry`)
ACTIONS = (*TEAM_ACTIONS, EXPIRE)
MAX_ACTIONS_REMEMBERED = 200  # action ids per household, for idempotency
SYSTEM_ACTOR = "system"


class ContactAttempt(TypedDict):
    """One attempt to reach the household (DDAS contactpoging), as the member recorded it."""

    action_id: str  # the action that recorded it (the tie-breaker within one part of day)
    actor: str  # the member who recorded it
    kind: str  # ddas.CONTACT_KINDS: Telefoon, Mail, Kaartje, Huisbezoek, ...
    on: str  # ISO date of the attempt (not of recording it)
    day_part: str  # ddas.DAY_PARTS: Ochtend, Middag, Avond
    reached: bool


class Raised(TypedDict):
    """Why an alert exists: its rule, the facts behind it and the day it was raised on.
    An open-alert entry from before the lifecycle kept only these (see :func:`_entry`)."""

    rule: str
    facts: list[AlertFact]
    on: str  # ISO date


class AlertEntry(Raised):
    """One alert as the lifecycle keeps it (the view's ``open_alerts``) and the household
    stage publishes it (:func:`rules.alert_record`). None for ``severity`` and ``team``
    only in an entry from before the lifecycle, which is never published."""

    state: str  # open | acknowledged | resolved
    revision: int
    severity: str | None
    team: str | None
    claimed_by: str | None  # the member who claimed it
    acknowledged_at: int | None  # epoch ms
    contact_made_at: int | None  # epoch ms
    published_at: int | None  # epoch ms
    resolution: str | None  # an outcome code, CONDITION_ENDED or EXPIRED
    contact_attempts: list[ContactAttempt]  # by date and part of day
    warm_handover: bool  # DDAS warmeOverdracht: handed over in person to the help
    end_result: str | None  # DDAS resultaat (ddas.END_RESULTS), given with resolve


# The DDAS keys of an entry (AlertEntry) and their values before a team records any. An
# entry with these values is the entry published before they existed: the household stage
# leaves them out of what it compares, so adding them republished no alert.
DDAS_DEFAULTS: dict[str, Any] = {"contact_attempts": [], "warm_handover": False,
                                 "end_result": None}  # fmt: skip


@dataclass(frozen=True)
class Change:
    """One state change of one alert; ``alert`` is its entry after the change."""

    kind: str  # raised | updated | escalated | claimed | acknowledged | contact_made | resolved
    alert_id: str
    rule: Rule
    alert: AlertEntry
    acknowledged_now: bool = False  # this change took the alert from open to acknowledged


@dataclass(frozen=True)
class Refused:
    """A team action that cannot apply (stale form, wrong team, bad outcome): the reason."""

    code: str
    reason: str


def _entry(value: Raised | str) -> AlertEntry:
    """Open-alert entries from before the lifecycle held only the rule id, then no state."""
    entry: Raised = value if isinstance(value, dict) else {"rule": value, "facts": [], "on": ""}
    return {
        "state": "open",
        "revision": 1,
        "severity": None,
        "team": None,
        "claimed_by": None,
        "acknowledged_at": None,
        "contact_made_at": None,
        "published_at": None,
        "resolution": None,
        "contact_attempts": [],
        "warm_handover": False,
        "end_result": None,
        **entry,
    }


def _today(view: View) -> dt.date:
    return dt.datetime.fromtimestamp(view["updated_at"] / 1000, dt.UTC).date()


def _higher(a: str, b: str | None) -> str:
    return a if b is None or SEVERITIES.index(a) > SEVERITIES.index(b) else b


def _resolve(view: View, aid: str, entry: AlertEntry, resolution: str, on: dt.date) -> None:
    del view["open_alerts"][aid]
    view.setdefault("resolved_alerts", {})[aid] = on.isoformat()
    entry.update({"state": "resolved", "resolution": resolution, "revision": entry["revision"] + 1})


def step(
    view: View,
    holding: list[AlertDraft],
    rules: dict[str, Rule],
    team_for: Callable[[Rule, str], str],
    now_ms: int,
) -> list[Change]:
    """Compare what holds now with the open alerts; update the view; return the changes.

    ``team_for(rule, alert_id)`` routes a new alert (the team stays with it for life);
    ``now_ms`` is when it was published, for the time-to-acknowledge figure.
    """
    open_alerts = view["open_alerts"]
    resolved = view.setdefault("resolved_alerts", {})
    changes: list[Change] = []
    now_holding = {d.alert_id: d for d in holding}
    for aid, draft in now_holding.items():
        rule = draft.rule
        if aid in open_alerts:
            entry = _entry(open_alerts[aid])
            known = sorted(f["event_id"] for f in entry["facts"])
            if known == sorted(f["event_id"] for f in draft.facts):
                continue
            severity = _higher(rule.severity_for(draft.facts), entry["severity"])
            kind = "escalated" if entry["severity"] and severity != entry["severity"] else "updated"
            entry.update({"facts": draft.facts, "severity": severity,
                          "revision": entry["revision"] + 1})  # fmt: skip
            open_alerts[aid] = entry
            if known:  # an entry without facts predates the lifecycle: refresh it silently
                changes.append(Change(kind, aid, rule, entry.copy()))
            continue
        ended_on = resolved.get(aid)
        if ended_on and dt.date.fromisoformat(draft.raised_on) < dt.date.fromisoformat(
            ended_on
        ) + dt.timedelta(days=rule.cooldown_days):
            continue  # cooldown: the same situation again too soon after resolution
        entry = {
            **_entry({"rule": rule.id, "facts": draft.facts, "on": draft.raised_on}),
            "severity": rule.severity_for(draft.facts),
            "team": team_for(rule, aid),
            "published_at": now_ms,
        }
        open_alerts[aid] = entry
        changes.append(Change("raised", aid, rule, entry.copy()))
    today = _today(view)
    for aid, value in list(open_alerts.items()):
        entry = _entry(value)
        active = rules.get(entry["rule"])
        if active is None:
            continue  # a rule no longer in the file: its alerts stay for the team to resolve
        if aid not in now_holding and active.auto_resolve:
            _resolve(view, aid, entry, CONDITION_ENDED, today)
            changes.append(Change("resolved", aid, active, entry))
        elif _expired(active, entry, today):
            _resolve(view, aid, entry, EXPIRED, today)
            changes.append(Change("expired", aid, active, entry))
    return changes


def _expired(rule: Rule, entry: AlertEntry, on: dt.date) -> bool:
    expires = rule.expires_on(entry["on"])
    return expires is not None and on >= expires


def act(view: View, action: dict[str, Any], rules: dict[str, Rule]) -> Change | Refused | None:
    """Apply one team action (an AlertAction record) to the view.

    Returns the change to publish, ``None`` for an action already applied (a
    redelivery), or :class:`Refused` with the reason when it cannot apply.
    """
    applied = view.setdefault("applied_actions", [])
    if action["action_id"] in applied:
        return None
    aid, kind = action["alert_id"], action["action"]
    if aid not in view["open_alerts"]:
        if aid in view.get("resolved_alerts", {}):
            return Refused("already-resolved", "the alert is already resolved")
        return Refused("unknown-alert", "no alert with this id for this household")
    entry = _entry(view["open_alerts"][aid])
    rule = rules.get(entry["rule"])
    if rule is None:
        return Refused("unknown-rule", f"rule {entry['rule']} is not in the active rules")
    if action["team"] != entry["team"]:
        return Refused("other-team", "the alert belongs to another team")
    on = action["at"].date()
    refused = _refusal(kind, action, rule, entry, on)
    if refused:
        return refused
    at_ms = int(action["at"].timestamp() * 1000)
    if kind == "claim":
        entry["claimed_by"] = action["actor"]
    acknowledged_now = kind in PICKS_UP and entry["state"] == "open"
    if acknowledged_now:
        entry.update({"state": "acknowledged", "acknowledged_at": at_ms})
    if kind == "contact_made":
        entry["contact_made_at"] = at_ms
    if kind == "contact_attempt":
        entry["contact_attempts"] = _attempts(entry, action)
    if kind == "warm_handover":
        entry["warm_handover"] = True
    if kind == "resolve":
        entry["end_result"] = action.get("end_result")
    applied.append(action["action_id"])
    del applied[:-MAX_ACTIONS_REMEMBERED]
    if kind in ("resolve", EXPIRE):
        _resolve(view, aid, entry, action["outcome"] if kind == "resolve" else EXPIRED, on)
        return Change("resolved" if kind == "resolve" else "expired", aid, rule, entry)
    entry["revision"] += 1
    view["open_alerts"][aid] = entry
    return Change(
        CHANGE_OF.get(kind, kind),
        aid,
        rule,
        entry.copy(),
        acknowledged_now,
    )


# A team action that shows the team took the alert up: it acknowledges an open alert.
PICKS_UP = ("acknowledge", "contact_made", "contact_attempt", "warm_handover")
CHANGE_OF = {"claim": "claimed", "acknowledge": "acknowledged",
             "contact_attempt": "contact_attempted", "warm_handover": "handed_over"}  # fmt: skip


def _attempts(entry: AlertEntry, action: Mapping[str, Any]) -> list[ContactAttempt]:
    """The entry's attempts with the action's, in the order of their own moment."""
    attempt: ContactAttempt = {
        "action_id": action["action_id"],
        "actor": action["actor"],
        "kind": action["contact_kind"],
        "on": _iso(action["contact_on"]),
        "day_part": action["day_part"],
        "reached": bool(action["reached"]),
    }
    attempts = [*entry.get("contact_attempts", []), attempt]
    return sorted(attempts, key=lambda a: (a["on"], ddas.DAY_PARTS.index(a["day_part"]),
                                           a["action_id"]))  # fmt: skip


def _iso(value: dt.date | str) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _refused_in_state(kind: str, alert: Mapping[str, Any], family: str) -> Refused | None:
    """Why ``kind`` cannot apply to an alert in its present state (None: it can).

    The one statement of the state machine: :func:`act` applies it to every action
    and the inbox offers exactly the actions it allows (:func:`allowed`).
    """
    if kind not in ACTIONS:
        return Refused("unknown-action", f"unknown action; expected one of {ACTIONS}")
    if alert["state"] == "resolved":
        return Refused("already-resolved", "the alert is already resolved")
    if kind == "claim" and alert.get("claimed_by"):
        return Refused("already-claimed", "a member of the team has claimed the alert already")
    if kind == "acknowledge" and alert["state"] != "open":
        return Refused("not-open", "the alert is already acknowledged")
    if kind == "contact_made" and family != DUPLICATE_HELP:
        return Refused("not-duplicate-help", "contact made is recorded for duplicate help only")
    if kind == "contact_made" and alert.get("contact_made_at") is not None:
        return Refused("contact-already-made", "contact made is recorded already")
    if kind in ("contact_attempt", "warm_handover") and family == DUPLICATE_HELP:
        return Refused("not-early-detection", "attempts to reach a household are recorded for "
                       "early detection; duplicate help records contact made")  # fmt: skip
    if kind == "warm_handover" and alert.get("warm_handover"):
        return Refused("already-handed-over", "the warm hand-over is recorded already")
    return None


def allowed(alert: Mapping[str, Any], family: str) -> list[str]:
    """The team actions the alert allows in its present state, in the inbox's order.

    ``alert`` is a lifecycle entry or a published Alert record (both carry ``state``,
    ``claimed_by`` and ``contact_made_at``); ``family`` is its rule's family.
    """
    return [k for k in TEAM_ACTIONS if _refused_in_state(k, alert, family) is None]


def _refusal(
    kind: str, action: Mapping[str, Any], rule: Rule, entry: AlertEntry, on: dt.date
) -> Refused | None:
    refused = _refused_in_state(kind, entry, rule.family)
    if refused:
        return refused
    if kind == "resolve" and action.get("outcome") not in OUTCOMES:
        return Refused("bad-outcome", f"outcome must be one of {sorted(OUTCOMES)}")
    if kind == "resolve" and action.get("end_result") not in (None, *ddas.END_RESULTS):
        return Refused("bad-end-result", "end result must be one of the DDAS end results")
    if kind == "contact_attempt":
        return _attempt_refusal(action, on)
    if kind == EXPIRE and not _expired(rule, entry, on):
        return Refused("not-expired", "the alert has not reached its expiry date")
    return None


# An AlertAction's fields that only a contact attempt or a resolve fills in.
NO_DETAILS: dict[str, Any] = dict.fromkeys(SIGNED_IF_PRESENT)


def _attempt_refusal(action: Mapping[str, Any], on: dt.date) -> Refused | None:
    """Why a contact attempt is not one DDAS can report (None: it is)."""
    if action.get("contact_kind") not in ddas.CONTACT_KINDS:
        return Refused("bad-contact-kind", f"contact kind must be one of {ddas.CONTACT_KINDS}")
    if action.get("day_part") not in ddas.DAY_PARTS:
        return Refused("bad-day-part", f"part of day must be one of {ddas.DAY_PARTS}")
    if not isinstance(action.get("reached"), bool):
        return Refused("bad-reached", "say whether the household was reached")
    when = action.get("contact_on")
    try:
        day = dt.date.fromisoformat(when) if isinstance(when, str) else when
    except ValueError:
        day = None
    if not isinstance(day, dt.date):
        return Refused("bad-contact-date", "the attempt needs its date")
    if day > on:
        return Refused("future-contact", "an attempt cannot be dated after it was recorded")
    return None


def expiry(
    alert_id: str, household_ref: str, team: str, correlation_id: str, now: dt.datetime
) -> dict[str, Any]:
    """The worker's action that ends an alert on its expiry date, as an AlertAction record.

    Its id depends on the alert only, so a sweep that runs again (or on another worker
    after a rebalance) sends the same action, and the household stage applies it once.
    It is an input like a team's action: a replay applies it at the same moment.
    """
    basis = f"{alert_id}|{EXPIRE}"
    return {
        "action_id": "AA-" + hashlib.sha256(basis.encode()).hexdigest()[:24],
        "alert_id": alert_id,
        "household_ref": household_ref,
        "action": EXPIRE,
        "outcome": None,
        **NO_DETAILS,
        "actor": SYSTEM_ACTOR,
        "team": team,
        "at": now,
        "correlation_id": correlation_id,
    }
