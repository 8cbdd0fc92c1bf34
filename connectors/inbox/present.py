"""What a member reads: Dutch labels, and the household timeline as far as a rule may see it.

Pure functions; the web module renders their output. The timeline shows
dates, kinds and organisations, never amounts or diagnoses: the household
view does not hold them, and a rule's alert shows only the domains its
legal basis (or a person's consent) allows.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from wijkhub.streams import household
from wijkhub.streams.lifecycle import CONDITION_ENDED, EXPIRED, OUTCOMES
from wijkhub.streams.rules import BENEFIT_CHANGES, Rule, visible_to

STATES = {"open": "Nieuw", "acknowledged": "In behandeling", "resolved": "Afgesloten"}
SEVERITY = {"low": "Laag", "medium": "Gemiddeld", "high": "Hoog", "critical": "Crisis"}
FAMILY = {"early_detection": "Vroegsignalering", "duplicate_help": "Dubbele hulp"}
RESOLUTIONS = {
    **OUTCOMES,
    CONDITION_ENDED: "Vanzelf opgelost (situatie voorbij)",
    EXPIRED: "Verlopen (na twee jaar)",
}
DOMAINS = {
    "debt": "schulden",
    "income": "inkomen",
    "care": "Wmo-zorg",
    "youth": "jeugdhulp",
    "teams": "wijkteams",
    "population": "BRP",
}


def day(value: dt.date | dt.datetime | None) -> str:
    return "" if value is None else value.strftime("%d-%m-%Y")


def when(value: dt.datetime | None) -> str:
    return "" if value is None else value.astimezone(dt.UTC).strftime("%d-%m-%Y %H:%M UTC")


def _signal_text(s: household.Signal) -> str:
    if s["type"] == "arrears":
        return f"Betalingsachterstand gemeld (schuldeiser: {s['category']})"
    if s["type"].startswith("benefit-"):
        change = BENEFIT_CHANGES.get(s["type"].removeprefix("benefit-"), s["type"])
        return f"Uitkering {s['category']}: {change}"
    if s["type"] == "provision-requested":
        return f"Voorziening aangevraagd ({s['category']})"
    return f"Signaal: {s['type']}"


def timeline(record: dict[str, Any] | None, rule: Rule | None) -> list[tuple[str, str]]:
    """(date, text) of what the rule may see of the household, oldest first.

    Without the rule (it was removed from the rules file) nothing is shown:
    the legal basis for showing the household is then unknown.
    """
    if record is None or rule is None:
        return []
    view = visible_to(rule, household.from_record(record))
    items = [(s["on"], _signal_text(s)) for s in view["signals"]]
    for i in view["involvements"]:
        contact = f", contact: {i['contact']}" if i["contact"] else ""
        items.append((i["since"], f"Hulp ({i['kind']}) bij {i['holder']}{contact}"))
    return [(day(dt.date.fromisoformat(on)), text) for on, text in sorted(items)]


def coordinator(record: dict[str, Any] | None) -> str:
    c = (record or {}).get("coordinator")
    return f"{c['team']} ({c['contact']})" if c else "Geen regisseur bekend"
