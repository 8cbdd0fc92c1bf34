"""Which household an event belongs to: pure decisions, no Kafka.

Walking-skeleton linking (issue #4 refines it): a household is the set of
people registered at one residential address, so the household reference is
derived from the address reference. A person is linked through the address
the population register last gave for them; an address-level signal (rent
arrears without a BSN) links to the household at that address. An event
about a person the hub has not seen registered yet waits (parked) until the
registration arrives, instead of being guessed or dropped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

PERSON_REGISTERED = "nl.wijkhub.population.PersonRegistered"


def household_for_address(address_ref: str) -> str:
    return "H-" + hashlib.sha256(b"household:" + address_ref.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Link:
    household_ref: str
    linked_by: str  # "person" | "address"


@dataclass(frozen=True)
class Park:
    """Hold the event until the person's registration arrives."""

    person_ref: str


def person_record(event: dict[str, Any]) -> dict[str, str] | None:
    """What the persons table stores for a registration event, or None if not one."""
    name, _payload = event["payload"]
    subject = event["subject"]
    if name != PERSON_REGISTERED or not subject["person_ref"] or not subject["address_ref"]:
        return None
    return {
        "address_ref": subject["address_ref"],
        "household_ref": household_for_address(subject["address_ref"]),
    }


def decide(event: dict[str, Any], known_person: dict[str, str] | None) -> Link | Park:
    """Link by person when the register knows them, else by address, else park."""
    subject = event["subject"]
    if known_person is not None:
        return Link(known_person["household_ref"], "person")
    if subject["address_ref"]:
        return Link(household_for_address(subject["address_ref"]), "address")
    return Park(subject["person_ref"])
