"""The household view as plain data, and how a linked event changes it.

Pure functions over JSON-ready dicts (the Faust table stores them as they
are): no Kafka here, so the logic is unit-tested without a broker and the
agent stays a thin loop. Applying the same event twice changes nothing,
which is what makes at-least-once delivery and replays safe.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

View = dict[str, Any]

# Involvement kinds, by the payload that starts them.
CASE_KIND = {
    "schuldhulp": "schuldhulp",
    "wmo": "zorg",
    "jeugd": "jeugd",
    "participatie": "participatie",
    "breed": "breed",
}
PROVISION_KIND = {"care": "zorg", "youth": "jeugd"}
MAX_SIGNALS = 200  # keep the view bounded; rule windows are at most 180 days


def new_view(household_ref: str) -> View:
    return {
        "household_ref": household_ref,
        "address_ref": None,
        "members": [],
        "involvements": [],
        "signals": [],
        "open_alerts": {},
        "updated_at": 0,
    }


def _iso(d: dt.date | dt.datetime) -> str:
    return d.isoformat()[:10]


def apply(view: View, linked: dict[str, Any]) -> bool:
    """Fold one linked event into the view; return False if it was already there."""
    event = linked["event"]
    env, subject = event["envelope"], event["subject"]
    name, payload = event["payload"]
    kind = name.rsplit(".", 1)[-1]
    event_id = env["event_id"]
    millis = int(env["occurred_at"].timestamp() * 1000)
    changed = False
    if subject.get("address_ref") and view["address_ref"] is None:
        view["address_ref"] = subject["address_ref"]
        changed = True
    person = subject.get("person_ref")
    if person and person not in view["members"] and kind == "PersonRegistered":
        view["members"].append(person)
        changed = True
    if kind == "ArrearsSignal":
        changed |= _add_signal(
            view, event_id, "arrears", payload["creditor_type"], payload["signal_date"]
        )
    elif kind == "BenefitEnded":
        changed |= _add_signal(
            view, event_id, "benefit-ended", payload["benefit_type"], payload["ended_on"]
        )
    elif kind == "ProvisionStarted":
        changed |= _add_involvement(
            view,
            PROVISION_KIND[env["domain"]],
            payload["provider"],
            payload["provision_id"],
            payload["started_on"],
            "",
            event_id,
        )
    elif kind == "CaseOpened":
        changed |= _add_involvement(
            view,
            CASE_KIND[payload["case_type"]],
            payload["team"],
            payload["case_id"],
            payload["opened_on"],
            payload["contact"],
            event_id,
        )
    if changed:
        view["updated_at"] = max(view["updated_at"], millis)
    return changed


def _add_signal(view: View, event_id: str, type_: str, category: str, on: dt.date) -> bool:
    if any(s["event_id"] == event_id for s in view["signals"]):
        return False
    view["signals"].append(
        {"event_id": event_id, "type": type_, "category": category, "on": _iso(on)}
    )
    view["signals"].sort(key=lambda s: s["on"])
    del view["signals"][:-MAX_SIGNALS]
    return True


def _add_involvement(
    view: View, kind: str, holder: str, ref: str, since: dt.date, contact: str, event_id: str
) -> bool:
    if any(i["ref"] == ref and i["kind"] == kind for i in view["involvements"]):
        return False
    view["involvements"].append(
        {
            "kind": kind,
            "holder": holder,
            "ref": ref,
            "since": _iso(since),
            "contact": contact,
            "event_id": event_id,
        }
    )
    return True


def to_record(view: View) -> dict[str, Any]:
    """The view in the shape of the HouseholdView Avro schema (published contract)."""
    return {
        "household_ref": view["household_ref"],
        "address_ref": view["address_ref"],
        "members": list(view["members"]),
        "involvements": [
            {
                k: (dt.date.fromisoformat(v) if k == "since" else v)
                for k, v in i.items()
                if k != "event_id"
            }
            for i in view["involvements"]
        ],
        "signals": [{**s, "on": dt.date.fromisoformat(s["on"])} for s in view["signals"]],
        "open_alerts": sorted(view["open_alerts"]),
        "updated_at": dt.datetime.fromtimestamp(view["updated_at"] / 1000, dt.UTC),
    }
