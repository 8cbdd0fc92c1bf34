"""Person stage: where did this person live when each of their events happened?

Keyed and partitioned like ``raw.<domain>`` (by person_ref; events about an
address only are routed without state). The state is the *set of facts*
about one person, each under its source event id:

- BRP registrations and endings (death, departure): the residence periods are
  derived from them, so a late registration, a late move or a correction
  re-derives every period, whatever order they came in;
- iJw/iWmo 301 snapshots per provider: the ``ToewijzingChanged`` events are
  derived by diffing consecutive snapshots *in date order* (a late older
  snapshot is inserted where it belongs, not ignored);
- every other event about the person, with where it was sent.

After each batch every event is routed again as of its own date (the unit the
person lived in, a hand-over after leaving the municipality, or parked while
no registration is known) and only *differences* are sent: a re-routed event
is withdrawn from the building it leaves and sent to the one it joins, each
with a higher generation so the address stage keeps the latest whatever the
delivery order. Each building the person lived in gets the person's periods
there (``residency``), so the address stage knows who lived together when.

Pure: no Kafka. See :mod:`wijkhub.streams.stage` for the contract.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

from wijkhub.schemas.registry import ERASURE, RAW_EVENT, ROUTED, Catalog, DecodeError
from wijkhub.streams import toewijzing
from wijkhub.streams.linking import PERSON_DECEASED, PERSON_DEPARTED, PERSON_REGISTERED, event_day
from wijkhub.streams.residence import RELATION_CHANGED, building
from wijkhub.streams.stage import (
    Message,
    Output,
    Result,
    dead_letter,
    decoder,
    digest,
    pack,
    stamp,
    supersedes,
    unpack,
    version,
)
from wijkhub.streams.topics import BY_ADDRESS, ERASURES, HAND_OVER, PERSON_INPUTS, UNMATCHED

ERASURE_NOTICE = "erasure:"  # the event id of a building's notice that a person is erased


class Copy(TypedDict):
    """Which copy of an event a fact is (see :func:`stage.version`)."""

    received: float
    content: str


class Registration(Copy):
    address: str
    day: str
    kind: str  # woonadres | briefadres | instelling
    value: str  # the packed raw event (it carries the match attributes)


class Ending(Copy):
    day: str
    why: str  # deceased | departed


class Snapshot(Copy):
    provider: str
    on: str
    value: str


class RoutedEvent(TypedDict):
    value: str  # packed raw event (derived events: as derived)
    day: str
    received: float  # received_at (epoch seconds): which copy of a corrected id wins
    content: str  # digest of the event without its arrival time: a replay is no change
    derived: bool  # a ToewijzingChanged derived from the snapshots
    live: bool  # derived events the snapshots no longer yield are withdrawn, not forgotten
    gen: int
    sent: str  # where it went: "B:<unit>" ("|" between several) | "H:<departed_on>" | "P"
    relation: bool  # a BRP relation change: it goes to every building the person lived in


class PersonState(TypedDict):
    registrations: dict[str, Registration]
    endings: dict[str, Ending]
    snapshots: dict[str, Snapshot]
    events: dict[str, RoutedEvent]
    residency_gen: int
    residency_sent: dict[str, str]  # building → digest of the periods sent there
    # An erasure (AVG art. 17): facts received up to this moment (epoch s) are refused.
    erased_before: NotRequired[float]
    erasures: NotRequired[list[str]]  # the requests applied (their ids), each once
    gen_floor: NotRequired[int]  # the generations an erased event had reached


class Period(TypedDict):
    address_ref: str
    from_: str
    until: str | None
    kind: str
    ended_by: str | None  # moved | deceased | departed | None (still living there)


def new_state() -> PersonState:
    return {"registrations": {}, "endings": {}, "snapshots": {}, "events": {},
            "residency_gen": 0, "residency_sent": {}}  # fmt: skip


def periods(state: PersonState) -> list[Period]:
    """Residence periods from the registrations and endings, in date order."""
    points: list[tuple[str, int, str]] = [(e["day"], 0, eid) for eid, e in state["endings"].items()]
    points += [(r["day"], 1, eid) for eid, r in state["registrations"].items()]
    result: list[Period] = []
    current: Period | None = None
    for day, rank, eid in sorted(points):
        if rank == 0:
            if current is not None:
                current.update({"until": day, "ended_by": state["endings"][eid]["why"]})
                result.append(current)
            current = None
            continue
        reg = state["registrations"][eid]
        if current is not None and (current["address_ref"], current["kind"]) == (
            reg["address"], reg["kind"]):  # fmt: skip
            continue  # re-registration at the same address: one period
        if current is not None:
            current.update({"until": day, "ended_by": "moved"})
            result.append(current)
        current = {"address_ref": reg["address"], "from_": day, "until": None,
                   "kind": reg["kind"], "ended_by": None}  # fmt: skip
    if current is not None:
        result.append(current)
    return [p for p in result if p["until"] is None or p["from_"] < p["until"]]


def destination(day: str, lived: list[Period]) -> str:
    """Where an event dated ``day`` goes, given the person's periods."""
    if not lived:
        return "P"
    if day < lived[0]["from_"]:
        return "B:" + lived[0]["address_ref"]  # the register gives the current address
    last: Period | None = None
    for p in lived:
        if p["from_"] <= day:
            last = p
    assert last is not None
    if last["until"] is None or day < last["until"] or last["ended_by"] != "departed":
        return "B:" + last["address_ref"]  # after a death: still that household's matter
    return "H:" + last["until"]


