"""Test helpers shipped with the package (as structlog ships ``structlog.testing``).

:class:`Scenario` writes source records the way municipal sources deliver them
(BRP registrations and relation rows, DDAS signals without BSN, schuldhulp
trajectories, wijkteam cases) and turns them into the raw records the
connectors would put on ``raw.<domain>``, through the connectors' own
validation and pseudonymisation (:func:`connectors.canonical.to_raw_event`).
The same scenario feeds the in-memory harness (property tests: hundreds of
orders) and the real broker (integration tests: the file orders an operator
could produce).

:func:`tricky` is the scenario of the order-independence issue: moves, two
families at one address, signals without BSN, relation rows apart from the
registrations, DDAS months out of order, trajectories that end, a late crisis
signal.

:func:`as_iwmo` turns an iJw message into the same message in iWmo, so that one example
serves both standards (the format tests, ``wijkhub bench-intake``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from wijkhub.connectors.canonical import to_raw_event
from wijkhub.connectors.identity import Pseudonymiser
from wijkhub.schemas.registry import RAW_EVENT, Catalog
from wijkhub.streams.topics import raw
from wijkhub.synthetic import make_bsn

Record = dict[str, Any]
RECEIVED = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


@dataclass
class Person:
    bsn: str
    family_name: str
    initials: str
    birth_date: str

    def names(self) -> Record:
        return {"family_name": self.family_name, "initials": self.initials,
                "birth_date": self.birth_date}  # fmt: skip


@dataclass
class Scenario:
    """Source records per source, with the alerts they must raise (rule id → count)."""

    seed: int = 1
    records: list[tuple[str, Record]] = field(default_factory=list)
    expected: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._ids = itertools.count(1)
        self._bsns: set[str] = set()  # one person, one BSN

    def _add(self, source: str, kind: str, day: str, **fields: Any) -> Record:
        record = {"kind": kind, "message_id": f"{kind}-{self.seed}-{next(self._ids)}",
                  "occurred_at": day, **fields}  # fmt: skip
        self.records.append((source, record))
        return record

    def person(self, family_name: str, birth_date: str) -> Person:
        return Person(make_bsn(self.rng, self._bsns), family_name, family_name[0], birth_date)

    def register(self, p: Person, postcode: str, number: str, day: str) -> Record:
        return self._add("population", "person_registered", day, bsn=p.bsn, postcode=postcode,
                         huisnummer=number, **p.names())  # fmt: skip

    def two_families(self, postcode: str, number: str) -> tuple[Person, ...]:
        """Two families at one address, each bound by a BRP relation row: the Jansens
        (partners, the first residents) and the Bakkers (parent and child, later)."""
        a1, a2 = self.person("Jansen", "1980-04-02"), self.person("Jansen", "1982-07-19")
        b1, b2 = self.person("Bakker", "1975-01-30"), self.person("Bakker", "2004-11-05")
        for p in (a1, a2):
            self.register(p, postcode, number, "2024-01-01")
        for p in (b1, b2):
            self.register(p, postcode, number, "2024-03-01")
        self.relation(a1, a2, "partner", "2024-01-01")
        self.relation(b1, b2, "ouder", "2024-03-01")
        return a1, a2, b1, b2

    def relation(self, a: Person, b: Person, relation: str, day: str, change: str = "started"):
        return self._add("population", "relation_changed", day, bsn=a.bsn, related_bsn=b.bsn,
                         relation=relation, change=change)  # fmt: skip

    def arrears(self, postcode: str, number: str, creditor: str, day: str,
                who: Person | None = None, crisis: bool = False, since: str | None = None,
                amount: int = 45_000, with_bsn: bool = False) -> Record:  # fmt: skip
        """A DDAS signal: by name and date of birth (``who``), or with ``who``'s BSN."""
        names = who.names() if who else {}
        if with_bsn and who is not None:
            names["bsn"] = who.bsn
        return self._add("vroegsignalering", "arrears_signal", day, postcode=postcode,
                         huisnummer=number, signal_id=f"S-{next(self._ids)}",
                         creditor_type=creditor, amount_cents=amount, arrears_months=1,
                         crisis="true" if crisis else "false",
                         **({"arrears_since": since} if since else {}), **names)  # fmt: skip

    def debt_help(self, p: Person, organisation: str, trajectory: str, change: str, day: str):
        return self._add("schuldhulp", "debt_help_changed", day, bsn=p.bsn,
                         trajectory_id=trajectory, organisation=organisation, change=change,
                         contact=f"{organisation.lower()}@example.nl")  # fmt: skip

    def help_in_turn(self, p: Person) -> None:
        """Debt help in turn, never at once: Kredietbank from intake to its end, then
        Schuldhulpmaatje. No duplicate help, in any order of the four records."""
        self.debt_help(p, "Kredietbank", "T1", "intake", "2025-03-01")
        self.debt_help(p, "Kredietbank", "T1", "started", "2025-03-10")
        self.debt_help(p, "Kredietbank", "T1", "ended", "2025-06-01")
        self.debt_help(p, "Schuldhulpmaatje", "T2", "started", "2025-07-01")

    def case(self, p: Person, team: str, case_type: str, day: str):
        return self._add("teams", "case_opened", day, bsn=p.bsn, case_id=f"C-{next(self._ids)}",
                         team=team, case_type=case_type, opened_on=day,
                         contact=f"{team}@gemeente.example")  # fmt: skip

    def consent(self, p: Person, purpose: str, domain: str, day: str):
        return self._add("teams", "consent_changed", day, bsn=p.bsn, purpose=purpose,
                         consent_domain=domain, consent="given")  # fmt: skip

    def raw_records(
        self, key: bytes, catalog: Catalog | None = None
    ) -> list[tuple[str, bytes, bytes]]:
        """(topic, key, value) as the connectors would write them, under pseudonym key ``key``."""
        catalog = catalog or Catalog()
        pseudonymiser = Pseudonymiser(key)
        out = []
        for source, record in self.records:
            domain, partition_key, event = to_raw_event(record, source, pseudonymiser, "0363",
                                                        RECEIVED)  # fmt: skip
            out.append((raw(domain), partition_key.encode(), catalog.encode(RAW_EVENT, event)))
        return out

    def by_source(self) -> dict[str, list[Record]]:
        found: dict[str, list[Record]] = {}
        for source, record in self.records:
            found.setdefault(source, []).append(record)
        return found


