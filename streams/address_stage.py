"""Address stage: who lived together in this building when, and which household each fact
belongs to.

Keyed and partitioned by building (postcode + huisnummer, or BAG id). The state
is the set of facts routed here, each under its id with the highest generation
seen: every resident's periods in the building (from the person stage), the
BRP relation changes, and every event about the building's residents or
address. Households as of a date are a function of those facts
(:func:`residence.households_at`): the main household of a unit, and a family
of its own where relations split one, with ids derived from the unit and the
earliest-registered member, never from arrival.

When the register facts change (a resident's periods, a relation), every
event in the building is linked again as of its own date, and the household
memberships are derived again; otherwise only the new events are linked. Only
differences are published: an event leaving household X (``withdrawn``) and
joining household Y, each with a higher generation; a signal that was
unmatched and now links closes its review entry (a tombstone on
``unmatched``); a household's membership periods (``members``).

Pure: no Kafka. See :mod:`wijkhub.streams.stage` for the contract.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any, NotRequired, TypedDict

from wijkhub.schemas.registry import LINKED_EVENT, RAW_EVENT, ROUTED, Catalog, DecodeError
from wijkhub.streams import residence
from wijkhub.streams.ids import Ids
from wijkhub.streams.linking import event_day
from wijkhub.streams.matching import Weights
from wijkhub.streams.person_stage import ERASURE_NOTICE
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
from wijkhub.streams.topics import BY_ADDRESS, LINKED, UNMATCHED

MEMBERS = "members"  # the event id of a household's membership fact


class Residence(TypedDict):
    address_ref: str
    from_: str
    until: str | None
    kind: str


class Resident(TypedDict):
    gen: int
    periods: list[Residence]
    match: dict[str, Any] | None  # normalised name and date of birth (signals without BSN)


class Relation(TypedDict):
    pair: list[str]
    relation: str
    started: bool


class Link(TypedDict):
    household: str | None  # None: unmatched
    by: str  # person | address | match | the unmatched reason
    probability: float | None
    person: str | None
    unit: str | None


class EventFact(TypedDict):
    gen: int
    withdrawn: bool
    unit: str
    day: str
    value: str  # packed raw event (with match attributes: they stop here)
    relation: Relation | None
    lgen: int  # generation of the link published for it
    link: Link | None  # what was published
    # Not kept for an event known only as withdrawn (and not in states older than them):
    erased: NotRequired[bool]  # withdrawn by an erasure: its withdrawal says so downstream
    received: NotRequired[float]  # which copy of a corrected event this is (stage.version)
    content: NotRequired[str]
    recheck: NotRequired[bool]  # a corrected copy: publish again even if the link stays


class MembersSent(TypedDict):
    gen: int
    digest: str


class AddressState(TypedDict):
    residents: dict[str, Resident]  # person → their periods in the building
    events: dict[str, EventFact]
    members: dict[str, MembersSent]
    # Erased persons: Ids.erased(person) → the erasure's generation (an older residency
    # record of theirs, redelivered, is refused). Keyed digests: no pseudonym stays here.
    erased: NotRequired[dict[str, int]]
    # The match features of erased persons, as keyed digests (Ids.erased of the normal form):
    # a signal naming them exactly is erased too, whenever it arrives.
    erased_features: NotRequired[list[str]]


def new_state() -> AddressState:
    return {"residents": {}, "events": {}, "members": {}}


# "from" is a keyword: TypedDict's functional form.
MemberPeriod = TypedDict("MemberPeriod", {"person_ref": str, "from": str, "until": str | None})
"""One person's membership of one household (ISO dates; ``until`` None: still a member)."""


