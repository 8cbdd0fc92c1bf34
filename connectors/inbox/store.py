"""The inbox's read model: the latest state of every alert, household view and contact card.

Built from the three compacted topics (alerts, household-view, contact-cards) read from the
beginning at start, then followed. Views are kept encoded and decoded only
when a member opens an alert, so a municipality's households fit in a few
tens of megabytes. Nothing here is written back: the streams own the state.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from wijkhub.kafka import connect
from wijkhub.logs import get as get_logger
from wijkhub.metrics import Metrics
from wijkhub.schemas.registry import (
    ALERT,
    AUDIT_ENTRY,
    CONTACT_CARD,
    HOUSEHOLD_VIEW,
    Catalog,
    DecodeError,
)
from wijkhub.settings import Settings
from wijkhub.streams.access import INBOX
from wijkhub.streams.rules import SEVERITIES
from wijkhub.streams.topics import ALERTS, AUDIT, CONTACT_CARDS, full_name
from wijkhub.streams.topics import HOUSEHOLD_VIEW as HOUSEHOLD_VIEW_TOPIC

log = get_logger("wijkhub.inbox")
ACTIVE = ("open", "acknowledged")


class AlertStore:
    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or Catalog()
        self.alerts: dict[str, dict[str, Any]] = {}
        self.views: dict[str, bytes] = {}
        # contact cards by alert id, kept encoded like the views (decoded when one is shown)
        self.cards: dict[str, bytes] = {}
        self.ready = asyncio.Event()
        self._changed = asyncio.Condition()

    def apply_alert(self, alert: dict[str, Any]) -> None:
        known = self.alerts.get(alert["alert_id"])
        if known is None or alert["revision"] >= known["revision"]:
            self.alerts[alert["alert_id"]] = alert

    def for_team(
        self,
        team: str,
        rule: str | None = None,
        states: Iterable[str] = ACTIVE,
        recipients: Callable[[dict[str, Any]], list[str]] = lambda a: [a["team"]],
    ) -> list[dict[str, Any]]:
        """The alerts a team receives (``recipients``: the responsible team and involved
        parties) in the given states, most severe first, then newest first."""
        wanted = set(states)
        found = [
            a
            for a in self.alerts.values()
            if a["state"] in wanted
            and (rule is None or a["rule_id"] == rule)
            and team in recipients(a)
        ]
        return sorted(
            found,
            key=lambda a: (
                -SEVERITIES.index(a["severity"]),
                -a["raised_at"].timestamp(),
                a["alert_id"],
            ),
        )

    def measure(self, metrics: Metrics, now: dt.datetime) -> None:
        """Open alerts per team, severity and state, and the oldest unacknowledged one:
        the figures a municipality is held to (contact within 3 working days on a crisis)."""
        counts: dict[tuple[str, str, str], int] = {}
        oldest: dict[tuple[str, str], float] = {}
        for a in self.alerts.values():
            if a["state"] not in ACTIVE:
                continue
            key = (a["team"], a["severity"], a["state"])
            counts[key] = counts.get(key, 0) + 1
            if a["state"] == "open":
                since = a.get("published_at") or a["raised_at"]
                age = max(0.0, (now - since).total_seconds())
                group = (a["team"], a["severity"])
                oldest[group] = max(oldest.get(group, 0.0), age)
        metrics.open_alerts.clear()
        metrics.unacknowledged_age.clear()
        for labels, n in counts.items():
            metrics.open_alerts.labels(*labels).set(n)
        for group, age in oldest.items():
            metrics.unacknowledged_age.labels(*group).set(age)

    def card(self, alert_id: str) -> dict[str, Any] | None:
        """The alert's contact card (None: no card, the alert closed, or nobody to reach)."""
        value = self.cards.get(alert_id)
        return None if value is None else self.catalog.decode(value, CONTACT_CARD)

    def view(self, household_ref: str) -> dict[str, Any] | None:
        value = self.views.get(household_ref)
        return None if value is None else self.catalog.decode(value, HOUSEHOLD_VIEW)

    async def wait_for(self, alert_id: str, after_revision: int, timeout: float) -> bool:
        """Until the alert has a revision newer than ``after_revision`` (True) or timeout."""

        def newer() -> bool:
            revision: int = self.alerts.get(alert_id, {}).get("revision", 0)
            return revision > after_revision

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(newer), timeout)
            except TimeoutError:
                return False
        return True

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


