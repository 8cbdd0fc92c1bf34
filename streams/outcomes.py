"""Outcome per rule: how each alert ended, the one measure of a rule's real precision.

A rule is only as good as what its alerts led to. The team's outcome says it: help
accepted or refused (the alert was worth a visit), "no action needed" or "wrong link"
(it was not: the rule fired on the wrong pattern, or linking put the wrong people
together). The worker counts every published outcome per rule
(``wijkhub_alert_outcomes_total``), and ``wijkhub rules report`` reads the same from the
alerts topic, with each rule's share of alerts that were not needed.

One place classifies a resolution into an outcome (:func:`of`), for both. Pure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from wijkhub.streams.lifecycle import CONDITION_ENDED, EXPIRED, NOT_NEEDED, OUTCOMES

CONDITION_ENDED_LABEL = "condition_ended"
# The outcomes a report shows, in its columns' order; the first five are the issue's.
REPORTED = ("help_accepted", "help_refused", "no_action_needed", "wrong_link", EXPIRED,
            "contact_made", CONDITION_ENDED_LABEL)  # fmt: skip


def of(state: str, resolution: str | None) -> str | None:
    """The outcome label of an alert in ``state`` resolved with ``resolution``; None while
    it is open, and for a withdrawal (the facts moved to another household: not an
    outcome of the rule)."""
    if state != "resolved" or resolution is None:
        return None
    if resolution in OUTCOMES or resolution == EXPIRED:
        return resolution
    return CONDITION_ENDED_LABEL if resolution == CONDITION_ENDED else None


class Row(TypedDict):
    rule: str
    alerts: int  # raised in the period
    open: int
    outcomes: dict[str, int]  # label → alerts, every label of REPORTED
    not_needed_share: float | None  # (no action needed + wrong link) / closed; None: none


def report(alerts: Iterable[Mapping[str, Any]], start: dt.date, end: dt.date) -> list[Row]:
    """Per rule, the alerts raised from ``start`` to ``end`` (inclusive) by outcome."""
    rows: dict[str, Row] = {}
    for alert in alerts:
        if not start <= alert["raised_at"].date() <= end:
            continue
        row = rows.setdefault(alert["rule_id"], {
            "rule": alert["rule_id"], "alerts": 0, "open": 0,
            "outcomes": dict.fromkeys(REPORTED, 0), "not_needed_share": None})  # fmt: skip
        label = of(alert["state"], alert.get("resolution"))
        if alert["state"] != "resolved":
            row["open"] += 1
        elif label is None:
            continue  # withdrawn: counted nowhere
        else:
            row["outcomes"][label] += 1
        row["alerts"] += 1
    for row in rows.values():
        closed = sum(row["outcomes"].values())
        if closed:
            row["not_needed_share"] = round(sum(row["outcomes"][o] for o in NOT_NEEDED) / closed, 4)
    return [rows[r] for r in sorted(rows)]
