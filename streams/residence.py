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

import hashlib
from dataclasses import dataclass
from typing import Any, TypedDict

from wijkhub.streams.linking import event_day, household_for_address
from wijkhub.streams.matching import Person, Weights, decide, normalise

RELATION_CHANGED = "nl.wijkhub.population.RelationChanged"

# "from" is a keyword: these two need TypedDict's functional form.
Residency = TypedDict(
    "Residency",
    {"person": str, "unit": str, "from": str, "until": str | None, "kind": str,
     "match": Person | None},
)  # fmt: skip
"""One period of one resident in one unit (ISO dates; ``until`` None: still living there)."""
RelationPeriod = TypedDict(
    "RelationPeriod", {"pair": list[str], "relation": str, "from": str, "until": str | None}
)
"""A relation between two residents while it lasted."""


class AddressState(TypedDict):
    """The building's register over time, as the address stage derives it from its facts."""

    residents: list[Residency]  # in order of arrival: the first is the longest-registered
    relations: list[RelationPeriod]


LOW_CONFIDENCE_KINDS = ("briefadres", "instelling")


def building(address_ref: str) -> str:
    """The partition key of the address stage: ``1011AB-12-A-2`` → ``1011AB-12``."""
    if address_ref.startswith("BAG-"):
        return address_ref
    return "-".join(address_ref.split("-")[:2])


def _open_on(entry: Residency | RelationPeriod, day: str) -> bool:
    return entry["from"] <= day and (entry["until"] is None or day < entry["until"])


def residents_at(
    state: AddressState,
    day: str,
    kinds: tuple[str, ...] = ("woonadres",),
    unit: str | None = None,
) -> list[Residency]:
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
class Linked:
    household_ref: str
    linked_by: str  # "person" | "address" | "match"
    probability: float | None = None
    person_ref: str | None = None  # the resident a signal was matched to
    unit: str | None = None  # the unit the household lives in (its ids derive from it)


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
        present = [(r, m) for r in residents_at(state, day, ("woonadres", *LOW_CONFIDENCE_KINDS))
                   if (m := r["match"])]  # fmt: skip
        candidates = {r["person"]: {**m, **unit_attributes(r["unit"])} for r, m in present}
        decision = decide(weights, match, candidates, threshold)
        if decision.person_ref is None:
            return Unmatched(decision.reason, decision.probability or None)
        unit = next(r["unit"] for r, _ in present if r["person"] == decision.person_ref)
        household = household_of(state, unit, decision.person_ref, day)
        return Linked(household, "match", decision.probability, decision.person_ref, unit)
    units = (
        [address_ref]
        if address_ref != building(address_ref)
        else sorted({r["unit"] for r in residents_at(state, day)})
    )  # without letter or toevoeging: any unit of the building, if only one is lived in
    households: dict[str, str] = {}
    for unit in units:  # households of people living there (a briefadres is not one)
        living = {r["person"] for r in residents_at(state, day, unit=unit)}
        households |= {h: unit for p, h in households_at(state, unit, day).items() if p in living}
    if len(households) == 1:
        household, unit = households.popitem()
        return Linked(household, "address", unit=unit)
    if not households:
        return Unmatched("nobody registered at the address on the signal date")
    return Unmatched("several households at the address on the signal date")


def unit_attributes(address_ref: str) -> dict[str, str]:
    """Postcode and house (with letter and toevoeging) of an address_ref, in normal form."""
    postcode, _, house = address_ref.partition("-")
    return normalise(postcode=postcode, house=house.replace("-", " "))


def match_features(match: dict[str, Any]) -> Person:
    """Name and date of birth as the matcher compares them (normal form), and nothing else:
    what the address stage keeps of a resident (minimisation). Idempotent: features given
    again come back as they are."""
    if "family_name" not in match:
        return {k: v for k, v in match.items() if k in ("family", "given", "initials", "dob")}
    return normalise(family=match["family_name"], prefix=match["prefix"],
                     initials=match["initials"], dob=match["birth_date"])  # fmt: skip


def matching_person(match: dict[str, Any] | None, address_ref: str) -> Person | None:
    """The match attributes of an event (or the features kept of a resident), plus the
    address it is about, in normal form."""
    if not match:
        return None
    return {**match_features(match), **unit_attributes(address_ref)}


def decide_link(
    state: AddressState,
    address_ref: str,
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
    return Linked(household_of(state, address_ref, person, day), "person", unit=address_ref)