def register(state: AddressState) -> residence.AddressState:
    """The building's residents and relations over time, in the shape :mod:`residence` reads."""
    residents: list[residence.Residency] = [
        {"person": person, "unit": p["address_ref"], "from": p["from_"], "until": p["until"],
         "kind": p["kind"], "match": residence.matching_person(r["match"], p["address_ref"])}
        for person, r in state["residents"].items()
        for p in r["periods"]
    ]  # fmt: skip
    residents.sort(key=lambda r: (r["from"], r["person"], r["unit"]))
    changes: dict[tuple[str, ...], list[tuple[str, int, str, Relation]]] = {}
    for eid, e in state["events"].items():
        rel = e["relation"]
        if rel is not None and not e["withdrawn"]:
            changes.setdefault(tuple(rel["pair"]), []).append(
                (e["day"], 0 if rel["started"] else 1, eid, rel)
            )
    relations: list[residence.RelationPeriod] = []
    for pair, facts in sorted(changes.items()):
        current: residence.RelationPeriod | None = None
        for day, _, _, rel in sorted(facts):
            if rel["started"] and current is None:
                current = {"pair": list(pair), "relation": rel["relation"], "from": day,
                           "until": None}  # fmt: skip
            elif not rel["started"] and current is not None:
                current["until"] = day
                relations.append(current)
                current = None
        if current is not None:
            relations.append(current)
    return {"residents": residents, "relations": relations}


def memberships(reg: residence.AddressState) -> dict[str, tuple[str, list[MemberPeriod]]]:
    """household → (unit, member periods), derived from the register at every change date."""
    result: dict[str, tuple[str, list[MemberPeriod]]] = {}
    for unit in sorted({r["unit"] for r in reg["residents"]}):
        # the unit's own register: what households_at reads of it (a building's units
        # each scanned the whole building at every change date)
        here = [r for r in reg["residents"] if r["unit"] == unit]  # in order of arrival
        people = {r["person"] for r in here}
        local: residence.AddressState = {
            "residents": here,
            "relations": [rel for rel in reg["relations"] if set(rel["pair"]) & people],
        }
        days = {r["from"] for r in here} | {r["until"] for r in here if r["until"]}
        days |= {d for rel in local["relations"] for d in (rel["from"], rel["until"]) if d}
        open_: dict[tuple[str, str], str] = {}  # (household, person) → from
        periods: dict[str, list[MemberPeriod]] = {}
        for day in sorted(days):
            now = {(h, p) for p, h in residence.households_at(local, unit, day).items()}
            for key in sorted(set(open_) - now):
                periods.setdefault(key[0], []).append(
                    {"person_ref": key[1], "from": open_.pop(key), "until": day}
                )
            for key in sorted(now - set(open_)):
                open_[key] = day
        for (household, person), since in sorted(open_.items()):
            periods.setdefault(household, []).append(
                {"person_ref": person, "from": since, "until": None}
            )
        for household, ps in periods.items():
            ps.sort(key=lambda m: (m["from"], m["person_ref"]))
            result[household] = (unit, ps)
    return result


