"""The processing topology: raw.<domain> → link → linked → household view + rules → alerts.

Reads like the flow in DESIGN.md. Agents are thin loops; decisions are in
:mod:`linking`, :mod:`household` and :mod:`rules`. Events are taken in
batches (``take_events``) so per-message overhead is paid once per batch;
concurrency stays 1 per agent (faust-streaming #606: concurrency > 1 can
commit past an in-flight message). Every sink is idempotent (deterministic
alert ids, view keyed by household), so at-least-once delivery is safe.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust
from faust.streams import _current_event  # see _as_current_event

from wijkhub.connectors.deadletter import DeadLetter
from wijkhub.logs import get as get_logger
from wijkhub.metrics import CONTENT_TYPE_LATEST, Metrics
from wijkhub.schemas.registry import (
    ALERT,
    HOUSEHOLD_VIEW,
    LINKED_EVENT,
    RAW_EVENT,
    Catalog,
    DecodeError,
)
from wijkhub.settings import Settings
from wijkhub.streams import household, linking, rules, toewijzing
from wijkhub.streams.routing import Router
from wijkhub.streams.topics import (
    ALERTS,
    DLQ_STREAMS,
    LINKED,
    RAW_TOPICS,
    full_name,
    logical_name,
)
from wijkhub.streams.topics import HOUSEHOLD_VIEW as HOUSEHOLD_VIEW_TOPIC

log = get_logger("wijkhub.streams")
METRICS_CONTENT_TYPE = "; ".join(
    p.strip() for p in CONTENT_TYPE_LATEST.split(";") if "charset" not in p
)


@contextmanager
def _as_current_event(event: faust.EventT) -> Iterator[None]:
    """Make ``event`` the stream's current event while one batch member is handled.

    Faust tables pick the changelog and RocksDB partition from the current
    event. ``take_events`` hands over a whole batch, possibly from several
    partitions, while the current event is the last one read, so a table write
    for an earlier member would land in the wrong partition. faust-streaming
    0.15.3 has no public API for this; the context variable is the one its
    own Stream uses.
    """
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


class Outbox:
    """Sends of one batch, straight to the Kafka producer, awaited together.

    Faust's ``Topic.send`` adds per-message machinery we do not need; the
    producer's own ``send`` only appends to its batch. ``delivered`` waits
    until the broker acknowledged every record of the batch, so a failed
    send stops the agent (and the worker restarts from the last committed
    offset) instead of being lost.
    """

    def __init__(self, producer: Any) -> None:
        self.producer = producer
        self.pending: list[Any] = []

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.pending.append(await self.producer.send(topic, key, value, None, None, headers))

    async def delivered(self) -> None:
        if self.pending:
            await asyncio.gather(*self.pending)
            self.pending.clear()


def _origin(event: faust.EventT) -> str:
    m = event.message
    return f"{m.topic}/{m.partition}/{m.offset}"


def build_app(settings: Settings, metrics: Metrics | None = None) -> faust.App:
    """Create the Faust app with its topics, tables, agents and /metrics page."""
    metrics = metrics or Metrics()
    catalog = Catalog()
    router = Router.parse(settings.team_areas)

    def topic_name(name: str) -> str:
        return full_name(name, settings.topic_prefix)

    app = faust.App(
        settings.app_id,
        broker=settings.broker_url,
        store="rocksdb://",
        datadir=str(settings.data_dir / "worker"),
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.005,
        # Commit by time, not per N messages: a commit first flushes the
        # producer, and doing that every batch stalls the pipeline.
        broker_commit_every=100_000,
        broker_commit_interval=2.0,
        producer_max_batch_size=512 * 1024,
        stream_buffer_maxsize=4 * settings.batch_size,
        # Bind only where configured; never serve table contents over HTTP.
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
    )
    table_options = {
        "driver": "rocksdict",
        "block_cache_size": settings.rocksdb_block_cache_bytes,
        "block_cache_compressed_size": 0,
    }

    # Table keys are the record keys as they are (bytes); values are plain JSON views.
    table_schema = faust.Schema(key_serializer="raw", value_serializer="json")

    def topic(name: str) -> faust.TopicT:
        return app.topic(topic_name(name), key_serializer="raw", value_serializer="raw")

    raw_in = app.topic(
        *(topic_name(t) for t in RAW_TOPICS), key_serializer="raw", value_serializer="raw"
    )
    linked_topic = topic(LINKED)

    persons = app.Table("persons", schema=table_schema, options=dict(table_options))
    parked = app.Table("parked-by-person", schema=table_schema, options=dict(table_options))
    views = app.Table("household-views", schema=table_schema, options=dict(table_options))
    # Last 301 per (person, provider): keyed like raw.<domain>, so co-partitioned with it.
    snapshots = app.Table("toewijzingen", schema=table_schema, options=dict(table_options))

    async def dead_letter(
        out: Outbox, event: faust.EventT, stage: str, code: str, reason: str
    ) -> None:
        letter = DeadLetter(
            stage=stage,
            reason_code=code,
            reason=reason,
            source=stage,
            original=event.message.value or b"",
            origin=_origin(event),
        )
        await out.send(dlq_name, event.message.key, letter.original, letter.headers())
        source = logical_name(event.message.topic, settings.topic_prefix)
        metrics.dead_letters.labels(stage, source, code).inc()
        log.warning(
            "record dead-lettered",
            stage=stage,
            reason_code=code,
            reason=reason,
            origin=letter.origin,
        )

    linked_name, alerts_name = topic_name(LINKED), topic_name(ALERTS)
    view_name, dlq_name = topic_name(HOUSEHOLD_VIEW_TOPIC), topic_name(DLQ_STREAMS)
    linked_out = metrics.events_produced.labels(linked_name, "link")
    link_outcome = {
        m: metrics.link_outcomes.labels(m)
        for m in ("person", "address", "parked", "unparked", "diffed", "derived")
    }

    async def send_linked(out: Outbox, raw_bytes: bytes, link: linking.Link) -> None:
        value = catalog.encode(
            LINKED_EVENT,
            {
                "household_ref": link.household_ref,
                "linked_by": link.linked_by,
                "raw_event": raw_bytes,
            },
        )
        await out.send(linked_name, link.household_ref.encode(), value)
        link_outcome[link.linked_by].inc()
        linked_out.inc()

    @app.agent(raw_in, name="link")
    async def link(stream: faust.StreamT) -> None:
        """raw.<domain> (keyed by person/address) → linked (keyed by household)."""
        batch_size = metrics.batch_size.labels("link")
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_seconds):
            batch_size.observe(len(batch))
            out = Outbox(app.producer)
            for event in batch:
                with _as_current_event(event):
                    await _link_one(out, event)
            count_consumed(batch, "link")
            await out.delivered()  # outputs acknowledged before these offsets can be committed

    async def _link_one(out: Outbox, event: faust.EventT) -> None:
        key, value = event.message.key, event.message.value
        try:
            raw = catalog.decode(value, RAW_EVENT)
        except DecodeError as exc:
            await dead_letter(out, event, "link", "undecodable", str(exc))
            return
        if toewijzing.is_snapshot(raw):
            await _diff_snapshot(out, key, raw)
            return
        await _link_event(out, key, raw, value)

    async def _diff_snapshot(out: Outbox, key: bytes, snapshot: dict[str, Any]) -> None:
        """A 301 becomes the ToewijzingChanged events its diff yields, each linked."""
        state_key = toewijzing.state_key(key, snapshot)
        result = toewijzing.diff(snapshots.get(state_key), snapshot)
        link_outcome["diffed"].inc()
        if result.stale:
            log.info(
                "older 301 snapshot ignored",
                event_id=snapshot["envelope"]["event_id"],
                correlation_id=snapshot["envelope"]["correlation_id"],
            )
            return
        snapshots[state_key] = result.state
        for derived in result.events:
            link_outcome["derived"].inc()
            await _link_event(out, key, derived, catalog.encode(RAW_EVENT, derived))

    async def _link_event(out: Outbox, key: bytes, raw: dict[str, Any], value: bytes) -> None:
        registration = linking.person_record(raw)
        if registration is not None:
            if persons.get(key) != registration:  # a replay writes nothing
                persons[key] = registration
            household_link = linking.Link(registration["household_ref"], "person")
            await send_linked(out, value, household_link)
            for waiting in parked.pop(key, None) or []:
                await send_linked(out, bytes.fromhex(waiting), household_link)
                link_outcome["unparked"].inc()
            return
        if raw["subject"]["match"] is not None:
            # Name and date of birth serve linking only: they stop here.
            raw["subject"]["match"] = None
            value = catalog.encode(RAW_EVENT, raw)
        decision = linking.decide(raw, persons.get(key) if raw["subject"]["person_ref"] else None)
        if isinstance(decision, linking.Park):
            parked[key] = [*(parked.get(key) or []), value.hex()]
            link_outcome["parked"].inc()
            return
        await send_linked(out, value, decision)

    def count_consumed(batch: list[faust.EventT], stage: str) -> None:
        per_topic: dict[str, int] = {}
        for event in batch:
            per_topic[event.message.topic] = per_topic.get(event.message.topic, 0) + 1
        for name, n in per_topic.items():
            metrics.events_consumed.labels(name, stage).inc(n)

    latency = metrics.processing_latency.labels("household")
    views_out = metrics.events_produced.labels(view_name, "household")

    @app.agent(linked_topic, name="households")
    async def households(stream: faust.StreamT) -> None:
        """linked (keyed by household) → household view, rules → alerts, household-view."""
        batch_size = metrics.batch_size.labels("household")
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_seconds):
            batch_size.observe(len(batch))
            out = Outbox(app.producer)
            # A household seen several times in a batch is read and written once.
            changed: dict[str, tuple[household.View, faust.EventT]] = {}
            for event in batch:
                await _household_one(out, event, changed)
            for ref, (view, last_event) in changed.items():
                with _as_current_event(last_event):  # same partition: keyed by household
                    views[ref.encode()] = view
                await out.send(
                    view_name,
                    ref.encode(),
                    catalog.encode(HOUSEHOLD_VIEW, household.to_record(view)),
                )
            views_out.inc(len(changed))
            count_consumed(batch, "household")
            await out.delivered()

    async def _household_one(
        out: Outbox, event: faust.EventT, changed: dict[str, tuple[household.View, faust.EventT]]
    ) -> None:
        try:
            linked = catalog.decode(event.message.value, LINKED_EVENT)
            raw = catalog.decode(linked["raw_event"], RAW_EVENT)
        except DecodeError as exc:
            await dead_letter(out, event, "household", "undecodable", str(exc))
            return
        ref = linked["household_ref"]
        if ref in changed:
            view = changed[ref][0]
        else:
            with _as_current_event(event):
                view = views.get(ref.encode()) or household.new_view(ref)
        env = raw["envelope"]
        latency.observe(max(0.0, time.time() - env["received_at"].timestamp()))
        if not household.apply(view, {**linked, "event": raw}):
            return  # already applied: a replay or a redelivery
        changed[ref] = (view, event)
        for draft in rules.evaluate(view):
            team = router.team_for(view["address_ref"])
            record = rules.alert_record(draft, team, env["municipality"], env["correlation_id"])
            await out.send(alerts_name, draft.alert_id.encode(), catalog.encode(ALERT, record))
            view["open_alerts"][draft.alert_id] = draft.rule.id
            metrics.alerts_raised.labels(draft.rule.id, draft.rule.family, team).inc()
            log.info(
                "alert raised",
                alert_id=draft.alert_id,
                rule_id=draft.rule.id,
                team=team,
                event_id=env["event_id"],
                correlation_id=env["correlation_id"],
            )

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type; the exposition format is UTF-8.
        return web.bytes(metrics.render(), content_type=METRICS_CONTENT_TYPE)

    @app.page("/health")
    async def health_page(web: Any, request: Any) -> Any:
        """200 once partitions are assigned and tables recovered; 503 before."""
        ready = app.tables.recovery.completed.is_set() and not app.rebalancing
        return web.json(
            {"status": "ok" if ready else "starting", "app": settings.app_id},
            status=200 if ready else 503,
        )

    app.wijkhub_metrics = metrics  # type: ignore[attr-defined]
    return app