# The domain (raw topic) each payload namespace may arrive on: the iStandaarden messages are
# one namespace for care (iWmo) and youth (iJw).
PAYLOAD_TOPICS = {"care": ("care", "youth")}


def belongs_on(raw: dict[str, Any], topic: str) -> bool:
    """Whether the event may come on ``topic`` (``raw.<domain>``): its envelope's domain is
    the topic's, and its kind is one of that domain's. A record is not trusted for the topic
    it came on: a principal may write only its own raw topic (the ACLs), and this keeps it
    to its own kinds there too (an income intake cannot post a consent or a registration)."""
    domain = topic.removeprefix("raw.")
    namespace = raw["payload"][0].split(".")[2]
    return raw["envelope"]["domain"] == domain and domain in PAYLOAD_TOPICS.get(
        namespace, (namespace,)
    )


class PersonStage:
    """raw.<domain> → by-address (and hand-over, unmatched)."""

    name = "person"
    inputs = PERSON_INPUTS

    def __init__(self, catalog: Catalog, grace_days: int = 365) -> None:
        self.catalog = catalog
        self.grace = dt.timedelta(days=grace_days)  # match features after a person left
        self._raw = decoder(catalog, RAW_EVENT)  # stored facts are read again and again

    def new_state(self) -> PersonState:
        return new_state()

    def process(self, state: PersonState, messages: Sequence[Message]) -> Result[PersonState]:
        result: Result[PersonState] = Result(state)
        erased: list[str] = []
        notices: list[tuple[str, str]] = []  # (building, packed registration): match features
        applied: list[float] = []  # receipts of the records applied: they caused the sends
        for message in messages:
            if message.topic == ERASURES:
                erased += self._erasure(state, message, result, notices)
                continue
            try:
                raw = self._raw(message.value or b"")  # shared: read, never changed
            except DecodeError as exc:
                result.outputs.append(dead_letter(self.name, message, "undecodable", str(exc)))
                continue
            if not belongs_on(raw, message.topic):
                result.outputs.append(dead_letter(self.name, message, "kind-not-allowed-on-topic",
                                                  "the event's kind or domain does not belong "
                                                  "on this topic"))  # fmt: skip
                continue
            received = raw["envelope"]["received_at"].timestamp()  # version(raw)[0]
            if raw["subject"]["person_ref"] is None:
                self._address_only(raw, message, result)
                applied.append(received)
                continue
            if received <= state.get("erased_before", -1.0):
                result.counts["link_outcome", "erased"] += 1  # a copy of an erased fact
                if raw["payload"][0] == PERSON_REGISTERED and raw["subject"]["address_ref"]:
                    # its building may hold signals naming them: tell it, whenever it comes
                    notices.append((building(raw["subject"]["address_ref"]),
                                    pack(message.value or b"")))  # fmt: skip
                    erased.append(message.key.decode())
                    result.dirty = True
                continue
            if self._add_fact(state, raw, message.value or b"", result):  # new to the state
                result.dirty = True
                applied.append(received)
        if result.dirty:
            self._reroute(state, result, erased[0] if erased else None, notices)
        result.outputs = stamp(result.outputs, BY_ADDRESS, max(applied, default=None))
        result.caused_at += applied  # this hop's latency (wijkhub_processing_latency_seconds)
        return result

    # -- erasure (AVG art. 17) -------------------------------------------------------------

    def _erasure(
        self,
        state: PersonState,
        message: Message,
        result: Result[PersonState],
        notices: list[tuple[str, str]],
    ) -> list[str]:
        """Forget every fact received up to the request's moment. The reroute that follows
        withdraws what was sent (from every building, from hand-over) and tells every
        building the person lived in or sent events to, so the later stages forget too."""
        try:
            request = self.catalog.decode(message.value, ERASURE)
        except DecodeError as exc:
            result.outputs.append(dead_letter(self.name, message, "undecodable", str(exc)))
            return []
        person = request["person_ref"]
        if person != message.key.decode() or request["erasure_id"] in state.get("erasures", []):
            if person != message.key.decode():
                result.outputs.append(dead_letter(self.name, message, "erasure-wrong-key",
                                                  "the request names another person than its "
                                                  "key"))  # fmt: skip
            return []
        before = request["erased_before"].timestamp()
        state["erased_before"] = max(state.get("erased_before", before), before)
        state["erasures"] = [*state.get("erasures", []), request["erasure_id"]]
        notices += [(building(r["address"]), r["value"]) for r in state["registrations"].values()
                    if r["received"] <= before]  # fmt: skip
        state["registrations"] = {
            e: f for e, f in state["registrations"].items() if f["received"] > before
        }
        state["endings"] = {e: f for e, f in state["endings"].items() if f["received"] > before}
        state["snapshots"] = {e: f for e, f in state["snapshots"].items() if f["received"] > before}
        for event in state["events"].values():
            if event["received"] <= before or event["derived"]:
                event["live"] = False  # withdrawn by the reroute, then forgotten
        result.counts["link_outcome", "erasure"] += 1
        result.dirty = True
        return [person]

    def _forget_withdrawn(self, state: PersonState) -> None:
        """After an erasure's reroute: the withdrawn events go (only their generation stays,
        so a later event with a reused id is sent above what the buildings hold)."""
        gone = [eid for eid, e in state["events"].items() if not e["live"] and not e["sent"]]
        floor = max([state["events"][e]["gen"] for e in gone], default=0)
        state["gen_floor"] = max(state.get("gen_floor", 0), floor)
        for eid in gone:
            del state["events"][eid]

    def _erased_everywhere(
        self,
        state: PersonState,
        person: str,
        buildings: set[str],
        notices: list[tuple[str, str]],
        result: Result[PersonState],
    ) -> None:
        """An erasure notice to every building the person's facts reached or where they were
        registered: the address stage drops the person, the signals it had matched to them
        and, by the registration's match features each notice carries, the signals naming
        them that it could not link (whenever those or the registration arrive)."""
        state["residency_gen"] += 1
        result.purge = True  # the notices carry the registration: written, sent, then gone
        carried = {b: v for b, v in sorted(notices)}
        for b in sorted(buildings | carried.keys()):
            raw = unpack(carried[b]) if b in carried else b""
            record: dict[str, Any] = {"address_ref": b, "role": "erasure", "until": None,
                                      "raw_event": raw,
                      "event_id": ERASURE_NOTICE + b, "generation": state["residency_gen"],
                      "withdrawn": True, "person_ref": person, "intervals": []}  # fmt: skip
            result.outputs.append(
                Output(BY_ADDRESS, b.encode(), self.catalog.encode(ROUTED, record))
            )

    # -- facts ---------------------------------------------------------------------------

    def _add_fact(
        self, state: PersonState, raw: dict[str, Any], value: bytes, result: Result[PersonState]
    ) -> bool:
        """Keep the fact under its event id; False if it changes nothing (a replay)."""
        subject = raw["subject"]
        name = raw["payload"][0]
        eid, day = raw["envelope"]["event_id"], event_day(raw)
        received, content = version(raw)
        seen: Copy = {"received": received, "content": content}
        if name == PERSON_REGISTERED and subject["address_ref"]:
            result.counts["link_outcome", "register"] += 1
            if not supersedes(state["registrations"].get(eid), received, content):
                return False
            kind = raw["payload"][1].get("address_kind") or "woonadres"
            state["registrations"][eid] = {"address": subject["address_ref"], "day": day,
                                           "kind": kind, "value": pack(value), **seen}  # fmt: skip
            return True
        if name in (PERSON_DECEASED, PERSON_DEPARTED):
            result.counts["link_outcome", "register"] += 1
            if not supersedes(state["endings"].get(eid), received, content):
                return False
            why = "deceased" if name == PERSON_DECEASED else "departed"
            state["endings"][eid] = {"day": day, "why": why, **seen}
            return True
        if toewijzing.is_snapshot(raw):
            result.counts["link_outcome", "diffed"] += 1
            if not supersedes(state["snapshots"].get(eid), received, content):
                return False
            provider = raw["payload"][1]["provider"]
            on = raw["payload"][1]["snapshot_on"].isoformat()
            state["snapshots"][eid] = {"provider": provider, "on": on, "value": pack(value),
                                       **seen}  # fmt: skip
            return True
        result.counts["link_outcome", "person-event"] += 1
        return self._add_event(state, raw, value, False)

    @staticmethod
    def _add_event(state: PersonState, raw: dict[str, Any], value: bytes, derived: bool) -> bool:
        eid = raw["envelope"]["event_id"]
        received, content = version(raw)
        known = state["events"].get(eid)
        if known is not None and known["live"] and not supersedes(known, received, content):
            return False  # the same event again, or an older copy of a corrected one
        state["events"][eid] = {"value": pack(value), "day": event_day(raw),
                                "received": received, "content": content,
                                "derived": derived, "live": True,
                                "relation": raw["payload"][0] == RELATION_CHANGED,
                                "gen": known["gen"] if known else state.get("gen_floor", 0),
                                "sent": ""}  # fmt: skip  # a new copy is sent again
        if known is not None and known["sent"]:
            state["events"][eid]["sent"] = "~" + known["sent"]  # withdraw from there if moved
        return True

    def _derive_toewijzingen(self, state: PersonState, result: Result[PersonState]) -> None:
        """ToewijzingChanged events from the snapshots, diffed per provider in date order."""
        by_provider: dict[str, list[tuple[str, str]]] = {}
        for eid, snap in state["snapshots"].items():
            by_provider.setdefault(snap["provider"], []).append((snap["on"], eid))
        derived: dict[str, dict[str, Any]] = {}
        for provider in sorted(by_provider):
            previous = None
            for _, eid in sorted(by_provider[provider]):
                snapshot = self.catalog.decode(unpack(state["snapshots"][eid]["value"]), RAW_EVENT)
                diff = toewijzing.diff(previous, snapshot)
                previous = diff.state
                for event in diff.events:
                    derived[event["envelope"]["event_id"]] = event
        for eid, event in derived.items():
            if eid not in state["events"] or not state["events"][eid]["live"]:
                result.counts["link_outcome", "derived"] += 1
                self._add_event(state, event, self.catalog.encode(RAW_EVENT, event), True)
        for eid, known in state["events"].items():
            if known["derived"] and eid not in derived:
                known["live"] = False

    # -- decisions -----------------------------------------------------------------------

    def _reroute(
        self,
        state: PersonState,
        result: Result[PersonState],
        erased: str | None = None,
        notices: list[tuple[str, str]] | None = None,
    ) -> None:
        reached = set(state["residency_sent"]) | {
            building(t.lstrip("~")[2:]) for e in state["events"].values()
            for t in e["sent"].split("|") if t.lstrip("~").startswith("B:")
        }  # fmt: skip
        if erased is not None:  # first: a building forgets before the withdrawals relink it
            self._erased_everywhere(state, erased, reached, notices or [], result)
        self._derive_toewijzingen(state, result)
        lived = periods(state)
        self._send_residency(state, lived, result, erased)
        for eid, event in sorted(state["events"].items()):
            target = self._target(event, lived)
            if target == event["sent"]:
                continue
            event["gen"] += 1
            self._send(eid, event, target, result, erased is not None)
            if event["sent"] == "P" and target.startswith("B:"):
                result.counts["link_outcome", "unparked"] += 1
            result.counts["link_outcome", {"B": "routed", "H": "handed-over", "P": "parked"}.get(
                target[:1], "withdrawn")] += 1  # fmt: skip
            event["sent"] = target
        if erased is not None:
            self._forget_withdrawn(state)

    @staticmethod
    def _target(event: RoutedEvent, lived: list[Period]) -> str:
        """Where the event goes now ("|" between several buildings)."""
        if not event["live"]:
            return ""
        if not event.get("relation"):
            return destination(event["day"], lived)
        # A relation shapes households wherever both people live, also where they move
        # after it began: every building the person lived in gets it.
        first_unit: dict[str, str] = {}
        for p in lived:
            first_unit.setdefault(building(p["address_ref"]), p["address_ref"])
        return "|".join(f"B:{u}" for _, u in sorted(first_unit.items())) or "P"

    def _send(self, eid: str, event: RoutedEvent, target: str, result: Result[PersonState],
              erasing: bool = False) -> None:  # fmt: skip
        value = unpack(event["value"])
        raw = self._raw(value)
        person = raw["subject"]["person_ref"]
        old = [t.lstrip("~") for t in event["sent"].split("|") if t]  # ~: a corrected copy
        new = [t for t in target.split("|") if t]
        kept = {building(t[2:]) for t in new if t.startswith("B:")}
        for t in old:
            if t.startswith("B:") and building(t[2:]) not in kept:
                role = "erasure" if erasing else "event"  # withdrawn because erased
                result.outputs.append(
                    self._routed(t[2:], eid, event["gen"], b"", person, True, role)
                )
            if t.startswith("H:") and not any(n.startswith("H:") for n in new):
                result.outputs.append(Output(HAND_OVER, eid.encode(), None,
                                             (("ho_state", b"withdrawn"),)))  # fmt: skip
        for t in new:
            if t.startswith("B:"):
                result.outputs.append(self._routed(t[2:], eid, event["gen"], value, person))
            elif t.startswith("H:"):
                # names stop here: never to another municipality, nor how to reach them
                stripped = {**raw, "subject": {**raw["subject"], "match": None, "contact": None}}
                headers = (("ho_state", b"handed-over"), ("ho_reason", b"left the municipality"),
                           ("ho_departed_on", t[2:].encode()))  # fmt: skip
                result.outputs.append(
                    Output(
                        HAND_OVER, eid.encode(), self.catalog.encode(RAW_EVENT, stripped), headers
                    )
                )

    def _routed(self, unit: str, eid: str, gen: int, value: bytes, person: str | None,
                withdrawn: bool = False, role: str = "event") -> Output:  # fmt: skip
        record: dict[str, Any] = {"address_ref": unit, "role": role, "until": None,
                                  "raw_event": value, "event_id": eid, "generation": gen,
                                  "withdrawn": withdrawn, "person_ref": person,
                                  "intervals": []}  # fmt: skip
        return Output(BY_ADDRESS, building(unit).encode(), self.catalog.encode(ROUTED, record))

    def _send_residency(
        self,
        state: PersonState,
        lived: list[Period],
        result: Result[PersonState],
        person: str | None = None,
    ) -> None:
        """Each building gets the person's periods there; one that no longer has any, none."""
        per_building: dict[str, list[Period]] = {}
        for p in lived:
            per_building.setdefault(building(p["address_ref"]), []).append(p)
        regs = sorted(state["registrations"].values(), key=lambda r: (r["day"], r["value"]))
        matchable = [r["value"] for r in regs if self._has_match(r["value"])]
        carrier = matchable[-1] if matchable else (regs[-1]["value"] if regs else "")
        cutoff = self._cutoff(state)
        carriers = {  # minimisation: no match features where the person left long ago
            b: carrier if any(p["until"] is None or p["until"] >= cutoff for p in ps)
            else self._without_match(carrier)
            for b, ps in per_building.items()
        }  # fmt: skip
        wanted = {b: digest([ps, carriers[b]]) for b, ps in per_building.items()}
        sent = state["residency_sent"]
        changed = {b for b in wanted.keys() | sent.keys() if wanted.get(b) != sent.get(b)}
        if not changed:
            return
        state["residency_gen"] += 1
        person = person or self._person_of(state)
        for b in sorted(changed):
            intervals = [{"address_ref": p["address_ref"],
                          "from": dt.date.fromisoformat(p["from_"]),
                          "until": dt.date.fromisoformat(p["until"]) if p["until"] else None,
                          "kind": p["kind"]} for p in per_building.get(b, [])]  # fmt: skip
            sent_carrier = carriers.get(b, "")
            record = {"address_ref": b, "role": "residency", "until": None,
                      "raw_event": unpack(sent_carrier) if sent_carrier else b"",
                      "event_id": f"residency:{person}", "generation": state["residency_gen"],
                      "withdrawn": not intervals, "person_ref": person,
                      "intervals": intervals}  # fmt: skip
            result.outputs.append(
                Output(BY_ADDRESS, b.encode(), self.catalog.encode(ROUTED, record))
            )
        state["residency_sent"] = wanted

    def _cutoff(self, state: PersonState) -> str:
        """``grace`` before the newest date among the person's own facts (event time): a
        building they left before it gets no match features any more (issue 16). A
        function of the person's facts, so of the set of records, not of their order."""
        days = [r["day"] for r in state["registrations"].values()]
        days += [e["day"] for e in state["endings"].values()]
        days += [e["day"] for e in state["events"].values() if not e["derived"]]
        if not days:
            return ""
        return (dt.date.fromisoformat(max(days)) - self.grace).isoformat()

    def _without_match(self, packed: str) -> str:
        if not packed:
            return packed
        raw = self._raw(unpack(packed))
        if raw["subject"]["match"] is None:
            return packed
        stripped = {**raw, "subject": {**raw["subject"], "match": None}}
        return pack(self.catalog.encode(RAW_EVENT, stripped))

    def _has_match(self, packed: str) -> bool:
        return self._raw(unpack(packed))["subject"]["match"] is not None

    def _person_of(self, state: PersonState) -> str:
        for reg in state["registrations"].values():
            raw = self._raw(unpack(reg["value"]))
            person: str = raw["subject"]["person_ref"]  # a registration names its person
            return person
        raise AssertionError("residency without a registration")

    def _address_only(
        self, raw: dict[str, Any], message: Message, result: Result[PersonState]
    ) -> None:
        """An event about an address (a creditor's signal without BSN): to that building."""
        address, eid = raw["subject"]["address_ref"], raw["envelope"]["event_id"]
        if address is None:
            headers = (("um_state", b"open"),
                       ("um_reason", b"no BSN and no address: nothing to link on"))  # fmt: skip
            result.outputs.append(Output(UNMATCHED, eid.encode(), message.value, headers))
            result.counts["link_outcome", "unlinkable"] += 1
            return
        result.outputs.append(self._routed(address, eid, 0, message.value or b"", None))
        result.counts["link_outcome", "address-event"] += 1
