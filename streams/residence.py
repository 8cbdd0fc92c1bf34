"""Address stage of linking: who lived together at this address on a given day.

State per *building* (postcode + huisnummer; the table is keyed and
partitioned by it, so the person stage repartitions to it): every residence
interval of every unit (huisletter, toevoeging) and every relation between
residents, with dates. Keeping the units of a building together is what lets
a creditor's signal without the toevoeging still find the right resident.
From that, :func:`households_at` answers "which households lived here on day D":

- residents with a woonadres at the address, living there on D, form the
  address's main household (``household_for_address``);
- people linked by a relation (partner, parent/child) form a household of
  their own when their group does not include the main household's first
  resident: two families at one address stay two households;
- a briefadres (postal address) or an institution address never makes a
  family by address alone: such a resident is a household on their own,
  and an address-level signal never links to them.

Signals without a BSN are decided here (:func:`link_signal`): matched to a
resident by name and date of birth (:mod:`matching`), or, without those
attributes, to the one household living at the address that day. Anything
less certain is not linked: it goes to review with the reason.

Pure functions over JSON-ready dicts; no Kafka here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from wijkhub.streams.linking import event_day, household_for_address
from wijkhub.streams.matching import Person, Weights, decide, normalise

RELATION_CHANGED = "nl.wijkhub.population.RelationChanged"

AddressState = dict[str, Any]  # {"residents": [...], "relations": [...]}
LOW_CONFIDENCE_KINDS = ("briefadres", "instelling")


def new_address() -> AddressState:
    return {"residents": [], "relations": []}


def building(address_ref: str) -> str:
    """The partition key of the address stage: ``1011AB-12-A-2`` → ``1011AB-12``."""
    if address_ref.startswith("BAG-"):
        return address_ref
    return "-".join(address_ref.split("-")[:2])


def _open_on(entry: dict[str, Any], day: str) -> bool:
    return entry["from"] <= day and (entry["until"] is None or day < entry["until"])


def arrive(
    state: AddressState,
    person: str,
    unit: str,
    day: str,
    until: str | None,
    kind: str,
    match: Person | None,
) -> bool:
    """Record a registration at ``unit`` (an address_ref in this building) from ``day``."""
    for r in state["residents"]:
        if r["person"] == person and r["from"] == day and r["unit"] == unit:
            before = dict(r)
            r.update(until=until if r["until"] is None else min(r["until"], until or r["until"]))
            r.update(kind=kind, match=match or r["match"])
            return r != before
    state["residents"].append(
        {"person": person, "unit": unit, "from": day, "until": until, "kind": kind, "match": match}
    )
    state["residents"].sort(key=lambda r: (r["from"], r["person"]))
    return True


def leave(state: AddressState, person: str, day: str) -> bool:
    """The person stopped living here on ``day`` (moved away, died)."""
    for r in state["residents"]:
        if r["person"] == person and _open_on(r, day) and r["from"] < day:
            r["until"] = day
            return True
    return False


def relate(state: AddressState, a: str, b: str, relation: str, started: bool, day: str) -> bool:
    """A relation between two people begins or ends on ``day`` (BRP relation change)."""
    pair = sorted((a, b))
    for rel in state["relations"]:
        if rel["pair"] == pair and rel["until"] is None:
            if started:
                return False
            rel["until"] = day
            return True
    if not started:
        return False
    state["relations"].append({"pair": pair, "relation": relation, "from": day, "until": None})
    return True


def residents_at(
    state: AddressState,
    day: str,
    kinds: tuple[str, ...] = ("woonadres",),
    unit: str | None = None,
) -> list:
    """Residents on ``day`` of the given address kinds, in one unit or the whole building."""
    return [
        r
        for r in state["residents"]
        if r["kind"] in kinds and _open_on(r, day) and (unit is None or r["unit"] == unit)
    ]


def _separate_household(address_ref: str, anchor: str) -> str:
    digest = hashlib.sha256(f"household:{address_ref}|{anchor}".encode()).hexdigest()
    return "H-" + digest[:24]


def households_at(state: AddressState, address_ref: str, day: str) -> dict[str, str]:
    """person → household_ref for everyone registered here on ``day``."""
    living = [r["person"] for r in residents_at(state, day, unit=address_ref)]
    result = {
        r["person"]: _separate_household(address_ref, r["person"])
        for r in residents_at(state, day, LOW_CONFIDENCE_KINDS, unit=address_ref)
    }
    if not living:
        return result
    group = {p: p for p in living}  # union-find over relations active on the day

    def root(p: str) -> str:
        while group[p] != p:
            group[p] = group[group[p]]
            p = group[p]
        return p

    for rel in state["relations"]:
        a, b = rel["pair"]
        if a in group and b in group and _open_on(rel, day):
            group[root(a)] = root(b)
    main = root(living[0])  # the group of the longest-registered resident
    sizes: dict[str, int] = {}
    for p in living:
        sizes[root(p)] = sizes.get(root(p), 0) + 1
    first_of: dict[str, str] = {}
    for p in living:
        first_of.setdefault(root(p), p)
    for p in living:
        g = root(p)
        if g == main or sizes[g] == 1:  # no family of their own here: the main household
            result[p] = household_for_address(address_ref)
        else:
            result[p] = _separate_household(address_ref, first_of[g])
    return result


def household_of(state: AddressState, address_ref: str, person: str, day: str) -> str:
    """The person's household here on ``day``; before their arrival, as they arrived."""
    households = households_at(state, address_ref, day)
    if person in households:
        return households[person]
    starts = [r["from"] for r in state["residents"]
              if r["person"] == person and r["unit"] == address_ref]  # fmt: skip
    if starts:
        later = [d for d in starts if d > day]
        on = min(later) if later else max(starts)
        households = households_at(state, address_ref, on)
        if person in households:
            return households[person]
    return household_for_address(address_ref)


