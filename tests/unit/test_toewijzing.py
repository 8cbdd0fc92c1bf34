"""Diffing 301 snapshots (a full set per client and provider) into assignment events."""

import datetime as dt

from wijkhub.streams import toewijzing

from builders import snapshot

APRIL, MAY = dt.date(2026, 4, 1), dt.date(2026, 5, 1)


def raw(provider, numbers, on=APRIL, **kw):
    """A 301 dated ``on`` whose assignments all started in April."""
    event = snapshot(provider, numbers, on=on, **kw)["event"]
    for a in event["payload"][1]["assignments"]:
        a["start_on"] = a["assigned_on"] = APRIL
    return event


def changes(result):
    return [(e["payload"][1]["change"], e["payload"][1]["number"]) for e in result.events]


def test_the_first_snapshot_assigns_everything_in_it():
    result = toewijzing.diff(None, raw("AGB1", ["2", "1"]))
    assert changes(result) == [("assigned", "1"), ("assigned", "2")]
    assert result.state["snapshot_on"] == "2026-04-01"


def test_a_missing_assignment_is_withdrawn_and_a_new_one_assigned():
    first = toewijzing.diff(None, raw("AGB1", ["1", "2"]))
    second = toewijzing.diff(first.state, raw("AGB1", ["2", "3"], on=MAY))
    assert changes(second) == [("withdrawn", "1"), ("assigned", "3")]
    withdrawn = second.events[0]
    assert withdrawn["payload"][0] == toewijzing.CHANGED
    assert withdrawn["envelope"]["type"] == "t"  # only a snapshot type is renamed
    assert withdrawn["payload"][1]["snapshot_on"] == MAY


def test_a_changed_end_date_is_a_change_and_an_ended_assignment_is_withdrawn():
    first = toewijzing.diff(None, raw("AGB1", ["1", "2"]))
    later = raw("AGB1", ["1", "2"], on=MAY)
    later["payload"][1]["assignments"][0]["end_on"] = dt.date(2026, 12, 31)
    later["payload"][1]["assignments"][1]["end_on"] = dt.date(2026, 4, 30)
    assert changes(toewijzing.diff(first.state, later)) == [("changed", "1"), ("withdrawn", "2")]


def test_a_redelivered_snapshot_yields_nothing_new():
    event = raw("AGB1", ["1"])
    first = toewijzing.diff(None, event)
    assert toewijzing.diff(first.state, event).events == []


def test_derived_event_ids_are_deterministic_and_distinct():
    event = raw("AGB1", ["1", "2"])
    ids = [e["envelope"]["event_id"] for e in toewijzing.diff(None, event).events]
    again = [e["envelope"]["event_id"] for e in toewijzing.diff(None, event).events]
    assert ids == again and len(set(ids)) == 2 and event["envelope"]["event_id"] not in ids


def test_an_older_snapshot_arriving_late_changes_nothing():
    newer = toewijzing.diff(None, raw("AGB1", ["1"], on=MAY))
    late = toewijzing.diff(newer.state, raw("AGB1", [], on=APRIL))
    assert late.stale and late.events == [] and late.state == newer.state
