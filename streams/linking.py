"""Person stage of linking: where did this person live when the event happened?

The BRP has no "household"; it says who is registered at which address from
which date. This stage keeps, per person (its table is keyed and partitioned
like ``raw.<domain>``: by person_ref), the residence history and decides
where each event goes next: to the *address stage* (keyed by address_ref,
see :mod:`residence`), which knows who lived together when. History is kept
so an event links to the address as it was on the event's date, and a late
registration is inserted where it belongs, not appended.

An event about a person the hub has not seen registered waits (parked) until
the registration arrives, instead of being guessed or dropped.

Pure functions over JSON-ready dicts; no Kafka here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

PERSON_REGISTERED = "nl.wijkhub.population.PersonRegistered"
PERSON_DECEASED = "nl.wijkhub.population.PersonDeceased"
PERSON_DEPARTED = "nl.wijkhub.population.PersonDeparted"

PersonState = dict[str, Any]  # {"residences": [{"address": ref, "from": iso}], "died_on": iso}


def household_for_address(address_ref: str) -> str:
    """The address's main household: everyone living there who does not form another one."""
    return "H-" + hashlib.sha256(b"household:" + address_ref.encode()).hexdigest()[:24]


def event_day(event: dict[str, Any]) -> str:
    """The event's date (ISO): the day it happened, not the day it arrived."""
    occurred: dt.datetime = event["envelope"]["occurred_at"]
    return occurred.date().isoformat()


@dataclass(frozen=True)
class Route:
    """Send the event to the address stage, keyed by ``address_ref``.

    ``role``: ``arrived`` (a registration at this address, valid until
    ``until`` if a later residence is already known), ``left`` (the person
    stopped living here on the event's date: moved away or died), or
    ``event`` (anything else, about a person living here or the address).
    """

    address_ref: str
    role: str
    until: str | None = None


@dataclass(frozen=True)
class Park:
    """Hold the event until the person's registration arrives."""

    person_ref: str


@dataclass(frozen=True)
class HandOver:
    """The person left the municipality before the event: not for a team here, for the
    hand-over queue (the new municipality, or closing the case)."""

    person_ref: str
    departed_on: str


@dataclass(frozen=True)
class Unlinkable:
    """Neither a known person nor an address: goes to review with this reason."""

    reason: str


def new_person() -> PersonState:
    return {"residences": [], "died_on": None, "departed_on": None}


def fingerprint(state: PersonState) -> tuple:
    """What changes when a BRP event changes the state (so only then is it written back)."""
    return len(state["residences"]), state["died_on"], state.get("departed_on")


def address_at(state: PersonState, day: str) -> str | None:
    """Where the person lived on ``day``; before the first known residence, that one
    (the register gives the current address, so earlier events belong there)."""
    residences = state["residences"]
    if not residences:
        return None
    current = residences[0]["address"]
    for r in residences:
        if r["from"] <= day:
            current = r["address"]
    return current


def _register(state: PersonState, address: str, day: str) -> list[Route]:
    residences = state["residences"]
    if any(r["address"] == address and r["from"] == day for r in residences):
        return [Route(address, "arrived", _next_from(residences, day))]  # replay
    previous = address_at(state, day) if any(r["from"] <= day for r in residences) else None
    residences.append({"address": address, "from": day})
    residences.sort(key=lambda r: (r["from"], r["address"]))
    routes = [Route(address, "arrived", _next_from(residences, day))]
    if previous is not None and previous != address:
        routes.append(Route(previous, "left"))
    return routes


def _next_from(residences: list[dict[str, str]], day: str) -> str | None:
    later = [r["from"] for r in residences if r["from"] > day]
    return min(later) if later else None


def route(event: dict[str, Any], state: PersonState) -> list[Route] | Park | HandOver | Unlinkable:
    """Where the event goes next. Mutates ``state`` (the caller stores it) for BRP events.

    ``state`` is the person's stored state, or :func:`new_person` if unknown.
    """
    name = event["payload"][0]
    subject = event["subject"]
    person, address = subject["person_ref"], subject["address_ref"]
    day = event_day(event)
    if person is None:
        if address is None:
            return Unlinkable("no BSN and no address: nothing to link on")
        return [Route(address, "event")]
    if name == PERSON_REGISTERED and address is not None:
        if (state.get("departed_on") or "9999") <= day:
            state["departed_on"] = None  # moved back into the municipality
        return _register(state, address, day)
    if not state["residences"]:
        return Park(person)
    current = address_at(state, day)
    assert current is not None
    if name == PERSON_DECEASED:
        state["died_on"] = day
        return [Route(current, "left")]
    if name == PERSON_DEPARTED:
        state["departed_on"] = day
        return [Route(current, "left")]
    departed = state.get("departed_on")
    if departed and day >= departed:
        return HandOver(person, departed)
    return [Route(current, "event")]