@dataclass(frozen=True)
class Applied:
    member_change: str | None  # "joined" | "left" | None
    changed: bool  # the state must be written back


@dataclass(frozen=True)
class Linked:
    household_ref: str
    linked_by: str  # "person" | "address" | "match"
    probability: float | None = None
    person_ref: str | None = None  # the resident a signal was matched to


@dataclass(frozen=True)
class Unmatched:
    reason: str
    probability: float | None = None


def link_signal(
    state: AddressState,
    address_ref: str,
    day: str,
    match: Person | None,
    weights: Weights,
    threshold: float,
) -> Linked | Unmatched:
    """A signal without a BSN: by name and date of birth, else by the address alone.

    Named signals are compared with every resident of the building, each with
    their own unit, so a missing or different toevoeging weighs as a partial
    agreement instead of hiding the right person.
    """
    if match:
        present = [r for r in residents_at(state, day, ("woonadres", *LOW_CONFIDENCE_KINDS))
                   if r["match"]]  # fmt: skip
        candidates = {r["person"]: {**r["match"], **unit_attributes(r["unit"])} for r in present}
        decision = decide(weights, match, candidates, threshold)
        if decision.person_ref is None:
            return Unmatched(decision.reason, decision.probability or None)
        unit = next(r["unit"] for r in present if r["person"] == decision.person_ref)
        household = household_of(state, unit, decision.person_ref, day)
        return Linked(household, "match", decision.probability, decision.person_ref)
    units = (
        [address_ref]
        if address_ref != building(address_ref)
        else sorted({r["unit"] for r in residents_at(state, day)})
    )  # without letter or toevoeging: any unit of the building, if only one is lived in
    households = set()
    for unit in units:  # households of people living there (a briefadres is not one)
        living = {r["person"] for r in residents_at(state, day, unit=unit)}
        households |= {h for p, h in households_at(state, unit, day).items() if p in living}
    if len(households) == 1:
        return Linked(households.pop(), "address")
    if not households:
        return Unmatched("nobody registered at the address on the signal date")
    return Unmatched("several households at the address on the signal date")


def unit_attributes(address_ref: str) -> dict[str, str]:
    """Postcode and house (with letter and toevoeging) of an address_ref, in normal form."""
    postcode, _, house = address_ref.partition("-")
    return normalise(postcode=postcode, house=house.replace("-", " "))


def matching_person(match: dict[str, Any] | None, address_ref: str) -> Person | None:
    """The match attributes of an event, plus the address it is about, in normal form."""
    if not match:
        return None
    names = normalise(
        family=match["family_name"],
        prefix=match["prefix"],
        initials=match["initials"],
        dob=match["birth_date"],
    )
    return {**names, **unit_attributes(address_ref)}


def apply(
    state: AddressState, address_ref: str, role: str, until: dt.date | None, event: dict[str, Any]
) -> Applied:
    """Fold a routed event into the building's state (in place): what it meant for membership,
    and whether the state changed (most events change nothing and need no write)."""
    person = event["subject"]["person_ref"]
    name, payload = event["payload"]
    day = event_day(event)
    if role == "arrived":
        match = matching_person(event["subject"]["match"], address_ref)
        kind = payload.get("address_kind", "woonadres")
        end = until.isoformat() if until else None
        return Applied("joined", arrive(state, person, address_ref, day, end, kind, match))
    if role == "left":
        return Applied("left", leave(state, person, day))
    if name == RELATION_CHANGED and person:
        started = payload["change"] == "started"
        related = payload["related_person_ref"]
        return Applied(None, relate(state, person, related, payload["relation"], started, day))
    return Applied(None, False)


def decide_link(
    state: AddressState,
    address_ref: str,
    role: str,
    event: dict[str, Any],
    weights: Weights,
    threshold: float,
) -> Linked | Unmatched:
    """The household a routed event belongs to, or why it cannot be linked."""
    person = event["subject"]["person_ref"]
    day = event_day(event)
    if person is None:
        match = matching_person(event["subject"]["match"], address_ref)
        return link_signal(state, address_ref, day, match, weights, threshold)
    if role == "left":  # the household they were part of until that day
        day = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
    return Linked(household_of(state, address_ref, person, day), "person")
