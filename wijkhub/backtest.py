"""``wijkhub rules backtest``: what a rules file would have raised on the recorded history.

Reads the raw topics and the team actions from the beginning with its own
consumer (no group, no commits: the workers are not disturbed) and runs them
through the worker's own stage objects in memory
(:mod:`wijkhub.streams.harness`), built from the same settings. Nothing is
written to Kafka and no alert is delivered. Because the stages' results do
not depend on arrival order, the backtest raises what the workers raised on
the same input. Alerts are counted when raised within [from, to] (by the date
of their newest fact at raising), per rule and team, for the active rules and
for the candidate file, and the difference is printed.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections import Counter
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition

from wijkhub.kafka import connect
from wijkhub.schemas.registry import Catalog
from wijkhub.settings import Settings
from wijkhub.streams.access import OPERATOR
from wijkhub.streams.harness import build_stages, run_all
from wijkhub.streams.household_stage import WITHDRAWN
from wijkhub.streams.topics import ALERT_ACTIONS, PERSON_INPUTS, logical_name

Record = tuple[str, bytes, bytes]


def recorded_records(settings: Settings, progress: Callable[[int], None]) -> list[Record]:
    """Every record on the raw topics and alert-actions: (logical topic, key, value)."""
    consumer = KafkaConsumer(**connect(settings, OPERATOR).kafka_python(),
                             enable_auto_commit=False)  # fmt: skip
    names = [settings.topic_prefix + t for t in (*PERSON_INPUTS, ALERT_ACTIONS)]
    try:
        tps = [TopicPartition(t, p) for t in names for p in consumer.partitions_for_topic(t) or []]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        end = consumer.end_offsets(tps)
        records: list[Record] = []
        while any(consumer.position(tp) < end[tp] for tp in tps):
            for batch in consumer.poll(timeout_ms=1000).values():
                records += [(logical_name(r.topic, settings.topic_prefix), r.key or b"",
                             r.value or b"") for r in batch]  # fmt: skip
                progress(len(batch))
    finally:
        consumer.close()
    return records


def replay(
    records: list[Record],
    settings: Settings,
    rules_file: str | None,
    first: dt.date,
    last: dt.date,
) -> Counter:
    """Alerts raised in [first, last] per (rule, team), by the workers' own stages."""
    catalog = Catalog()
    # Counts per rule and team only: the ids need not be the worker's, so an operator
    # runs this without the id key (a key for this run alone).
    settings = settings.with_(id_key=secrets.token_urlsafe(32).encode())
    stages = build_stages(settings, catalog, rules_file=rules_file, clock=lambda: 0.0)
    harness = run_all(stages, records)
    raised: Counter = Counter()
    for alert in harness.alerts(catalog).values():
        if alert["change"] != WITHDRAWN and first <= alert["raised_at"].date() <= last:
            raised[(alert["rule_id"], alert["team"])] += 1
    return raised