def household_of_three(seed: int = 7, with_father: bool = True) -> tuple[Scenario, Person]:
    """The erasure scenario: mother (the first resident), child and father at one address.
    The mother has two arrears from different creditors (one alert); the father has water
    arrears three months in a row, signalled by name (one alert), and debt help from two
    organisations at once (one alert), and a partner relation. Erasing the father leaves the
    run ``with_father=False`` gives."""
    s = Scenario(seed)
    mother, child = s.person("Jansen", "1980-04-02"), s.person("Jansen", "2012-03-03")
    father = s.person("Dekker", "1979-08-21")
    s.register(mother, "1020AB", "5", "2023-06-01")  # the first resident: the household's id
    s.register(child, "1020AB", "5", "2024-01-01")
    s.relation(mother, child, "ouder", "2024-01-01")
    s.arrears("1020AB", "5", "Huur", "2026-02-01", who=mother, with_bsn=True)
    s.arrears("1020AB", "5", "Energie", "2026-03-10", who=mother, with_bsn=True)
    s.expected["VS-ARREARS-2-CREDITORS-90D"] += 1
    if with_father:
        s.register(father, "1020AB", "5", "2024-01-01")
        s.relation(father, mother, "partner", "2024-01-01")
        for day in ("2026-01-12", "2026-02-12", "2026-03-12"):  # by name, no BSN
            s.arrears("1020AB", "5", "Water", day, who=father)
        s.debt_help(father, "Kredietbank", "T1", "started", "2025-04-01")
        s.debt_help(father, "Schuldhulpmaatje", "T2", "started", "2025-05-01")
        s.expected["VS-ARREARS-3-MONTHS-ONE-CREDITOR"] += 1
        s.expected["DH-TWO-HOLDERS-SAME-HELP"] += 1
    return s, father


