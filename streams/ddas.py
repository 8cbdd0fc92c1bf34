"""The DDAS exchange model (VNG, v0.9): its value lists, and vroegsignalen as a DDAS delivery.

Municipalities report every vroegsignaal's contact attempts, status and end result in
this model (Wgs; DDAS with CBS). The team records them in the inbox in the same terms,
so the lists the inbox offers, the lifecycle checks and ``wijkhub export ddas`` writes
are one set: the enumerations of the JSON schema itself (``ddas_uitwisselmodel.json``,
VNG's file, unmodified; a new DDAS version is a new copy of it). An export is validated
against that schema before it is written (:func:`problems`), so a delivery CBS would
refuse never leaves the hub.

What a delivery holds, and why (pure functions over published Alert records):
- a *vroegsignaalzaak* per early-detection alert raised in the period that rests on at
  least one arrears signal: its signals, when it was picked up, its contact attempts and
  its end result;
- a *vroegsignaal* per arrears signal behind those alerts: its id (the hub's event id,
  derived from the creditor's message id), signal date, partner type, warm hand-over and
  status. ``client`` stays empty: the hub holds no clear BSN, and name and address are not
  on alerts; the municipality's case system adds them where CBS asks for them.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from jsonschema import Draft202012Validator

SCHEMA: dict[str, Any] = json.loads(
    Path(__file__).with_name("ddas_uitwisselmodel.json").read_text(encoding="utf-8")
)


def _enum(name: str) -> tuple[str, ...]:
    return tuple(cast(list[str], SCHEMA["$defs"][name]["enum"]))


CONTACT_KINDS = _enum("EnumContactsoort")  # soort of a contactpoging
DAY_PARTS = _enum("EnumDagdeel")  # dagdeel: Ochtend, Middag, Avond
END_RESULTS = _enum("EnumEindresultaat")  # resultaat of a vroegsignaalzaak
SIGNAL_STATUSES = _enum("EnumSignaalstatus")  # status of a vroegsignaal
SIGNAL_PARTNERS = _enum("EnumSignaalpartner")
NOT_PICKED_UP = "Nog niet opgepakt"
OTHER_PARTNER = "Overige"
ARREARS_FACT = "debt.arrears-signal"  # the Alert fact type of an arrears signal (rules.py)


def problems(document: Mapping[str, Any]) -> list[str]:
    """Every reason the document does not validate against the DDAS schema, one line each
    (JSON path: message), in a stable order; empty when it validates."""
    validator = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)
    found = []
    for error in validator.iter_errors(document):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        found.append(f"{path}: {error.message}")
    return sorted(found)


def _day(value: dt.datetime | dt.date | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value[:10]
    return (value.astimezone(dt.UTC) if isinstance(value, dt.datetime) else value).isoformat()[:10]


def is_case(alert: Mapping[str, Any]) -> bool:
    """An alert a DDAS delivery reports: early detection resting on an arrears signal."""
    return alert["family"] == "early_detection" and any(
        f["type"] == ARREARS_FACT for f in alert["facts"]
    )


def _status(alert: Mapping[str, Any]) -> str | None:
    """The signal status DDAS knows: not picked up yet, or the reason it never will be;
    a signal that was picked up has none of these (the field is then left out)."""
    if (
        alert["state"] == "open"
        and not alert.get("claimed_by")
        and not alert.get("contact_attempts")
    ):
        return NOT_PICKED_UP
    result = alert.get("end_result")
    return result if result in SIGNAL_STATUSES else None


def _attempt(a: Mapping[str, Any]) -> dict[str, Any]:
    return {"soort": a["kind"], "bereikt": a["reached"], "datum": _day(a["on"]),
            "dagdeel": a["day_part"]}  # fmt: skip


def _case(alert: Mapping[str, Any], signal_ids: list[str]) -> dict[str, Any]:
    case: dict[str, Any] = {
        "matchingsdatum": _day(alert["raised_at"]),
        "vroegsignalen": [{"ID": i} for i in signal_ids],
        "contactpogingen": [_attempt(a) for a in alert.get("contact_attempts") or []],
    }
    picked_up = _day(alert.get("acknowledged_at"))
    if picked_up:
        case["datum_opgepakt"] = picked_up
    if alert.get("end_result"):
        case["resultaat"] = alert["end_result"]
    return case


def document(
    alerts: Iterable[Mapping[str, Any]],
    start: dt.date,
    end: dt.date,
    municipality: str,
    supplier: str,
    organisation: str,
    delivered_at: dt.datetime,
    partner_of: Callable[[Mapping[str, Any]], str] | None = None,
) -> dict[str, Any]:
    """One DDAS delivery for the municipality: the vroegsignaalzaken raised from ``start``
    to ``end`` (inclusive, by raised date) and their signals, in a stable order.

    ``partner_of(fact)`` names an arrears fact's signal partner type (rules.creditor_of);
    a type outside DDAS's list is reported as "Overige".
    """
    signals: dict[str, dict[str, Any]] = {}
    cases = []
    chosen = [a for a in alerts if is_case(a) and start <= a["raised_at"].date() <= end]
    for alert in sorted(chosen, key=lambda a: (a["raised_at"], a["alert_id"])):
        ids = []
        for fact in alert["facts"]:
            if fact["type"] != ARREARS_FACT:
                continue
            ids.append(fact["event_id"])
            partner = partner_of(fact) if partner_of else OTHER_PARTNER
            signal: dict[str, Any] = {
                "ID": fact["event_id"],
                "signaaldatum": _day(fact["occurred_at"]),
                "warmeOverdracht": bool(alert.get("warm_handover")),
                "signaalpartner": {
                    "type": partner if partner in SIGNAL_PARTNERS else OTHER_PARTNER
                },
                "client": {},
            }
            status = _status(alert)
            if status:
                signal["status"] = status
            signals.setdefault(fact["event_id"], signal)  # the first case that names it
        cases.append(_case(alert, ids))
    return {
        "codeGegevensleverancier": supplier,
        "startdatumLevering": start.isoformat(),
        "einddatumLevering": end.isoformat(),
        "aanleverdatumEnTijd": delivered_at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "leveringen": [
            {
                "teller": 1,
                "gemeentecode": municipality,
                "aanleverende_organisatie": {"naam": organisation},
                "vroegsignalen": list(signals.values()),
                "vroegsignaalzaken": cases,
            }
        ],
    }
