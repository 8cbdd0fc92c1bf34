"""The contact card of an open alert: who is behind its facts and how to reach them.

For the alert's responsible team only (issue 17). The household stage derives one
card per open alert from the facts it holds and publishes it, diffed, on the
compacted ``contact-cards`` topic; a closed, withdrawn, removed or erased alert's
card is a tombstone there. Only what a source supplied is on it: the name, street,
city, telephone and e-mail a vroegsignaal (DDAS client) or a BRP registration
carried in ``subject.contact``, and the postcode and house number of the address
the fact was about; for a person known by pseudonym whose facts supplied no address, the
address the BRP registers them at in the household (its member periods). Nothing is
looked up, guessed or combined from elsewhere.

Pure: a function of the alert and the set of facts, so the same card for any
arrival order (the facts are read in event-date order, the newest value of each
field wins, ties broken by event id).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from wijkhub.streams import lifecycle, rules
from wijkhub.streams.topics import Domain

if TYPE_CHECKING:
    from wijkhub.streams.household_stage import StoredFact

# What a fact keeps for the card: subject.contact as the source sent it, and the
# address (``address_ref``) the fact was about.
CONTACT_KEYS = ("name", "street", "city", "telephone", "email")
CARD_KEYS: tuple[Literal["name", "street", "city", "telephone", "email", "unit"], ...] = (
    "name", "street", "city", "telephone", "email", "unit",
)  # fmt: skip
ADDRESS_KEYS, PERSONAL_KEYS = ("street", "city", "unit"), ("name", "telephone", "email")


class CardSource(TypedDict):
    """``subject.contact`` of a fact, JSON-ready, with the address it was about."""

    name: str
    street: str
    city: str
    telephone: str
    email: str
    unit: str  # the fact's address_ref ("1234AB-12-A-2", "BAG-…"), or ""


def source_of(contact: Mapping[str, Any] | None, unit: str | None) -> CardSource | None:
    """What a fact keeps for the card (None: the source supplied no contact details)."""
    if not contact or not any(contact.get(k) for k in CONTACT_KEYS):
        return None
    text = {k: str(contact.get(k) or "") for k in CONTACT_KEYS}
    return CardSource(
        name=text["name"],
        street=text["street"],
        city=text["city"],
        telephone=text["telephone"],
        email=text["email"],
        unit=unit or "",
    )


def postcode_and_number(unit: str) -> tuple[str, str]:
    """("1234AB", "12 A-2") from an address key; a BAG id names no postcode: ("", "")."""
    if not unit or unit.startswith("BAG-"):
        return "", ""
    postcode, _, rest = unit.partition("-")
    number, _, more = rest.partition("-")
    letter, _, addition = more.partition("-")
    house = number + (f" {letter}" if letter else "") + (f"-{addition}" if addition else "")
    return postcode, house


def derive(
    alert_id: str,
    entry: lifecycle.AlertEntry,
    rule: rules.Rule,
    household_ref: str,
    facts: Mapping[str, StoredFact],
    residents: Mapping[str, str] | None = None,
) -> dict[str, Any] | None:
    """The ContactCard record of an open alert, or None (closed, or nobody to reach).

    ``residents``: person_ref → the address (address_ref) the BRP registers them at now,
    from the household's member periods: the address of a person known by pseudonym
    whose facts supplied none."""
    if entry["state"] == "resolved" or not entry.get("team"):
        return None
    behind = sorted({f["event_id"] for f in entry["facts"]})
    per_person: dict[str, list[StoredFact]] = {}
    for eid in behind:
        fact = facts.get(eid)
        if fact is None or fact["withdrawn"]:
            continue
        key = fact["person"] or f"event:{eid}"
        per_person.setdefault(key, [])
        if fact.get("card"):
            per_person[key].append(fact)
    # A person known by pseudonym: the household's other facts about that person (a
    # vroegsignaal linked to them) name them where the alert's own facts do not.
    for fact in facts.values():
        if not fact["withdrawn"] and fact.get("card") and fact["person"] in per_person:
            per_person[str(fact["person"])].append(fact)
    registered = residents or {}
    persons = [  # a person with nothing supplied but a BRP address still has that address
        _person(key, found, registered.get(key, ""))
        for key, found in per_person.items()
        if found or registered.get(key)
    ]
    if not persons:
        return None
    persons.sort(key=lambda p: (p["name"], p["postcode"], p["house_number"], p["person_ref"] or ""))
    return {
        "alert_id": alert_id,
        "household_ref": household_ref,
        "team": str(entry["team"]),
        "rule_id": rule.id,
        "basis": rule.contact_basis,
        "persons": persons,
    }


def _person(key: str, found: list[StoredFact], registered: str) -> dict[str, Any]:
    """One person: per field, the value of the newest fact that supplied one; the address
    as a whole, from the newest fact that had one, else where the BRP registers them."""
    merged: dict[str, str] = dict.fromkeys((*CONTACT_KEYS, "unit"), "")
    merged["unit"] = registered
    sources = {f["domain"] for f in found}
    for fact in sorted({f["id"]: f for f in found}.values(), key=lambda f: (f["day"], f["id"])):
        card = fact.get("card")
        source: dict[str, str] = {} if card is None else {k: card[k] for k in CARD_KEYS}
        if source.get("unit") or source.get("street"):  # an address: the newest, whole
            merged.update({k: source.get(k, "") for k in ADDRESS_KEYS})
            registered = ""
        merged.update({k: source[k] for k in PERSONAL_KEYS if source.get(k)})
    postcode, house = postcode_and_number(merged["unit"])
    return {
        "person_ref": None if key.startswith("event:") else key,
        "name": merged["name"],
        "street": merged["street"],
        "house_number": house,
        "postcode": postcode,
        "city": merged["city"],
        "telephone": merged["telephone"],
        "email": merged["email"],
        "sources": sorted(sources | ({Domain.POPULATION.value} if registered else set())),
    }