async def follow(
    settings: Settings, store: AlertStore, partitions: Callable[[str], Awaitable[set[int]]]
) -> None:
    """Read the alerts, household-view and contact-cards topics into ``store``, forever.

    ``partitions`` tells a topic's partitions (the producer's ``partitions_for``: the
    consumer of aiokafka 0.14 has no public call that fetches them for an assignment).
    """
    logical = (ALERTS, HOUSEHOLD_VIEW_TOPIC, CONTACT_CARDS)
    topics = [full_name(t, settings.topic_prefix) for t in logical]
    kinds = dict(zip(topics, logical, strict=True))
    consumer = AIOKafkaConsumer(  # the inbox principal: reads alerts, views and cards
        **connect(settings, INBOX).aiokafka(),
        enable_auto_commit=False,
        client_id=f"{settings.app_id}-inbox",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in sorted(await partitions(t))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        end = await consumer.end_offsets(tps)
        while True:
            batches = await consumer.getmany(timeout_ms=500, max_records=2000)
            for tp, records in batches.items():
                for record in records:
                    _apply(store, record, kinds[tp.topic])
            if batches:
                await store.notify()
            if not store.ready.is_set():
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= end[tp] for pos, tp in zip(positions, tps, strict=True)):
                    store.ready.set()
                    log.info("inbox caught up", alerts=len(store.alerts), views=len(store.views))
    finally:
        await consumer.stop()


def _apply(store: AlertStore, record: Any, topic: str) -> None:
    if topic != ALERTS:
        # no view any more (erased, moved); no card any more (closed, erased)
        kept = store.cards if topic == CONTACT_CARDS else store.views
        if record.key and record.value is None:
            kept.pop(record.key.decode(), None)
        elif record.key:
            kept[record.key.decode()] = record.value
        return
    if record.value is None:  # a tombstone: the alert is removed (term passed, or erased)
        store.alerts.pop((record.key or b"").decode(), None)
        return
    try:
        store.apply_alert(store.catalog.decode(record.value, ALERT))
    except DecodeError as exc:
        log.warning(
            "unreadable alert record skipped",
            reason=str(exc),
            origin=f"{record.topic}/{record.partition}/{record.offset}",
        )


async def recent_audit(
    settings: Settings, limit: int, partitions: Callable[[str], Awaitable[set[int]]]
) -> list[dict[str, Any]]:
    """The newest ``limit`` audit entries (at most), newest first: the privacy officer's page.

    Read anew on each request from the end of every partition of the audit topic (the
    inbox principal may read it for this page only; nobody may alter it). ``partitions``
    as for :func:`follow`."""
    topic = full_name(AUDIT, settings.topic_prefix)
    catalog = Catalog()
    consumer = AIOKafkaConsumer(  # the inbox principal
        **connect(settings, INBOX).aiokafka(),
        enable_auto_commit=False,
        client_id=f"{settings.app_id}-inbox-audit",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await partitions(topic))]
        consumer.assign(tps)
        end = await consumer.end_offsets(tps)
        for tp in tps:
            consumer.seek(tp, max(0, end[tp] - limit))
        entries: list[dict[str, Any]] = []
        while [tp for tp in tps if await consumer.position(tp) < end[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                entries += [catalog.decode(r.value, AUDIT_ENTRY) for r in records]
    finally:
        await consumer.stop()
    entries.sort(key=lambda e: e["at"], reverse=True)
    return entries[:limit]
