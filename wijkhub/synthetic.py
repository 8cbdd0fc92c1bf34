"""A synthetic municipality: households, people with valid (fake) BSNs, planted patterns.

Used by the demo, the tests and the benchmark. Deterministic for a seed, and
it knows which alerts it planted, so a run can be checked against the plan.
The BSNs pass the elfproef but are generated; no real person is described.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from wijkhub.streams.rules import DUPLICATE_HELP, EARLY_DETECTION

BASE_DAY = dt.date(2026, 3, 1)
TEAMS = ("Wijkteam Centrum", "Schuldhulp Noord", "Stadsbank", "Humanitas")


def make_bsn(rng: random.Random, taken: set[str] | None = None) -> str:
    """Nine digits that pass the elfproef; with ``taken``, one not in it (then added).

    A synthetic population needs unique BSNs: about 82 million numbers pass the elfproef,
    so 100,000 random draws give some 60 pairs of residents who are one person to the hub
    (registered at two addresses), and a planted pattern that is not what it was planted as.
    """
    while True:
        head = [rng.randint(0, 9) for _ in range(8)]
        if head[0] == 0:
            continue
        check = sum(d * w for d, w in zip(head, range(9, 1, -1), strict=True)) % 11
        bsn = "".join(map(str, head)) + str(check)
        if check < 10 and (taken is None or bsn not in taken):
            if taken is not None:
                taken.add(bsn)
            return bsn


@dataclass
class Municipality:
    """Source records per source name, and the alerts that must come out."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bad_lines: dict[str, list[bytes]] = field(default_factory=dict)
    expected: dict[str, int] = field(
        default_factory=lambda: {EARLY_DETECTION: 0, DUPLICATE_HELP: 0}
    )
    bsns: set[str] = field(default_factory=set)  # every resident's, once

    def add(self, source: str, record: dict[str, Any]) -> None:
        self.records.setdefault(source, []).append(record)

    def lines(self, source: str) -> list[bytes]:
        good = [json.dumps(r).encode() for r in self.records.get(source, [])]
        return good + self.bad_lines.get(source, [])

    @property
    def event_count(self) -> int:
        return sum(len(v) for v in self.records.values())


def _address(n: int) -> dict[str, str]:
    pc4 = 1000 + n % 200
    letters = "ABCDEFGHJKLMNPRSTVWXZ"
    return {
        "postcode": f"{pc4}{letters[n % 21]}{letters[(n // 21) % 21]}",
        "huisnummer": str(1 + n % 150),
    }


def _day(offset: int) -> str:
    return (BASE_DAY + dt.timedelta(days=offset)).isoformat()


@dataclass
class _Household:
    """Writes one household's source records into the town."""

    town: Municipality
    number: int
    rng: random.Random
    messages: Iterator[int]

    def __post_init__(self) -> None:
        self.address = _address(self.number)
        self.people = [make_bsn(self.rng, self.town.bsns) for _ in range(self.rng.randint(1, 4))]
        for bsn in self.people:
            self.add("population", "person_registered", "brp", _day(-400), bsn=bsn)

    def add(self, source: str, kind: str, prefix: str, day: str, **fields: Any) -> None:
        record = {"kind": kind, "message_id": f"{prefix}-{next(self.messages)}", "occurred_at": day}
        self.town.add(source, {**record, **fields, **self.address})

    def arrears(self, creditor: str, day: int) -> None:
        self.add(
            "vroegsignalering",
            "arrears_signal",
            "vs",
            _day(day),
            signal_id=f"S{self.number}-{day}-{creditor}",
            creditor_type=creditor,
            amount_cents=self.rng.randint(5_000, 250_000),
            arrears_months=self.rng.randint(1, 4),
        )

    def case(self, team: str, bsn: str, case_type: str = "schuldhulp") -> None:
        self.add(
            "teams",
            "case_opened",
            "case",
            _day(self.rng.randint(0, 60)),
            case_id=f"C{self.number}-{team[:3]}",
            team=team,
            case_type=case_type,
            bsn=bsn,
            contact=f"{team.lower().replace(' ', '.')}@gemeente.example",
        )


def generate(households: int = 300, seed: int = 2026, with_bad_input: bool = True) -> Municipality:
    """Plant, per 10 households: 1 early-detection pattern, 1 duplicate-help pattern,
    1 near miss of each kind (must raise nothing), the rest plain background."""
    rng = random.Random(seed)
    town = Municipality()
    messages = iter(range(1, 10**9))
    for h in range(households):
        home = _Household(town, h, rng, messages)
        people, arrears, case = home.people, home.arrears, home.case
        pattern = h % 10
        if pattern == 0:  # early detection: rent + energy arrears within 90 days
            arrears("Huur", 10)
            arrears("Energie", 10 + rng.randint(1, 80))
            town.expected[EARLY_DETECTION] += 1
        elif pattern == 1:  # duplicate help: two debt-help cases at different teams
            case(TEAMS[1], people[0])
            case(TEAMS[2], people[-1])
            town.expected[DUPLICATE_HELP] += 1
        elif pattern == 2:  # near miss: two arrears of one creditor type; 100 days apart
            arrears("Huur", 5)
            arrears("Huur", 40)
            arrears("Water", 150)
        elif pattern == 3:  # near miss: one debt-help case and a benefit granted
            case(TEAMS[0], people[0])
            home.add(
                "income",
                "benefit_changed",
                "inc",
                _day(20),
                benefit_id=f"G{h}",
                benefit_type="bijstand",
                change="granted",
                bsn=people[0],
            )
        elif pattern == 4:  # background: a benefit ended
            home.add(
                "income",
                "benefit_changed",
                "inc",
                _day(30),
                benefit_id=f"B{h}",
                change="ended",
                benefit_type="bijstand",
                reason="werk gevonden",
                bsn=people[0],
            )
    if with_bad_input:
        town.bad_lines["vroegsignalering"] = [
            b"this is not json",
            json.dumps(
                {
                    "kind": "arrears_signal",
                    "message_id": "vs-bad-1",
                    "signal_id": "X",
                    "creditor_type": "Huur",
                    "amount_cents": 100,
                    "arrears_months": 1,
                    "occurred_at": "2027-06-31",
                    "postcode": "1000AA",
                    "huisnummer": "1",
                }
            ).encode(),
        ]
        town.bad_lines["population"] = [
            json.dumps(
                {
                    "kind": "person_registered",
                    "message_id": "brp-bad-1",
                    "occurred_at": "2025-01-01",
                    "bsn": "123456780",
                    "postcode": "1000AA",
                    "huisnummer": "1",
                }
            ).encode(),
        ]
    return town


SOURCE_ORDER = ("population", "teams", "income", "vroegsignalering")
