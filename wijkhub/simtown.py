"""A synthetic Dutch municipality with ground truth, for measuring signal linking.

Households live in buildings with units (huisletter, toevoeging); families
share a surname (with voorvoegsel), partners and children have relations;
some families share a building, some people move. Creditor signals then name
a resident the way creditors really do: initials only, a typo in the surname,
day and month of birth swapped, the toevoeging missing, the address spelled
differently ("12-a", "12 A", "1234 ab"). Some signals are about people who do
not live in the municipality at all: linking those would be a wrong link.

Everything is generated from a seed; the truth (who a signal is about) is
kept beside each signal and never shown to the matcher.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

FAMILY_NAMES = [
    ("de", "Jong"), ("", "Jansen"), ("de", "Vries"), ("van den", "Berg"), ("van", "Dijk"),
    ("", "Bakker"), ("", "Janssen"), ("", "Visser"), ("", "Smit"), ("", "Meijer"),
    ("de", "Boer"), ("", "Mulder"), ("de", "Groot"), ("", "Bos"), ("", "Vos"), ("", "Peters"),
    ("", "Hendriks"), ("van", "Leeuwen"), ("", "Dekker"), ("", "Brouwer"), ("de", "Wit"),
    ("", "Dijkstra"), ("", "Smits"), ("de", "Graaf"), ("van der", "Meer"), ("", "Kok"),
    ("", "Jacobs"), ("de", "Haan"), ("", "Vermeulen"), ("van den", "Heuvel"), ("", "Yilmaz"),
    ("el", "Amrani"), ("", "Kaya"), ("", "Öztürk"), ("", "Bouzid"), ("", "Hoekstra"),
    ("", "Maas"), ("", "Verhoeven"), ("", "Koster"), ("van", "Dam"), ("", "Prins"), ("", "Blom"),
    ("", "Huisman"), ("", "Kuipers"), ("", "Postma"), ("", "Kramer"), ("", "Schouten"),
    ("", "Willems"), ("", "Dekkers"), ("", "Veenstra"), ("", "Sahin"), ("", "Demir"),
]  # fmt: skip
GIVEN_NAMES = [
    "Jan", "Johan", "Joris", "Pieter", "Kees", "Mohamed", "Ahmed", "Daan", "Sem", "Lucas",
    "Anna", "Maria", "Sanne", "Fatima", "Emma", "Julia", "Sophie", "Noor", "Lisa", "Eva",
    "Thomas", "Ruben", "Mila", "Zeynep", "Yusuf", "Tess", "Bram", "Fleur", "Hanna", "Levi",
]  # fmt: skip
LETTERS = "ABCD"


@dataclass
class Resident:
    person_ref: str
    family: str
    prefix: str
    given: str
    dob: dt.date
    unit: tuple[str, str]  # (postcode, house as the register writes it)
    moved_to: tuple[str, str] | None = None
    moved_on: dt.date | None = None


@dataclass
class Town:
    residents: list[Resident] = field(default_factory=list)
    relations: list[tuple[str, str, str]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)  # each with "truth"


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "replace", "double"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice("aeioulnrst") + word[i + 1 :]


def _spelling(rng: random.Random, postcode: str, house: str) -> tuple[str, str]:
    """The same door as a creditor might write it."""
    number, _, rest = house.partition(" ")
    postcode = rng.choice((postcode, postcode.lower(), f"{postcode[:4]} {postcode[4:]}"))
    if rest:
        house = rng.choice((f"{number}-{rest.lower()}", f"{number} {rest}", f"{number}{rest}"))
    return postcode, house


def generate(households: int = 3000, signals: int = 3000, seed: int = 42) -> Town:
    rng = random.Random(seed)
    town = Town()
    ids = iter(range(1, 10**9))
    start = dt.date(2024, 1, 1)
    buildings = [(f"{1000 + rng.randrange(200)}{rng.choice('ABCDEFGH')}{rng.choice('KLMNPR')}",
                  str(rng.randint(1, 250))) for _ in range(households // 2)]  # fmt: skip
    for _ in range(households):
        postcode, number = rng.choice(buildings)  # buildings hold one or more households
        unit = f"{number} {rng.choice(LETTERS)}" if rng.random() < 0.4 else number
        prefix, family = rng.choice(FAMILY_NAMES)
        grown_ups = 1 if rng.random() < 0.35 else 2
        people = []
        for a in range(grown_ups):
            p_prefix, p_family = (prefix, family) if a == 0 else rng.choice(FAMILY_NAMES)
            dob = dt.date(rng.randint(1940, 2002), rng.randint(1, 12), rng.randint(1, 28))
            people.append(Resident(f"P{next(ids)}", p_family, p_prefix, rng.choice(GIVEN_NAMES),
                                   dob, (postcode, unit)))  # fmt: skip
        for _ in range(rng.choice((0, 0, 1, 2, 3))):
            dob = dt.date(rng.randint(2005, 2023), rng.randint(1, 12), rng.randint(1, 28))
            child = Resident(f"P{next(ids)}", family, prefix, rng.choice(GIVEN_NAMES), dob,
                             (postcode, unit))  # fmt: skip
            town.relations.append((people[0].person_ref, child.person_ref, "ouder"))
            people.append(child)
        if grown_ups == 2:
            town.relations.append((people[0].person_ref, people[1].person_ref, "partner"))
        if rng.random() < 0.08:  # the family moves in the middle of the period
            target = rng.choice(buildings)
            for p in people:
                p.moved_to, p.moved_on = target, start + dt.timedelta(days=300)
        town.residents += people
    adults = [p for p in town.residents if p.dob.year < 2006]
    for n in range(signals):
        stranger = rng.random() < 0.1
        if stranger:  # someone the register does not know, at a known building
            postcode, house = rng.choice(buildings)
            prefix, family = rng.choice(FAMILY_NAMES)
            dob = dt.date(rng.randint(1940, 2002), rng.randint(1, 12), rng.randint(1, 28))
            truth, given = None, rng.choice(GIVEN_NAMES)
            day = start + dt.timedelta(days=rng.randint(30, 600))
        else:
            r = rng.choice(adults)
            prefix, family, dob, truth, given = r.prefix, r.family, r.dob, r.person_ref, r.given
            day = start + dt.timedelta(days=rng.randint(30, 600))
            postcode, house = r.moved_to if r.moved_on and day >= r.moved_on else r.unit
        if rng.random() < 0.15:
            family = _typo(rng, family)
        if rng.random() < 0.05 and dob.day <= 12:
            dob = dob.replace(month=dob.day, day=dob.month)
        if rng.random() < 0.15:
            house = house.split(" ")[0]  # toevoeging missing
        postcode, house = _spelling(rng, postcode, house)
        town.signals.append({
            "id": f"S{n}", "truth": truth, "day": day, "postcode": postcode, "huisnummer": house,
            "family_name": family, "prefix": prefix, "initials": given[0],
            "birth_date": dob if rng.random() > 0.05 else None,
        })  # fmt: skip
    return town


def registrations(town: Town) -> Iterator[tuple[Resident, tuple[str, str], dt.date]]:
    """Every BRP registration in date order: (resident, (postcode, house), from)."""
    start = dt.date(2023, 1, 1)
    for r in town.residents:
        yield r, r.unit, start
    for r in town.residents:
        if r.moved_to and r.moved_on:
            yield r, r.moved_to, r.moved_on
