"""The processing topology: raw.<domain> → link → linked → household view + rules → alerts.

Reads like the flow in DESIGN.md. Agents are thin loops; decisions are in
:mod:`linking`, :mod:`household` and :mod:`rules`. Events are taken in
batches (``take_events``) so per-message overhead is paid once per batch;
concurrency stays 1 per agent (faust-streaming #606: concurrency > 1 can
commit past an in-flight message). Every sink is idempotent (deterministic
alert ids, view keyed by household), so at-least-once delivery is safe.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faust
from faust.streams import _current_event  # see _as_current_event
from wijkhub.schemas.registry import (
    ALERT,
    HOUSEHOLD_VIEW,
    LINKED_EVENT,
    RAW_EVENT,
    Catalog,
    DecodeError,
)
from wijkhub.streams import household, linking, rules
from wijkhub.streams.routing import Router
from wijkhub.streams.topics import (
    ALERTS,
    DLQ_STREAMS,
    LINKED,
    RAW_TOPICS,
    full_name,
)
from wijkhub.streams.topics import HOUSEHOLD_VIEW as HOUSEHOLD_VIEW_TOPIC

from wijkhub.logs import get as get_logger
from wijkhub.metrics import CONTENT_TYPE_LATEST, Metrics
from wijkhub.settings import Settings

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
        broker_commit_every=settings.batch_size,
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

    raw_in = app.topic(*(topic_name(t) for t in RAW_TOPICS), key_serializer="raw",
                       value_serializer="raw")  # fmt: skip
    linked_topic = topic(LINKED)
    alerts_topic = topic(ALERTS)
    view_topic = topic(HOUSEHOLD_VIEW_TOPIC)
    dlq_topic = topic(DLQ_STREAMS)

    persons = app.Table("persons", schema=table_schema, options=dict(table_options))  # fmt: skip
    parked = app.Table("parked-by-person", schema=table_schema, options=dict(table_options))  # fmt: skip
    views = app.Table("household-views", schema=table_schema, options=dict(table_options))  # fmt: skip

    async def dead_letter(event: faust.EventT, stage: str, code: str, reason: str) -> None:
        from wijkhub.connectors.deadletter import DeadLetter

        letter = DeadLetter(stage=stage, reason_code=code, reason=reason, source=stage,
                            original=event.message.value or b"", origin=_origin(event))  # fmt: skip
        await dlq_topic.send(key=event.message.key, value=letter.original,
                             headers=letter.headers())  # fmt: skip
        metrics.dead_letters.labels(stage, code).inc()
        log.warning("record dead-lettered", stage=stage, reason_code=code, reason=reason,
                    origin=letter.origin)  # fmt: skip

    linked_produced = metrics.events_produced.labels(topic_name(LINKED), "link")

    async def send_linked(raw: dict[str, Any], link: linking.Link) -> None:
        value = catalog.encode(LINKED_EVENT, {"household_ref": link.household_ref,
                                              "linked_by": link.linked_by, "event": raw})  # fmt: skip
        await linked_topic.send(key=link.household_ref.encode(), value=value)
        metrics.link_outcomes.labels(link.linked_by).inc()
        linked_produced.inc()

    @app.agent(raw_in, name="link")
    async def link(stream: faust.StreamT) -> None:
        """raw.<domain> (keyed by person/address) → linked (keyed by household)."""
        consumed = metrics.events_consumed
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_seconds):
            metrics.batch_size.labels("link").observe(len(batch))
            for event in batch:
                consumed.labels(event.message.topic, "link").inc()
                with _as_current_event(event):
                    await _link_one(event)

    async def _link_one(event: faust.EventT) -> None:
        key = event.message.key
        try:
            raw = catalog.decode(event.message.value, RAW_EVENT)
        except DecodeError as exc:
            await dead_letter(event, "link", "undecodable", str(exc))
            return
        registration = linking.person_record(raw)
        if registration is not None:
            persons[key] = registration
            await send_linked(raw, linking.Link(registration["household_ref"], "person"))
            for waiting in parked.pop(key, None) or []:
                held = catalog.decode(bytes.fromhex(waiting), RAW_EVENT)
                await send_linked(held, linking.Link(registration["household_ref"], "person"))
            return
        decision = linking.decide(raw, persons.get(key) if raw["subject"]["person_ref"] else None)
        if isinstance(decision, linking.Park):
            parked[key] = [*(parked.get(key) or []), event.message.value.hex()]
            metrics.link_outcomes.labels("parked").inc()
            return
        await send_linked(raw, decision)

    @app.agent(linked_topic, name="households")
    async def households(stream: faust.StreamT) -> None:
        """linked (keyed by household) → household view, rules → alerts, household-view."""
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_seconds):
            metrics.batch_size.labels("household").observe(len(batch))
            changed: dict[str, household.View] = {}
            for event in batch:
                metrics.events_consumed.labels(event.message.topic, "household").inc()
                with _as_current_event(event):
                    view = await _household_one(event)
                if view is not None:
                    changed[view["household_ref"]] = view
            for ref, view in changed.items():
                await view_topic.send(key=ref.encode(),
                                      value=catalog.encode(HOUSEHOLD_VIEW, household.to_record(view)))  # fmt: skip
            metrics.events_produced.labels(view_topic.get_topic_name(), "household").inc(len(changed))

    async def _household_one(event: faust.EventT) -> household.View | None:
        try:
            linked = catalog.decode(event.message.value, LINKED_EVENT)
        except DecodeError as exc:
            await dead_letter(event, "household", "undecodable", str(exc))
            return None
        ref = linked["household_ref"]
        view = views.get(ref.encode()) or household.new_view(ref)
        env = linked["event"]["envelope"]
        metrics.processing_latency.labels("household").observe(
            max(0.0, time.time() - env["received_at"].timestamp())
        )
        if not household.apply(view, linked):
            return None  # already applied: a replay or a redelivery
        for draft in rules.evaluate(view):
            team = router.team_for(view["address_ref"])
            record = rules.alert_record(draft, team, env["municipality"], env["correlation_id"])
            await alerts_topic.send(key=draft.alert_id.encode(), value=catalog.encode(ALERT, record))
            view["open_alerts"][draft.alert_id] = draft.rule.id
            metrics.alerts_raised.labels(draft.rule.id, draft.rule.family, team).inc()
            log.info("alert raised", alert_id=draft.alert_id, rule_id=draft.rule.id, team=team,
                     event_id=env["event_id"], correlation_id=env["correlation_id"])  # fmt: skip
        views[ref.encode()] = view
        return view

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        # aiohttp refuses a charset inside content_type; the exposition format is UTF-8.
        return web.bytes(metrics.render(), content_type=METRICS_CONTENT_TYPE)

    @app.page("/health")
    async def health_page(web: Any, request: Any) -> Any:
        """200 once partitions are assigned and tables recovered; 503 before."""
        ready = app.tables.recovery.completed.is_set() and not app.rebalancing
        return web.json({"status": "ok" if ready else "starting", "app": settings.app_id},
                        status=200 if ready else 503)  # fmt: skip

    app.wijkhub_metrics = metrics  # type: ignore[attr-defined]
    return app
