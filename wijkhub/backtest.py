"""``wijkhub rules backtest``: what a rules file would have raised on the recorded history.

Reads the raw topics from the beginning with its own consumer (no group, no
commits: the workers are not disturbed), orders the events by event time and
runs them through the same pure stages the workers use (person stage, address
stage, household view, rules and lifecycle) in memory. Nothing is written to
Kafka and no alert is delivered. Alerts are counted when raised within
[from, to] (by the date of their newest fact), per rule and team, for the
active rules and for the candidate file, and the difference is printed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from wijkhub.schemas.registry import RAW_EVENT, Catalog, DecodeError
from wijkhub.settings import Settings
from wijkhub.streams import household, lifecycle, linking, residence, rules, toewijzing
from wijkhub.streams.district import DistrictTable
from wijkhub.streams.matching import Weights
from wijkhub.streams.routing import Router
from wijkhub.streams.topics import RAW_TOPICS


def recorded_events(settings: Settings, progress: Callable[[int], None]) -> list[dict[str, Any]]:
    """Every raw event on the cluster, decoded, in event-time order."""
    catalog = Catalog()
    consumer = KafkaConsumer(bootstrap_servers=settings.require_bootstrap(),
                             enable_auto_commit=False)  # fmt: skip
    try:
        tps = [TopicPartition(settings.topic_prefix + t, p) for t in RAW_TOPICS
               for p in consumer.partitions_for_topic(settings.topic_prefix + t) or []]  # fmt: skip
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        events: list[dict[str, Any]] = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for batch in consumer.poll(timeout_ms=1000).values():
                for record in batch:
                    try:
                        events.append({"key": record.key,
                                       "raw": catalog.decode(record.value, RAW_EVENT)})  # fmt: skip
                    except DecodeError:
                        continue  # the workers dead-letter these too
                progress(len(batch))
    finally:
        consumer.close()
    events.sort(key=lambda e: (e["raw"]["envelope"]["occurred_at"],
                               e["raw"]["envelope"]["received_at"]))  # fmt: skip
    return events


def replay(events: Iterable[dict[str, Any]], rule_set: tuple[rules.Rule, ...], router: Router,
           districts: DistrictTable | None, first: dt.date, last: dt.date) -> Counter:  # fmt: skip
    """Alerts raised in [first, last] per (rule, team), by the workers' own functions."""
    weights, by_id = Weights.shipped(), {r.id: r for r in rule_set}
    persons: dict[bytes, dict] = {}
    buildings: dict[str, dict] = {}
    parked: dict[bytes, list[dict]] = {}
    snapshots: dict[bytes, dict] = {}
    views: dict[str, dict] = {}
    raised: Counter = Counter()

    def to_household(route: linking.Route, raw: dict[str, Any]) -> None:
        state = buildings.setdefault(residence.building(route.address_ref), residence.new_address())
        until = dt.date.fromisoformat(route.until) if route.until else None
        applied = residence.apply(state, route.address_ref, route.role, until, raw)
        link = residence.decide_link(state, route.address_ref, route.role, raw, weights, 0.99)
        if isinstance(link, residence.Unmatched):
            return
        view = views.setdefault(link.household_ref, household.new_view(link.household_ref))
        if not household.apply(
            view,
            {
                "household_ref": link.household_ref,
                "member_change": applied.member_change,
                "event": raw,
            },
        ):
            return  # fmt: skip
        if districts is not None and view["address_ref"] and view.get("district") is None:
            found = districts.lookup(view["address_ref"])
            view["district"] = found.as_record() if found else None

        def team_for(rule: rules.Rule) -> str:
            return router.route(rule.id, view.get("district")).team

        for change in lifecycle.step(view, rules.holding(view, rule_set), by_id, team_for, 0):
            on = dt.date.fromisoformat(change.alert["on"])
            if change.kind == "raised" and first <= on <= last:
                raised[(change.rule.id, change.alert["team"])] += 1

    def route(key: bytes, raw: dict[str, Any]) -> None:
        person = raw["subject"]["person_ref"]
        state = persons.setdefault(key, linking.new_person()) if person else linking.new_person()
        decision = linking.route(raw, state)
        if isinstance(decision, linking.Park):
            parked.setdefault(key, []).append(raw)
            return
        if isinstance(decision, linking.Unlinkable | linking.HandOver):
            return  # review or hand-over: never an alert for a team here
        for r in decision:
            to_household(r, raw)
        if state["residences"]:
            for waiting in parked.pop(key, []):
                route(key, waiting)

    for item in events:
        key, raw = item["key"] or b"", item["raw"]
        if toewijzing.is_snapshot(raw):
            state_key = toewijzing.state_key(key, raw)
            result = toewijzing.diff(snapshots.get(state_key), raw)
            snapshots[state_key] = result.state
            for derived in result.events:
                route(key, derived)
        else:
            route(key, raw)
    return raised