class AddressStage:
    """by-address → linked (facts per household), unmatched (review)."""

    name = "address"
    inputs = (BY_ADDRESS,)

    def __init__(self, catalog: Catalog, weights: Weights, threshold: float, ids: Ids) -> None:
        self.catalog = catalog
        self.weights = weights
        self.threshold = threshold
        self.ids = ids  # the household_ref published is keyed; the state keeps the base
        # a building's events are read again at every relink: each decoded once
        self._raw = decoder(catalog, RAW_EVENT)
        self._stripped = functools.lru_cache(maxsize=4096)(self._strip)

    def new_state(self) -> AddressState:
        return new_state()

    def process(self, state: AddressState, messages: Sequence[Message]) -> Result[AddressState]:
        result: Result[AddressState] = Result(state)
        register_changed = False
        touched: set[str] = set()
        for message in messages:
            try:
                routed = self.catalog.decode(message.value, ROUTED)
                raw = self._raw(routed["raw_event"]) if routed["raw_event"] else None
            except DecodeError as exc:
                result.outputs.append(dead_letter(self.name, message, "undecodable", str(exc)))
                continue
            result.counts["link_outcome", routed["role"]] += 1
            if routed["role"] == "residency":
                register_changed |= self._residency(state, routed, raw)
            elif routed["role"] == "erasure" and routed["event_id"].startswith(ERASURE_NOTICE):
                register_changed |= self._erasure(state, routed, raw)
            elif routed["role"] in ("event", "erasure"):  # erasure: withdrawn, erased
                before = state["events"].get(routed["event_id"])
                was_relation = before is not None and before["relation"] is not None
                if self._event(state, routed, raw, routed["role"] == "erasure"):
                    touched.add(routed["event_id"])
                    now = state["events"][routed["event_id"]]["relation"] is not None
                    register_changed |= was_relation or now
            else:  # arrived / left: written by the version-1 person stage only
                result.outputs.append(dead_letter(self.name, message, "obsolete-role",
                                                  "routed record of an older version"))  # fmt: skip
        result.dirty = register_changed or bool(touched)
        if result.dirty:
            reg = register(state)
            relink = set(state["events"]) if register_changed else touched
            for eid in sorted(relink):
                self._relink(state, reg, eid, result)
            if register_changed:
                self._publish_members(state, reg, result)
        causes = [m.caused_at for m in messages if m.caused_at is not None]
        result.outputs = stamp(result.outputs, LINKED, max(causes, default=None))
        if result.dirty:  # the path's latency up to this hop
            result.caused_at += causes
        return result

    # -- facts ---------------------------------------------------------------------------

    def _residency(
        self, state: AddressState, routed: dict[str, Any], raw: dict[str, Any] | None
    ) -> bool:
        person = routed["person_ref"]
        known = state["residents"].get(person)
        if known is not None and known["gen"] >= routed["generation"]:
            return False
        erased = state.get("erased", {})
        marker = self.ids.erased(person)
        if erased.get(marker, -1) >= routed["generation"]:
            return False  # a redelivered residency of a person erased since
        if marker in erased and not routed["intervals"]:
            erased[marker] = routed["generation"]  # nothing here any more: no entry for them
            return state["residents"].pop(person, None) is not None
        match = raw["subject"]["match"] if raw else None
        state["residents"][person] = {
            "gen": routed["generation"],
            "periods": [
                {
                    "address_ref": i["address_ref"],
                    "from_": i["from"].isoformat(),
                    "until": i["until"].isoformat() if i["until"] else None,
                    "kind": i["kind"],
                }
                for i in routed["intervals"]
            ],
            "match": _json_match(match),
        }
        return True

    def _features_key(self, raw: dict[str, Any] | None) -> str | None:
        """A keyed digest of an event's match features in normal form (None: it has none)."""
        match = raw["subject"]["match"] if raw else None
        if not match:
            return None
        f = residence.match_features(_json_match(match) or {})
        return self.ids.erased("|".join(f.get(k, "") for k in ("family", "initials", "dob")))

    def _erasure(
        self, state: AddressState, routed: dict[str, Any], raw: dict[str, Any] | None
    ) -> bool:
        """The person is erased: their residence here, their match features, and every
        event linked to them (their own, signals matched to them by name, relations
        that name them) go. What
        stays is a keyed digest with the erasure's generation, and each event's
        generation (so that an older copy cannot come back)."""
        person, gen = routed["person_ref"], routed["generation"]
        marker = self.ids.erased(person)
        erased = state.setdefault("erased", {})
        features = self._features_key(raw)
        known = state.setdefault("erased_features", [])
        if erased.get(marker, -1) >= gen and (features is None or features in known):
            return False  # the same notice again
        erased[marker] = max(gen, erased.get(marker, gen))
        if features is not None and features not in known:
            state["erased_features"] = sorted([*known, features])
        state["residents"].pop(person, None)
        for fact in state["events"].values():
            if not fact["withdrawn"] and self._erases(state, fact, person):
                fact.update({"withdrawn": True, "erased": True, "value": "", "day": "",
                             "relation": None})  # fmt: skip
        return True

    def _erases(self, state: AddressState, fact: EventFact, person: str) -> bool:
        """Whether an erasure of ``person`` takes this fact: linked to them, their own, a
        relation naming them, or a signal naming them by their exact match features."""
        owner = fact["link"]["person"] if fact["link"] else None
        related = fact["relation"] is not None and person in fact["relation"]["pair"]
        if owner == person or related:
            return True
        raw = self._raw(unpack(fact["value"]))
        if raw["subject"]["person_ref"] == person:
            return True
        return self._features_key(raw) in state.get("erased_features", [])

    def _event(
        self,
        state: AddressState,
        routed: dict[str, Any],
        raw: dict[str, Any] | None,
        erased: bool = False,
    ) -> bool:
        eid = routed["event_id"]
        known = state["events"].get(eid)
        if known is not None and known["gen"] > routed["generation"]:
            return False  # an older routing than the one we hold
        if known is not None and known["gen"] == routed["generation"]:
            if routed["withdrawn"] or raw is None or known["withdrawn"]:
                return False  # a replay
            if not supersedes(known, *version(raw)):
                return False  # a replay, or an older copy of a corrected event
        if routed["withdrawn"] or raw is None:
            if known is None:
                # kept: an older routing of the same event arriving later must not count
                state["events"][eid] = {"gen": routed["generation"], "withdrawn": True,
                                        "unit": routed["address_ref"], "day": "", "value": "",
                                        "relation": None, "lgen": 0, "link": None,
                                        "erased": erased}  # fmt: skip
                return True
            # what it said is no longer needed here (minimisation): only its generation
            known.update({"gen": routed["generation"], "withdrawn": True, "value": "",
                          "day": "", "relation": None})  # fmt: skip
            known["erased"] = erased or known.get("erased", False)
            return True
        if self._features_key(raw) in state.get("erased_features", []) or self._names_erased(
            state, raw
        ):  # a signal or relation naming an erased person: it stays erased
            state["events"][eid] = {"gen": routed["generation"], "withdrawn": True,
                                    "unit": routed["address_ref"], "day": "", "value": "",
                                    "relation": None, "lgen": known["lgen"] if known else 0,
                                    "link": known["link"] if known else None,
                                    "erased": True}  # fmt: skip
            return True
        payload_name, payload = raw["payload"]
        relation: Relation | None = None
        if payload_name == residence.RELATION_CHANGED:
            person = raw["subject"]["person_ref"]
            relation = {"pair": sorted((person, payload["related_person_ref"])),
                        "relation": payload["relation"],
                        "started": payload["change"] == "started"}  # fmt: skip
        received, content = version(raw)
        state["events"][eid] = {
            "gen": routed["generation"], "withdrawn": False, "unit": routed["address_ref"],
            "day": event_day(raw), "value": pack(routed["raw_event"]), "relation": relation,
            "lgen": known["lgen"] if known else 0, "link": known["link"] if known else None,
            "received": received, "content": content,
            # another copy (a correction): published again even where its link stays
            "recheck": known is not None and known.get("content") not in (None, content),
        }  # fmt: skip
        return True

    def _names_erased(self, state: AddressState, raw: dict[str, Any]) -> bool:
        """A relation row naming a person erased here (as subject or as related person)."""
        if raw["payload"][0] != residence.RELATION_CHANGED or not state.get("erased"):
            return False
        pair = (raw["subject"]["person_ref"], raw["payload"][1]["related_person_ref"])
        return any(self.ids.erased(p) in state["erased"] for p in pair if p)

    # -- decisions -----------------------------------------------------------------------

    def _decide(self, reg: residence.AddressState, fact: EventFact) -> Link | None:
        if fact["withdrawn"]:
            return None
        if fact["relation"] is not None:
            return None  # a register fact: it shapes households, it is not one's fact
        raw = self._raw(unpack(fact["value"]))
        decided = residence.decide_link(reg, fact["unit"], raw, self.weights, self.threshold)
        if isinstance(decided, residence.Unmatched):
            return {"household": None, "by": decided.reason, "probability": decided.probability,
                    "person": None, "unit": None}  # fmt: skip
        person = decided.person_ref or raw["subject"]["person_ref"]
        return {"household": decided.household_ref, "by": decided.linked_by,
                "probability": decided.probability, "person": person,
                "unit": decided.unit}  # fmt: skip

    def _relink(self, state: AddressState, reg: residence.AddressState, eid: str,
                result: Result[AddressState]) -> None:  # fmt: skip
        fact = state["events"][eid]
        link = self._decide(reg, fact)
        old = fact["link"]
        if link == old and not fact.get("recheck"):
            return
        fact["recheck"] = False
        fact["lgen"] += 1
        if (
            old is not None
            and old["household"]
            and (link is None or link["household"] != old["household"])
        ):
            by = "erasure" if fact.get("erased") else "person"
            result.outputs.append(self._linked(old["household"], eid, fact, None, True, by))
        if old is not None and old["household"] is None and (link is None or link["household"]):
            result.outputs.append(Output(UNMATCHED, eid.encode(), None,
                                         (("um_state", b"closed"),)))  # fmt: skip
        if link is not None and link["household"]:
            result.outputs.append(self._linked(link["household"], eid, fact, link, False))
            result.counts["link_outcome", link["by"]] += 1
        elif link is not None:
            headers: list[tuple[str, bytes]] = [("um_state", b"open"),
                                                ("um_reason", link["by"].encode())]  # fmt: skip
            if link["probability"] is not None:
                headers.append(("um_probability", f"{link['probability']:.4f}".encode()))
            result.outputs.append(Output(UNMATCHED, eid.encode(), self._without_match(fact),
                                         tuple(headers)))  # fmt: skip
            result.counts["link_outcome", "unmatched"] += 1
        fact["link"] = link

    def _without_match(self, fact: EventFact, contact: bool = False) -> bytes:
        """The event without the name and date of birth it carried for matching: they serve
        linking and stop here (not on linked, not on the review queue; issue 16). How to
        reach the person (``subject.contact``) goes on only with ``contact``: to the
        household stage, for the responsible team's contact card (issue 17); never to
        the review queue."""
        return self._stripped(fact["value"], contact)

    def _strip(self, packed: str, contact: bool) -> bytes:
        value = unpack(packed)
        raw = self._raw(value)
        if raw["subject"]["match"] is None and (contact or raw["subject"]["contact"] is None):
            return value  # nothing to strip: the bytes as they came (and as decoded before)
        subject = {**raw["subject"], "match": None}
        if not contact:
            subject["contact"] = None
        return self.catalog.encode(RAW_EVENT, {**raw, "subject": subject})

    def _linked(self, household: str, eid: str, fact: EventFact, link: Link | None,
                withdrawn: bool, withdrawn_by: str = "person") -> Output:  # fmt: skip
        value = self._without_match(fact, contact=True) if link is not None else b""
        by = link["by"] if link is not None else withdrawn_by
        household = self.ids.household(household)
        record: dict[str, Any] = {"household_ref": household, "linked_by": by, "raw_event": value,
                  "member_change": None,
                  "match_probability": link["probability"] if link else None,
                  "event_id": eid, "generation": fact["lgen"], "withdrawn": withdrawn,
                  "person_ref": link["person"] if link else None,
                  "address_ref": link["unit"] if link else None, "members": []}  # fmt: skip
        return Output(LINKED, household.encode(), self.catalog.encode(LINKED_EVENT, record))

    def _publish_members(self, state: AddressState, reg: residence.AddressState,
                         result: Result[AddressState]) -> None:  # fmt: skip
        now = memberships(reg)
        sent = state["members"]
        for household in sorted(now.keys() | sent.keys()):
            unit, periods = now.get(household, (None, []))
            d = digest([unit, periods])
            known = sent.get(household)
            if known is not None and known["digest"] == d:
                continue
            gen = (known["gen"] if known else 0) + 1
            sent[household] = {"gen": gen, "digest": d}
            members = [{"person_ref": m["person_ref"], "from": dt.date.fromisoformat(m["from"]),
                        "until": dt.date.fromisoformat(m["until"]) if m["until"] else None}
                       for m in periods]  # fmt: skip
            ref = self.ids.household(household)
            record = {"household_ref": ref, "linked_by": "register", "raw_event": b"",
                      "member_change": None, "match_probability": None, "event_id": MEMBERS,
                      "generation": gen, "withdrawn": not periods, "person_ref": None,
                      "address_ref": unit, "members": members}  # fmt: skip
            result.outputs.append(
                Output(LINKED, ref.encode(), self.catalog.encode(LINKED_EVENT, record))
            )


def _json_match(match: dict[str, Any] | None) -> dict[str, Any] | None:
    """A resident's match features as the state keeps them: normalised (issue 16)."""
    if not match:
        return None
    birth = match.get("birth_date")
    dob = birth.isoformat() if isinstance(birth, dt.date) else birth
    return dict(residence.match_features({**match, "birth_date": dob}))
