"""Turn iJw/iWmo 301 snapshots into assignment events by diffing them.

A 301 (toewijzing) is the *full* set of one client's assignments at one
provider; a removed assignment is news too, and only a diff against the
previous snapshot shows it. The person stage keeps every snapshot of a
client and diffs them per provider in date order with :func:`diff`; what
comes out are ``ToewijzingChanged`` events (assigned, changed, withdrawn),
each with an id derived from the snapshot's id, so a redelivered snapshot
yields the same ids and the same (empty) diff.

Pure functions over the decoded Avro records: no Kafka here.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

SNAPSHOT = "nl.wijkhub.care.ToewijzingSnapshot"
CHANGED = "nl.wijkhub.care.ToewijzingChanged"
DERIVED_NAMESPACE = uuid.UUID("9b0e2f4e-3a8c-4d43-a0f4-5f9d2c6e7b01")

Record = dict[str, Any]
State = dict[str, Any]  # {"snapshot_on": iso date, "assignments": {number: {...}}}


def is_snapshot(event: Record) -> bool:
    name: str = event["payload"][0]  # the payload union's record name
    return name == SNAPSHOT


@dataclass(frozen=True)
class Diff:
    state: State  # the new state to store
    events: list[Record]  # the ToewijzingChanged events, in assignment-number order
    stale: bool = False  # the snapshot is older than the stored one: ignored


def _assignment(a: Record) -> Record:
    return {
        "product_category": a["product_category"],
        "product_code": a["product_code"],
        "start_on": a["start_on"].isoformat(),
        "end_on": a["end_on"].isoformat() if a["end_on"] else None,
    }


def diff(previous: State | None, snapshot: Record) -> Diff:
    """Compare ``snapshot`` with the stored state of the same client and provider.

    An assignment that ended before the snapshot date counts as absent. A
    snapshot dated before the stored one arrived late: it changes nothing
    (the newer snapshot already said what holds).
    """
    payload = snapshot["payload"][1]
    on: dt.date = payload["snapshot_on"]
    previous = previous or {"snapshot_on": None, "assignments": {}}
    if previous["snapshot_on"] and on.isoformat() < previous["snapshot_on"]:
        return Diff(previous, [], stale=True)
    current = {
        a["number"]: _assignment(a)
        for a in payload["assignments"]
        if a["end_on"] is None or a["end_on"] >= on
    }
    before = previous["assignments"]
    changes: list[tuple[str, str, Record]] = []
    for number in sorted(before.keys() | current.keys()):
        if number not in current:
            changes.append(("withdrawn", number, before[number]))
        elif number not in before:
            changes.append(("assigned", number, current[number]))
        elif before[number] != current[number]:
            changes.append(("changed", number, current[number]))
    events = [_changed_event(snapshot, change, number, a) for change, number, a in changes]
    return Diff({"snapshot_on": on.isoformat(), "assignments": current}, events)


def _changed_event(snapshot: Record, change: str, number: str, a: Record) -> Record:
    env = snapshot["envelope"]
    payload = snapshot["payload"][1]
    event_id = uuid.uuid5(DERIVED_NAMESPACE, f"{env['event_id']}\x1f{number}\x1f{change}")
    return {
        "envelope": {
            **env,
            "event_id": str(event_id),
            "type": env["type"].replace("toewijzing-snapshot", "toewijzing-changed"),
        },
        "subject": snapshot["subject"],
        "payload": (
            CHANGED,
            {
                "provider": payload["provider"],
                "number": number,
                "change": change,
                "product_category": a["product_category"],
                "product_code": a["product_code"],
                "start_on": dt.date.fromisoformat(a["start_on"]),
                "end_on": dt.date.fromisoformat(a["end_on"]) if a["end_on"] else None,
                "snapshot_on": payload["snapshot_on"],
            },
        ),
    }