def tricky(seed: int = 1) -> Scenario:
    """The order-independence scenario; ``expected`` holds the alerts it must raise."""
    s = Scenario(seed)
    # Two families at one address; relation rows apart from the registrations.
    a1, a2, b1, _b2 = s.two_families("1011AB", "7")
    # Family A: rent and energy arrears within 90 days (by address: A is the main household).
    s.arrears("1011AB", "7", "Huur", "2026-02-01", who=a1)
    s.arrears("1011AB", "7", "Energie", "2026-03-10", who=a2)
    s.expected["VS-ARREARS-2-CREDITORS-90D"] += 1
    # Family B: water arrears three months in a row, without BSN, matched by name.
    for day in ("2026-01-12", "2026-02-12", "2026-03-12"):
        s.arrears("1011AB", "7", "Water", day, who=b1)
    s.expected["VS-ARREARS-3-MONTHS-ONE-CREDITOR"] += 1
    # A move: C's signals go to the household of their own date; two creditors only at Z.
    c = s.person("Visser", "1990-09-09")
    s.register(c, "1012CD", "3", "2024-05-01")
    s.register(c, "1013EF", "11", "2026-01-01")
    s.arrears("1012CD", "3", "Zorg", "2025-12-20", who=c)
    s.arrears("1013EF", "11", "Huur", "2026-02-01", who=c)
    s.arrears("1013EF", "11", "Energie", "2026-03-01", who=c)
    s.expected["VS-ARREARS-2-CREDITORS-90D"] += 1
    # A trajectory that ends before another organisation starts: no duplicate help.
    d = s.person("de Vries", "1970-12-12")
    s.register(d, "1014GH", "20", "2024-01-01")
    s.help_in_turn(d)
    # Two organisations at once: duplicate help.
    e = s.person("Smit", "1985-05-05")
    s.register(e, "1015JK", "4", "2024-01-01")
    s.debt_help(e, "Kredietbank", "T3", "started", "2025-04-01")
    s.debt_help(e, "Schuldhulpmaatje", "T4", "started", "2025-05-01")
    s.expected["DH-TWO-HOLDERS-SAME-HELP"] += 1
    # A crisis signal dated before another event of the household, arriving after it.
    f = s.person("Mulder", "1966-02-17")
    s.register(f, "1016LM", "8", "2024-01-01")
    s.arrears("1016LM", "8", "Huur", "2026-01-05", who=f, crisis=True)
    s.arrears("1016LM", "8", "Water", "2026-06-30", who=f)
    s.expected["VS-CRISIS-SIGNAL"] += 1
    # A signal nobody can be matched to: review.
    s.arrears("1011AB", "7", "DUO", "2026-02-02",
              who=Person("000000000", "Onbekend", "X", "1950-01-01"))  # fmt: skip
    return s


def as_iwmo(jw_message: bytes, number: str, code: str) -> bytes:
    """The same message in iWmo: namespaces and berichtcode (the structures are shared)."""
    text = jw_message.decode()
    text = text.replace(
        "http://www.istandaarden.nl/ijw/3_2/basisschema/schema",
        "http://www.istandaarden.nl/iwmo/3_2/basisschema/schema",
    )
    text = text.replace(
        f"http://www.istandaarden.nl/ijw/3_2/jw{number}/schema",
        f"http://www.istandaarden.nl/iwmo/3_2/wmo{number}/schema",
    )
    text = re.sub(r"<(/?)jw(\d+):", r"<\1wmo\2:", text).replace("xmlns:jw", "xmlns:wmo")
    text = re.sub(r"<(/?)ijw:", r"<\1iwmo:", text).replace("xmlns:ijw", "xmlns:iwmo")
    text = text.replace("Categorie>55<", "Categorie>02<").replace("Code>55A1", "Code>02A0")
    return re.sub(r"BerichtCode>\d+<", f"BerichtCode>{code}<", text).encode()
