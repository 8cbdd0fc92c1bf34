"""Household stage: the household view, the rules and the alert lifecycle, from facts.

Keyed and partitioned by household (``linked`` and ``alert-actions`` are
co-partitioned). The state is the set of facts linked to the household, each
under its event id with the highest generation seen (a withdrawn fact is kept
as a tombstone so an older copy cannot bring it back), the household's member
periods, the team actions (by action id), and what was published.

After each batch the whole story is derived again, in *event time*: facts are
folded in date order (so a DDAS "repeat" is judged against earlier-dated
signals, not earlier-arrived ones), the rules are evaluated as of every date,
and the team actions are applied at their own moment. The alerts that story
yields are compared with the alerts published before, and only differences go
out: a new alert, a changed one, or one the facts no longer support (withdrawn,
with the reason). The same set of facts and actions therefore gives the same
alerts and the same view, whatever the order, replays or restarts.

Pure: no Kafka. See :mod:`wijkhub.streams.stage` for the contract.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any, NotRequired, TypedDict, cast

from wijkhub.schemas.registry import (
    ALERT,
    ALERT_ACTION,
    CONTACT_CARD,
    HOUSEHOLD_VIEW,
    LINKED_EVENT,
    RAW_EVENT,
    Catalog,
    DecodeError,
)
from wijkhub.streams import contact_card, household, lifecycle, rules
from wijkhub.streams import outcomes as alert_outcomes
from wijkhub.streams.authenticity import ActionKeys
from wijkhub.streams.district import DistrictTable
from wijkhub.streams.ids import Ids
from wijkhub.streams.linking import event_day
from wijkhub.streams.routing import Router
from wijkhub.streams.stage import (
    Message,
    Output,
    Result,
    dead_letter,
    decoder,
    digest,
    pack,
    unpack,
)
from wijkhub.streams.topics import ALERT_ACTIONS, ALERTS, CONTACT_CARDS, LINKED, UNMATCHED
from wijkhub.streams.topics import HOUSEHOLD_VIEW as HOUSEHOLD_VIEW_TOPIC

WITHDRAWN = "withdrawn"
WITHDRAWN_REASON = "withdrawn: the facts behind it no longer belong to this household"
# An alert removed from the alerts topic (a tombstone): a duplicate-help alert past its
# term (the verwijsindex keeps a match at most two years), or one resting on a person
# erased since. The state keeps only that it was removed, so it is not published again.
REMOVED = "removed"
# Links a "wrong link" outcome puts up for review: those made without a BSN (the address
# stage linked the event by its address, or by name and date of birth).
REVIEWABLE = ("address", "match")
WRONG_LINK_REASON = b"wrong-link"


class StoredFact(TypedDict):
    gen: int
    withdrawn: bool
    id: str
    day: str
    rank: int  # 0: starts or adds something, 1: ends something (sorted after, same day)
    name: str
    domain: str
    person: str | None
    payload: dict[str, Any]  # JSON-ready: dates as ISO text
    correlation_id: str
    received: float
    erased: NotRequired[bool]  # withdrawn by an erasure of the person it was about
    # linked by address or by name and date of birth, not by BSN: the event as linked
    # carried it (packed), so a "wrong link" outcome can put it up for review
    review: NotRequired[str]
    # how to reach the person, as the source supplied it (subject.contact), with the
    # address the fact was about: for the contact card (issue 17); absent when none
    card: NotRequired[contact_card.CardSource]


class Members(TypedDict):
    """The household's member periods, as the address stage last sent them."""

    gen: int  # the generation of that message
    periods: list[household.MemberPeriod]
    unit: str | None  # the address unit the household lives in


class StoredAction(TypedDict):
    """A team's (or the sweep's) AlertAction record, JSON-ready (``at`` as ISO text)."""

    action_id: str
    alert_id: str
    household_ref: str
    action: str  # one of lifecycle.ACTIONS
    outcome: str | None
    actor: str
    team: str
    at: str
    correlation_id: str
    # AlertAction v2 (signed actions); not in an action stored before it:
    key_id: NotRequired[str | None]
    signature: NotRequired[str | None]
    at_ms: int  # ``at`` in epoch ms, the order the story applies actions in
    counted: NotRequired[bool]  # its outcome is in the metrics (and dead-lettered if refused)


class Published(TypedDict):
    revision: int
    digest: str
    published_at: int | None
    rule: str
    change: str
    entry: lifecycle.AlertEntry


