"""A synthetic municipality: households, people with valid (fake) BSNs, planted patterns.

Used by the demo, the tests and the benchmark. Deterministic for a seed, and
it knows which alerts it planted, so a run can be checked against the plan.
The BSNs pass the elfproef but are generated; no real person is described.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from dataclasses import dataclass, field
from typing import Any

from wijkhub.streams.rules import DUPLICATE_HELP, EARLY_DETECTION

BASE_DAY = dt.date(2026, 3, 1)
CREDITORS = ("Energie", "Huur", "Water", "Zorgverzekering")
TEAMS = ("Wijkteam Centrum", "Schuldhulp Noord", "Stadsbank", "Humanitas")
PROVIDERS = ("01234567", "02345678", "03456789")


def make_bsn(rng: random.Random) -> str:
    """Nine digits that pass the elfproef."""
    while True:
        head = [rng.randint(0, 9) for _ in range(8)]
        if head[0] == 0:
            continue
        check = sum(d * w for d, w in zip(head, range(9, 1, -1), strict=True)) % 11
        if check < 10:
            return "".join(map(str, head)) + str(check)


@dataclass
class Municipality:
    """Source records per source name, and the alerts that must come out."""

    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    bad_lines: dict[str, list[bytes]] = field(default_factory=dict)
    expected: dict[str, int] = field(default_factory=lambda: {EARLY_DETECTION: 0, DUPLICATE_HELP: 0})

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
    return {"postcode": f"{pc4}{letters[n % 21]}{letters[(n // 21) % 21]}",
            "huisnummer": str(1 + n % 150)}  # fmt: skip


def _day(offset: int) -> str:
    return (BASE_DAY + dt.timedelta(days=offset)).isoformat()


def generate(households: int = 300, seed: int = 2026, with_bad_input: bool = True) -> Municipality:
    """Plant, per 10 households: 1 early-detection pattern, 1 duplicate-help pattern,
    1 near miss of each kind (must raise nothing), the rest plain background."""
    rng = random.Random(seed)
    town = Municipality()
    msg = iter(range(1, 10**9))
    for h in range(households):
        addr = _address(h)
        people = [make_bsn(rng) for _ in range(rng.randint(1, 4))]
        for bsn in people:
            town.add("population", {"kind": "person_registered", "message_id": f"brp-{next(msg)}",
                                    "occurred_at": _day(-400), "bsn": bsn, **addr})  # fmt: skip
        pattern = h % 10

        def arrears(creditor: str, day: int) -> None:
            town.add("vroegsignalering", {
                "kind": "arrears_signal", "message_id": f"vs-{next(msg)}",
                "signal_id": f"S{h}-{day}-{creditor}", "creditor_type": creditor,
                "amount_cents": rng.randint(5_000, 250_000), "arrears_months": rng.randint(1, 4),
                "occurred_at": _day(day), **addr,
            })  # fmt: skip

        def case(team: str, bsn: str, case_type: str = "schuldhulp") -> None:
            town.add("teams", {
                "kind": "case_opened", "message_id": f"case-{next(msg)}",
                "case_id": f"C{h}-{team[:3]}", "team": team, "case_type": case_type,
                "occurred_at": _day(rng.randint(0, 60)), "bsn": bsn,
                "contact": f"{team.lower().replace(' ', '.')}@gemeente.example",
            })  # fmt: skip

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
        elif pattern == 3:  # near miss: one debt-help case and one care provider
            case(TEAMS[0], people[0])
            town.add("care", {"kind": "provision_started", "domain": "care",
                              "message_id": f"wmo-{next(msg)}", "provision_id": f"T{h}",
                              "provider": PROVIDERS[0], "product_category": "02",
                              "occurred_at": _day(20), "bsn": people[0]})  # fmt: skip
        elif pattern == 4:  # background: a benefit ended
            town.add("income", {"kind": "benefit_ended", "message_id": f"inc-{next(msg)}",
                                "benefit_id": f"B{h}", "benefit_type": "bijstand",
                                "reason": "werk gevonden", "occurred_at": _day(30),
                                "bsn": people[0]})  # fmt: skip
    if with_bad_input:
        town.bad_lines["vroegsignalering"] = [
            b"this is not json",
            json.dumps({"kind": "arrears_signal", "message_id": "vs-bad-1",
                        "signal_id": "X", "creditor_type": "Huur", "amount_cents": 100,
                        "arrears_months": 1, "occurred_at": "2027-06-31",
                        "postcode": "1000AA", "huisnummer": "1"}).encode(),
        ]  # fmt: skip
        town.bad_lines["population"] = [
            json.dumps({"kind": "person_registered", "message_id": "brp-bad-1",
                        "occurred_at": "2025-01-01", "bsn": "123456780",
                        "postcode": "1000AA", "huisnummer": "1"}).encode(),
        ]  # fmt: skip
    return town


SOURCE_ORDER = ("population", "teams", "care", "income", "vroegsignalering")