class HouseholdState(TypedDict):
    facts: dict[str, StoredFact]
    members: Members
    address_ref: str | None
    actions: dict[str, StoredAction]
    published: dict[str, Published]
    refused: list[str]  # digests of unauthentic action records already dead-lettered
    view_digest: str
    watermark: str  # the newest fact date seen (for the lateness metric)
    # the contact card published per open alert (alert id → digest); absent in a state
    # written before issue 17
    cards: NotRequired[dict[str, str]]


Outcome = lifecycle.Change | lifecycle.Refused | None
"""What a team action did in the story (see :func:`lifecycle.act`)."""
Outcomes = dict[str, Outcome]  # action id → its outcome
Alerts = dict[str, tuple[str, lifecycle.AlertEntry, rules.Rule]]  # id → (change, entry, rule)


def new_state() -> HouseholdState:
    return {"facts": {}, "members": {"gen": 0, "periods": [], "unit": None},
            "address_ref": None, "actions": {}, "published": {}, "refused": [],
            "view_digest": "", "watermark": "", "cards": {}}  # fmt: skip


def plain(value: Any) -> Any:
    """Avro-decoded data as JSON-ready data (dates and times as ISO text)."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class HouseholdStage:
    """linked, alert-actions → household-view, alerts (and dlq.streams)."""

    name = "household"
    inputs = (LINKED, ALERT_ACTIONS)

    def __init__(
        self,
        catalog: Catalog,
        active_rules: tuple[rules.Rule, ...],
        router: Router,
        districts: DistrictTable | None,
        municipality: str,
        lateness_days: int,
        action_keys: ActionKeys,
        ids: Ids,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.catalog = catalog
        self._raw = decoder(catalog, RAW_EVENT)  # shared with the stages before this one
        self.rules = active_rules
        self.rules_by_id = {r.id: r for r in active_rules}
        self.router = router
        self.districts = districts
        self.municipality = municipality
        self.lateness = dt.timedelta(days=lateness_days)
        self.action_keys = action_keys
        self.ids = ids
        self.clock = clock

    def new_state(self) -> HouseholdState:
        return new_state()

    def process(self, state: HouseholdState, messages: Sequence[Message]) -> Result[HouseholdState]:
        result: Result[HouseholdState] = Result(state)
        ref = ""
        for message in messages:
            ref = message.key.decode()
            try:
                if message.topic == ALERT_ACTIONS:
                    result.dirty |= self._action(state, message, result)
                else:
                    result.dirty |= self._linked(state, message, result)
            except DecodeError as exc:
                result.outputs.append(dead_letter(self.name, message, "undecodable", str(exc)))
        if result.dirty:
            self._publish(state, ref, result)
        return result

    # -- facts ---------------------------------------------------------------------------

    def _linked(
        self, state: HouseholdState, message: Message, result: Result[HouseholdState]
    ) -> bool:
        linked = self.catalog.decode(message.value, LINKED_EVENT)
        if linked["linked_by"] == "register":
            if state["members"]["gen"] >= linked["generation"]:
                return False
            periods: list[household.MemberPeriod] = [
                {"person_ref": m["person_ref"], "from": m["from"].isoformat(),
                 "until": m["until"].isoformat() if m["until"] else None}
                for m in linked["members"]
            ]  # fmt: skip
            state["members"] = {"gen": linked["generation"], "periods": periods,
                                "unit": linked["address_ref"]}  # fmt: skip
            return True
        raw = self._raw(linked["raw_event"]) if linked["raw_event"] else None  # shared
        eid = linked["event_id"] or (raw["envelope"]["event_id"] if raw else "")
        known = state["facts"].get(eid)
        if known is not None and known["gen"] >= linked["generation"]:
            return False  # a replay or redelivery: nothing changes, whatever it did before
        if linked["withdrawn"] or raw is None:
            # kept even when the fact never arrived: an older copy must not bring it back;
            # only its generation (what it said is no longer needed: minimisation)
            stub = self._fact(eid, None, None)
            erased = linked["linked_by"] == "erasure" or bool(known and known.get("erased"))
            state["facts"][eid] = {**stub, "gen": linked["generation"], "erased": erased}
            return True
        fact = self._fact(eid, raw, linked["person_ref"] or raw["subject"]["person_ref"])
        if linked["linked_by"] in REVIEWABLE:
            fact["review"] = pack(linked["raw_event"])
        unit = linked["address_ref"] or raw["subject"]["address_ref"]
        card = contact_card.source_of(raw["subject"].get("contact"), raw["subject"]["address_ref"])
        if card is not None:
            fact["card"] = card
        state["facts"][eid] = {**fact, "gen": linked["generation"]}
        if unit and (state["address_ref"] is None or unit < state["address_ref"]):
            state["address_ref"] = unit
        if (
            state["watermark"]
            and dt.date.fromisoformat(fact["day"])
            < dt.date.fromisoformat(state["watermark"]) - self.lateness
        ):
            result.counts["late_fact",] += 1
        state["watermark"] = max(state["watermark"], fact["day"])
        # Latency runs from the receipt of the source record that caused this link: the fact
        # itself, or the later BRP record that moved or released it (its ``caused_at``
        # header). A fact linked again waited for that record: its own age says how late the
        # source was, not how fast the hub is, and is measured apart.
        first = linked["generation"] == 1 and known is None
        if message.caused_at is not None:
            result.caused_at.append(message.caused_at)
        elif first:  # a record from before the header: the fact's own receipt
            result.caused_at.append(fact["received"])
        if not first:
            result.relinked_at.append(fact["received"])
        return True

    @staticmethod
    def _fact(eid: str, raw: dict[str, Any] | None, person: str | None) -> StoredFact:
        if raw is None:
            return {"gen": 0, "withdrawn": True, "id": eid, "day": "", "rank": 0, "name": "",
                    "domain": "", "person": None, "payload": {}, "correlation_id": "",
                    "received": 0.0}  # fmt: skip
        name, payload = raw["payload"]
        env = raw["envelope"]
        return {"gen": 0, "withdrawn": False, "id": eid, "day": event_day(raw),
                "rank": 1 if household.ends_something(name, payload) else 0, "name": name,
                "domain": env["domain"], "person": person, "payload": plain(payload),
                "correlation_id": env["correlation_id"],
                "received": env["received_at"].timestamp()}  # fmt: skip

    def _action(
        self, state: HouseholdState, message: Message, result: Result[HouseholdState]
    ) -> bool:
        action = self.catalog.decode(message.value, ALERT_ACTION)
        if action["action_id"] in state["actions"]:
            result.counts["alert_action", action["action"], "-", "duplicate"] += 1
            return False
        refused = self.action_keys.refusal(action)
        if refused is None and action["household_ref"] != message.key.decode():
            # signed for another household, sent under this one's key: not this one's
            refused = ("action-wrong-household", "the action is signed for another household")
        if refused is not None:  # not trusted for the topic it came on: never applied
            seen = digest(pack(message.value or b""))
            if seen in state["refused"]:
                return False  # dead-lettered before: a redelivery
            state["refused"] = [*state["refused"], seen][-lifecycle.MAX_ACTIONS_REMEMBERED :]
            result.counts["alert_action", action["action"], "-", "refused"] += 1
            result.outputs.append(dead_letter(self.name, message, *refused))
            return True
        # The decoded record enters the state here: its fields, JSON-ready, and at_ms.
        state["actions"][action["action_id"]] = cast(
            StoredAction, {**plain(action), "at_ms": int(action["at"].timestamp() * 1000)}
        )
        return True

    # -- the clock ------------------------------------------------------------------------

    def due(self, state: HouseholdState, key: bytes, now: float) -> list[Output]:
        """The expiry action for every alert this household has published that is still
        active and past its rule's expiry date on the wall clock (:class:`stage.Timed`).

        The story expires an alert by itself once a *fact* dated past its expiry arrives;
        a quiet household has none, so the worker's sweep sends this action instead (an
        input on ``alert-actions``, applied like a team's). Already sent, or already
        applied: nothing (the action id is the alert's, so a repeat is a duplicate).
        """
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        found = []
        for aid, published in sorted(state["published"].items()):
            entry, rule = published["entry"], self.rules_by_id.get(published["rule"])
            if rule is None or entry["state"] == "resolved" or published["change"] in (
                WITHDRAWN, REMOVED):  # fmt: skip
                continue
            expires = rule.expires_on(entry["on"])
            if expires is None or at.date() < expires:
                continue
            newest = self._newest(state, entry)
            team = entry["team"]
            assert team is not None  # published, so routed (an Alert's team is never null)
            record = self.action_keys.sign(lifecycle.expiry(
                aid, key.decode(), team, newest["correlation_id"] if newest else "", at
            ))  # fmt: skip
            if record["action_id"] not in state["actions"]:
                found.append(Output(ALERT_ACTIONS, key, self.catalog.encode(ALERT_ACTION, record)))
        return found

    @staticmethod
    def _newest(state: HouseholdState, entry: lifecycle.AlertEntry) -> StoredFact | None:
        """The newest stored fact behind an alert entry (its correlation id travels on)."""
        facts = state["facts"]
        return max((facts[f["event_id"]] for f in entry["facts"] if f["event_id"] in facts),
                   key=lambda f: (f["day"], f["id"]), default=None)  # fmt: skip

    # -- the story, in event time --------------------------------------------------------

    def derive(self, state: HouseholdState, ref: str) -> tuple[household.View, Alerts, Outcomes]:
        """The view, the alerts (id → (change, entry, rule)) and each action's outcome."""
        view = household.new_view(ref)
        view["address_ref"] = state["address_ref"] or state["members"]["unit"]
        if self.districts is not None and view["address_ref"]:
            found = self.districts.lookup(view["address_ref"])
            view["district"] = found.as_record() if found else None
        facts = sorted((f for f in state["facts"].values() if not f["withdrawn"]),
                       key=lambda f: (f["day"], f["rank"], f["id"]))  # fmt: skip
        actions = sorted(state["actions"].values(), key=lambda a: (a["at_ms"], a["action_id"]))
        days = sorted({f["day"] for f in facts} | {a["at"][:10] for a in actions})
        alerts: Alerts = {}
        outcomes: Outcomes = {}
        fi = ai = 0

        def team_for(rule: rules.Rule, alert_id: str) -> str:
            """The team an alert went to when it was first published stays its team: a
            routing change moves new alerts only, never one a team is working on."""
            published = state["published"].get(alert_id)
            if published is not None and published["entry"].get("team"):
                return str(published["entry"]["team"])
            return self.router.route(rule.id, view.get("district")).team

        for day in days:
            while fi < len(facts) and facts[fi]["day"] == day:
                household.fold(view, facts[fi])
                fi += 1
            view["updated_at"] = _millis(day)
            for change in lifecycle.step(view, rules.holding(view, self.rules, self.ids),
                                         self.rules_by_id,
                                         team_for, 0):  # fmt: skip
                alerts[change.alert_id] = (change.kind, change.alert, change.rule)
            while ai < len(actions) and actions[ai]["at"][:10] == day:
                a = actions[ai]
                ai += 1
                done = lifecycle.act(view, _action_record(a), self.rules_by_id)
                outcomes[a["action_id"]] = done
                if isinstance(done, lifecycle.Change):
                    alerts[done.alert_id] = (done.kind, done.alert, done.rule)
        view["member_periods"] = state["members"]["periods"]
        view["members"] = sorted({m["person_ref"] for m in view["member_periods"]
                                  if m["until"] is None})  # fmt: skip
        return view, alerts, outcomes

    # -- publishing the differences ------------------------------------------------------

    def _publish(self, state: HouseholdState, ref: str, result: Result[HouseholdState]) -> None:
        view, alerts, outcomes = self.derive(state, ref)
        for aid, (kind, entry, rule) in sorted(alerts.items()):
            newest = self._newest(state, entry)
            self._send_alert(state, ref, aid, kind, entry, rule, newest, result)
        for aid, published in sorted(state["published"].items()):
            if aid not in alerts and self._rests_on_erased(state, published["entry"]):
                self._remove_alert(state, aid, published, result)
            elif aid not in alerts and published["change"] not in (WITHDRAWN, REMOVED):
                active = self.rules_by_id.get(published["rule"])
                if active is not None:  # a rule no longer in the file: its alerts stay
                    entry = {**published["entry"], "state": "resolved",
                             "resolution": WITHDRAWN_REASON}  # fmt: skip
                    self._send_alert(state, ref, aid, WITHDRAWN, entry, active, None, result)
        for action_id, outcome in sorted(outcomes.items()):
            self._count_action(state, action_id, outcome, result)
        self._publish_cards(state, ref, result)
        if not view["member_periods"] and not any(
            not f["withdrawn"] for f in state["facts"].values()
        ):  # nothing belongs here (any more): no view, as if it had never been derived
            if state["view_digest"]:
                state["view_digest"] = ""
                result.outputs.append(Output(HOUSEHOLD_VIEW_TOPIC, ref.encode(), None))
            return
        record = household.to_record(view)
        view_digest = digest(record)  # dates as ISO text: the digest of what is published
        if view_digest != state["view_digest"]:
            state["view_digest"] = view_digest
            value = self.catalog.encode(HOUSEHOLD_VIEW, record)
            result.outputs.append(Output(HOUSEHOLD_VIEW_TOPIC, ref.encode(), value))
            result.counts["view_published",] += 1

    def _publish_cards(self, state: HouseholdState, ref: str,
                       result: Result[HouseholdState]) -> None:  # fmt: skip
        """The contact card of every open alert as published, where it changed; a tombstone
        for one whose alert closed, was withdrawn or removed, or whose facts were erased."""
        wanted: dict[str, dict[str, Any]] = {}
        unit = state["members"]["unit"] or ""
        residents = {m["person_ref"]: unit for m in state["members"]["periods"]
                     if m["until"] is None}  # fmt: skip
        for aid, published in sorted(state["published"].items()):
            rule = self.rules_by_id.get(published["rule"])
            if rule is None or published["change"] in (WITHDRAWN, REMOVED):
                continue
            card = contact_card.derive(aid, published["entry"], rule, ref, state["facts"],
                                       residents)  # fmt: skip
            if card is not None:
                wanted[aid] = card
        sent = state.setdefault("cards", {})
        for aid in sorted(sent.keys() - wanted.keys()):
            del sent[aid]
            result.outputs.append(Output(CONTACT_CARDS, aid.encode(), None))
        for aid, card in wanted.items():
            card_digest = digest(card)
            if sent.get(aid) != card_digest:
                sent[aid] = card_digest
                value = self.catalog.encode(CONTACT_CARD, card)
                result.outputs.append(Output(CONTACT_CARDS, aid.encode(), value))

    @staticmethod
    def _rests_on_erased(state: HouseholdState, entry: lifecycle.AlertEntry) -> bool:
        facts = state["facts"]
        return any(
            f["event_id"] in facts and facts[f["event_id"]].get("erased") for f in entry["facts"]
        )

    def _remove_alert(self, state: HouseholdState, aid: str, published: Published,
                      result: Result[HouseholdState]) -> None:  # fmt: skip
        """A tombstone on the alerts topic, and only that it was removed in the state."""
        result.outputs.append(Output(ALERTS, aid.encode(), None))
        entry: lifecycle.AlertEntry = {**published["entry"], "facts": []}
        state["published"][aid] = {**published, "change": REMOVED, "digest": "", "entry": entry}
        rule = self.rules_by_id.get(published["rule"])
        if rule is not None:
            result.counts["alert_change", rule.id, rule.family, entry["team"] or "-", REMOVED] += 1

    def _send_alert(
        self,
        state: HouseholdState,
        ref: str,
        aid: str,
        kind: str,
        entry: lifecycle.AlertEntry,
        rule: rules.Rule,
        newest: StoredFact | None,
        result: Result[HouseholdState],
    ) -> None:
        published = state["published"].get(aid)
        if published is not None and published["change"] == REMOVED:
            if entry["state"] == "resolved":
                return  # removed at its term (or erased): it stays removed
            published = None  # the facts raise it anew: a new alert to everyone
        content = {k: v for k, v in entry.items() if k not in ("revision", "published_at")
                   and lifecycle.DDAS_DEFAULTS.get(k, ...) != v}  # fmt: skip
        d = digest([kind, content])
        if published is not None and published["digest"] == d:
            return
        now_ms = int(self.clock() * 1000)
        published_at = published["published_at"] if published else now_ms
        revision = entry["revision"]
        if published is not None and revision <= published["revision"]:
            revision = published["revision"] + 1
        if kind == WITHDRAWN:
            revision = published["revision"] + 1 if published else 1
        if published is None and entry["state"] != "resolved":
            kind = "raised"  # new to everyone downstream, whatever happened before in event time
        elif published is not None and kind == "raised":
            kind = "updated"  # raised once; a correction of its facts is an update
        entry = {**entry, "revision": revision, "published_at": published_at}
        correlation = newest["correlation_id"] if newest else ""
        record = rules.alert_record(aid, entry, rule, ref, self.municipality, correlation, kind)
        result.outputs.append(Output(ALERTS, aid.encode(), self.catalog.encode(ALERT, record)))
        state["published"][aid] = {"revision": revision, "digest": d, "published_at": published_at,
                                   "rule": rule.id, "change": kind, "entry": entry}  # fmt: skip
        if kind == lifecycle.EXPIRED and rule.family == rules.DUPLICATE_HELP:
            # past the verwijsindex term: the team saw it expire; now it leaves the topic
            self._remove_alert(state, aid, state["published"][aid], result)
        team = entry["team"] or "-"
        result.counts["alert_change", rule.id, rule.family, team, kind] += 1
        ended = (
            alert_outcomes.of(entry["state"], entry["resolution"]) if kind != WITHDRAWN else None
        )
        if ended is not None and (published is None or published["entry"]["state"] != "resolved"):
            result.counts["alert_outcome", rule.id, ended] += 1
            if ended == lifecycle.WRONG_LINK:
                self._to_review(state, aid, entry, result)
        if published is None:
            result.counts["alert_raised", rule.id, rule.family, team] += 1
            if self.router.route(rule.id, None).team == team and self._unrouted(rule, ref, state):
                result.counts["unrouted", rule.family] += 1
            if newest is not None:
                result.observations.append(
                    ("alert_latency", (rule.family,), max(0.0, self.clock() - newest["received"]))
                )
        acknowledged_at = entry.get("acknowledged_at")
        if kind == "acknowledged" and acknowledged_at and published_at:
            result.observations.append(
                (
                    "time_to_acknowledge",
                    (team,),
                    max(0.0, (acknowledged_at - published_at) / 1000),
                )
            )

    @staticmethod
    def _to_review(state: HouseholdState, aid: str, entry: lifecycle.AlertEntry,
                   result: Result[HouseholdState]) -> None:  # fmt: skip
        """A team found the alert rests on a wrong link: every fact behind it that was linked
        without a BSN goes to the review queue (``unmatched``, keyed by event id, reason
        ``wrong-link``, the alert named), so a reviewer, and the matcher's next training,
        learn from it. Sent once, when the outcome is first published."""
        for f in entry["facts"]:
            stored = state["facts"].get(f["event_id"])
            if stored is None or stored["withdrawn"] or "review" not in stored:
                continue
            headers = (("um_state", b"open"), ("um_reason", WRONG_LINK_REASON),
                       ("um_alert", aid.encode()))  # fmt: skip
            result.outputs.append(Output(UNMATCHED, f["event_id"].encode(),
                                         unpack(stored["review"]), headers))  # fmt: skip
            result.counts["link_outcome", "wrong-link"] += 1

    def _unrouted(self, rule: rules.Rule, ref: str, state: HouseholdState) -> bool:
        view = household.new_view(ref)
        address = state["address_ref"] or state["members"]["unit"]
        found = self.districts.lookup(address) if self.districts and address else None
        view["district"] = found.as_record() if found else None
        return self.router.route(rule.id, view["district"]).routed_by == "fallback"

    def _count_action(self, state: HouseholdState, action_id: str, outcome: Outcome,
                      result: Result[HouseholdState]) -> None:  # fmt: skip
        action = state["actions"][action_id]
        if action.get("counted"):
            return
        if isinstance(outcome, lifecycle.Refused):
            if outcome.code == "unknown-alert":
                return  # kept: the alert may yet be derived (facts still arriving)
            if outcome.code == "already-resolved" and action["action"] == lifecycle.EXPIRE:
                action["counted"] = True  # the story expired it already: the sweep agrees
                result.counts["alert_action", lifecycle.EXPIRE, "-", "duplicate"] += 1
                return
            action["counted"] = True
            result.counts["alert_action", action["action"], "-", "refused"] += 1
            message = Message(ALERT_ACTIONS, action["household_ref"].encode(),
                              self.catalog.encode(ALERT_ACTION, _action_record(action)),
                              f"alert-actions/{action_id}")  # fmt: skip
            result.outputs.append(dead_letter(self.name, message, outcome.code, outcome.reason))
        elif isinstance(outcome, lifecycle.Change):
            action["counted"] = True
            label = action["outcome"] if action["outcome"] in lifecycle.OUTCOMES else "-"
            result.counts["alert_action", action["action"], label, "applied"] += 1


def _millis(day: str) -> int:
    return int(
        dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC).timestamp() * 1000
    )


def _action_record(a: StoredAction) -> dict[str, Any]:
    """A stored action back in the AlertAction record's shape."""
    record: dict[str, Any] = {k: v for k, v in a.items() if k not in ("at_ms", "counted")}
    record["at"] = dt.datetime.fromtimestamp(a["at_ms"] / 1000, dt.UTC)
    return record
