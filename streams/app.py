"""The processing topology, as in DESIGN.md:

    raw.<domain> ─ link (person stage) ─► by-address ─ addresses (address stage) ─► linked
    linked, alert-actions ─ households ─► household-view, alerts    (unmatched: for review)

Agents are thin loops; decisions are in :mod:`linking` (where a person lived
when), :mod:`residence` (who lived together, matching signals without BSN),
:mod:`household` and :mod:`rules`. Each stage's table is keyed like its
input topic, so adding partitions and workers scales it. Events are taken in
batches (``take_events``) so per-message overhead is paid once per batch;
concurrency stays 1 per agent (faust-streaming #606: concurrency > 1 can
commit past an in-flight message). Every sink is idempotent (deterministic
alert ids, view keyed by household), so at-least-once delivery is safe.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import faust
from faust.streams import _current_event  # see _as_current_event

from wijkhub.connectors.deadletter import DeadLetter
from wijkhub.logs import get as get_logger
from wijkhub.metrics import Metrics
from wijkhub.schemas.registry import (
    ALERT,
    ALERT_ACTION,
    HOUSEHOLD_VIEW,
    LINKED_EVENT,
    RAW_EVENT,
    ROUTED,
    Catalog,
    DecodeError,
)
from wijkhub.settings import Settings
from wijkhub.streams import (
    household,
    lifecycle,
    linking,
    pages,
    residence,
    rules,
    ruleset,
    toewijzing,
)
from wijkhub.streams.district import DistrictTable
from wijkhub.streams.matching import Weights
from wijkhub.streams.routing import Router
from wijkhub.streams.topics import (
    ALERT_ACTIONS,
    ALERTS,
    BY_ADDRESS,
    DLQ_STREAMS,
    HAND_OVER,
    LINKED,
    RAW_TOPICS,
    UNMATCHED,
    WORKER_INPUTS,
    full_name,
    logical_name,
)
from wijkhub.streams.topics import HOUSEHOLD_VIEW as HOUSEHOLD_VIEW_TOPIC

log = get_logger("wijkhub.streams")


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


LINK_OUTCOMES = (
    # person stage: every input ends as exactly one of these (derived and unparked are inputs)
    "routed", "parked", "diffed", "unlinkable", "handed-over", "derived", "unparked",
    # address stage: every by-address record ends as exactly one of these (or unmatched)
    "person", "address", "match", "unmatched",
)  # fmt: skip


def _origin(event: faust.EventT) -> str:
    m = event.message
    return f"{m.topic}/{m.partition}/{m.offset}"


def build_app(settings: Settings, metrics: Metrics | None = None) -> faust.App:
    """Create the Faust app with its topics, tables, agents and /metrics page."""
    metrics = metrics or Metrics()
    catalog = Catalog()
    router = Router.load(settings.routing_file or None)  # refused here if invalid
    weights = Weights.shipped()
    active_rules = ruleset.load(settings.rules_file or None).rules  # refused here if invalid
    rules_by_id = {r.id: r for r in active_rules}
    districts = (
        DistrictTable.load(Path(settings.district_table), settings.municipality)
        if settings.district_table
        else None
    )

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
    # The household stage reads linked events and team actions, both keyed by household.
    household_in = app.topic(
        topic_name(LINKED), topic_name(ALERT_ACTIONS), key_serializer="raw", value_serializer="raw"
    )
    actions_name = topic_name(ALERT_ACTIONS)
    by_address_topic = topic(BY_ADDRESS)

    def table(name: str) -> faust.TableT:
        return app.Table(name, schema=table_schema, options=dict(table_options))

    # Person stage, keyed like raw.<domain>: residence history, waiting events, last 301s.
    persons, parked, snapshots = table("persons"), table("parked-by-person"), table("toewijzingen")
    # Address stage, keyed like by-address; household stage, keyed like linked.
    addresses, views = table("addresses"), table("household-views")

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
    by_address_name, unmatched_name = topic_name(BY_ADDRESS), topic_name(UNMATCHED)
    hand_over_name = topic_name(HAND_OVER)
    linked_out = metrics.events_produced.labels(linked_name, "addresses")
    routed_out = metrics.events_produced.labels(by_address_name, "link")
    link_outcome = {m: metrics.link_outcomes.labels(m) for m in LINK_OUTCOMES}

    async def send_unmatched(
        out: Outbox, key: bytes, value: bytes, reason: str, probability: float | None, outcome: str
    ) -> None:
        """Not linked with certainty: to review, with the reason, never to a guess."""
        headers = [("um_reason", reason.encode())]
        if probability is not None:
            headers.append(("um_probability", f"{probability:.4f}".encode()))
        await out.send(unmatched_name, key, value, headers)
        link_outcome[outcome].inc()

    async def each_event(
        stream: faust.StreamT,
        stage: str,
        handle: Callable[[Outbox, faust.EventT], Awaitable[None]],
    ) -> None:
        """The loop of a per-event stage: take a batch, handle each event as the current
        event (so table writes land in its partition), then wait for Kafka's acks."""
        batch_size = metrics.batch_size.labels(stage)
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_seconds):
            batch_size.observe(len(batch))
            out = Outbox(app.producer)
            for event in batch:
                with _as_current_event(event):
                    await handle(out, event)
            count_consumed(batch, stage)
            await out.delivered()  # outputs acknowledged before these offsets can be committed

    @app.agent(raw_in, name="link")
    async def link(stream: faust.StreamT) -> None:
        """Person stage: raw.<domain> (keyed by person or address) → by-address."""
        await each_event(stream, "link", _person_one)

    async def _person_one(out: Outbox, event: faust.EventT) -> None:
        key, value = event.message.key, event.message.value
        try:
            raw = catalog.decode(value, RAW_EVENT)
        except DecodeError as exc:
            await dead_letter(out, event, "link", "undecodable", str(exc))
            return
        if toewijzing.is_snapshot(raw):
            await _diff_snapshot(out, key, raw)
            return
        await _route(out, key, raw, value)

    async def _diff_snapshot(out: Outbox, key: bytes, snapshot: dict[str, Any]) -> None:
        """A 301 becomes the ToewijzingChanged events its diff yields, each routed."""
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
            await _route(out, key, derived, catalog.encode(RAW_EVENT, derived))

    async def _route(out: Outbox, key: bytes, raw: dict[str, Any], value: bytes) -> None:
        """Where the person lived on the event's date decides which address stage it goes to."""
        stored = persons.get(key) if raw["subject"]["person_ref"] else None
        state = stored or linking.new_person()  # a fresh copy: the table decodes on every read
        before = linking.fingerprint(state)
        decision = linking.route(raw, state)
        if isinstance(decision, linking.Park):
            parked[key] = [*(parked.get(key) or []), value.hex()]
            link_outcome["parked"].inc()
            return
        if isinstance(decision, linking.HandOver):
            headers = [("ho_reason", b"left the municipality"),
                       ("ho_departed_on", decision.departed_on.encode())]  # fmt: skip
            await out.send(hand_over_name, key, value, headers)
            link_outcome["handed-over"].inc()
            return
        if isinstance(decision, linking.Unlinkable):
            await send_unmatched(out, key or b"", value, decision.reason, None, "unlinkable")
            return
        if raw["subject"]["person_ref"] and linking.fingerprint(state) != before:
            persons[key] = state
        for r in decision:
            routed = {"address_ref": r.address_ref, "role": r.role, "raw_event": value,
                      "until": dt.date.fromisoformat(r.until) if r.until else None}  # fmt: skip
            building = residence.building(r.address_ref).encode()  # a building's units together
            await out.send(by_address_name, building, catalog.encode(ROUTED, routed))
            routed_out.inc()
        link_outcome["routed"].inc()
        if state["residences"] and key in parked:  # the registration they waited for
            for waiting in parked.pop(key):
                link_outcome["unparked"].inc()
                waiting_value = bytes.fromhex(waiting)
                await _route(out, key, catalog.decode(waiting_value, RAW_EVENT), waiting_value)

    @app.agent(by_address_topic, name="addresses")
    async def address_stage(stream: faust.StreamT) -> None:
        """Address stage: by-address → linked (keyed by household), or unmatched."""
        await each_event(stream, "addresses", _address_one)

    async def _address_one(out: Outbox, event: faust.EventT) -> None:
        try:
            routed = catalog.decode(event.message.value, ROUTED)
            value = routed["raw_event"]
            raw = catalog.decode(value, RAW_EVENT)
        except DecodeError as exc:
            await dead_letter(out, event, "addresses", "undecodable", str(exc))
            return
        address = routed["address_ref"]
        state_key = residence.building(address).encode()
        stored = addresses.get(state_key)
        state = stored or residence.new_address()  # a fresh copy: the table decodes on every read
        applied = residence.apply(state, address, routed["role"], routed["until"], raw)
        if applied.changed:
            addresses[state_key] = state
        result = residence.decide_link(state, address, routed["role"], raw, weights,
                                       settings.match_threshold)  # fmt: skip
        if isinstance(result, residence.Unmatched):
            await send_unmatched(
                out, address.encode(), value, result.reason, result.probability, "unmatched"
            )
            return
        if raw["subject"]["match"] is not None:
            # Name and date of birth serve linking only: they stop here.
            raw["subject"]["match"] = None
            value = catalog.encode(RAW_EVENT, raw)
        record = {"household_ref": result.household_ref, "linked_by": result.linked_by,
                  "raw_event": value, "member_change": applied.member_change,
                  "match_probability": result.probability}  # fmt: skip
        await out.send(
            linked_name, result.household_ref.encode(), catalog.encode(LINKED_EVENT, record)
        )
        link_outcome[result.linked_by].inc()
        linked_out.inc()

    def count_consumed(batch: list[faust.EventT], stage: str) -> None:
        per_topic: dict[str, int] = {}
        for event in batch:
            per_topic[event.message.topic] = per_topic.get(event.message.topic, 0) + 1
        for name, n in per_topic.items():
            metrics.events_consumed.labels(name, stage).inc(n)

    latency = metrics.processing_latency.labels("household")
    views_out = metrics.events_produced.labels(view_name, "household")

    @app.agent(household_in, name="households")
    async def households(stream: faust.StreamT) -> None:
        """linked and alert-actions (keyed by household) → household view, rules and team
        actions → alerts, household-view."""
        batch_size = metrics.batch_size.labels("household")
        async for batch in stream.take_events(settings.batch_size, settings.batch_within_seconds):
            batch_size.observe(len(batch))
            out = Outbox(app.producer)
            # A household seen several times in a batch is read and written once.
            changed: dict[str, tuple[household.View, faust.EventT]] = {}
            for event in batch:
                if event.message.topic == actions_name:
                    await _action_one(out, event, changed)
                else:
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

    def stored_view(
        ref: str, event: faust.EventT, changed: dict[str, tuple[household.View, faust.EventT]]
    ) -> household.View | None:
        """The household's view: this batch's working copy, else the table's (or None)."""
        if ref in changed:
            return changed[ref][0]
        with _as_current_event(event):
            return views.get(ref.encode())

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
        view = stored_view(ref, event, changed) or household.new_view(ref)
        env = raw["envelope"]
        latency.observe(max(0.0, time.time() - env["received_at"].timestamp()))
        if not household.apply(view, {**linked, "event": raw}):
            return  # already applied: a replay or a redelivery
        if districts is not None and view["address_ref"] and view.get("district") is None:
            found = districts.lookup(view["address_ref"])
            view["district"] = found.as_record() if found else None
        changed[ref] = (view, event)
        changes = lifecycle.step(
            view,
            rules.holding(view, active_rules),
            rules_by_id,
            lambda rule: _team_for(rule, view),
            int(time.time() * 1000),
        )
        for change in changes:
            await publish(out, change, ref, env["municipality"], env["correlation_id"])
            if change.kind == "raised":
                metrics.alert_latency.labels(change.rule.family).observe(
                    max(0.0, time.time() - env["received_at"].timestamp())
                )

    def _team_for(rule: rules.Rule, view: household.View) -> str:
        route = router.route(rule.id, view.get("district"))
        if route.routed_by == "fallback":
            metrics.alerts_unrouted.labels(rule.family).inc()
        return route.team

    async def publish(
        out: Outbox, change: lifecycle.Change, ref: str, municipality: str, correlation_id: str
    ) -> None:
        """One state change of an alert → the alerts topic (compacted by alert id)."""
        rule, team = change.rule, change.alert["team"]
        record = rules.alert_record(change.alert_id, change.alert, rule, ref, municipality,
                                    correlation_id, change.kind)  # fmt: skip
        await out.send(alerts_name, change.alert_id.encode(), catalog.encode(ALERT, record))
        metrics.alert_changes.labels(rule.id, rule.family, team, change.kind).inc()
        if change.kind == "raised":
            metrics.alerts_raised.labels(rule.id, rule.family, team).inc()
        log.info(f"alert {change.kind}", alert_id=change.alert_id, rule_id=rule.id, team=team,
                 revision=change.alert["revision"], correlation_id=correlation_id)  # fmt: skip

    async def _action_one(
        out: Outbox, event: faust.EventT, changed: dict[str, tuple[household.View, faust.EventT]]
    ) -> None:
        """A team action from the inbox: applied by the lifecycle, published as a change."""
        try:
            action = catalog.decode(event.message.value, ALERT_ACTION)
        except DecodeError as exc:
            await dead_letter(out, event, "household", "undecodable", str(exc))
            return
        ref = action["household_ref"]
        view = stored_view(ref, event, changed)
        if view is None:
            await dead_letter(out, event, "household", "unknown-household",
                              "no household view for this action")  # fmt: skip
            return
        result = lifecycle.act(view, action, rules_by_id)
        if result is None:
            metrics.alert_actions.labels(action["action"], "-", "duplicate").inc()
            return
        if isinstance(result, lifecycle.Refused):
            metrics.alert_actions.labels(action["action"], "-", "refused").inc()
            await dead_letter(out, event, "household", result.code, result.reason)
            return
        outcome = action["outcome"] if action["outcome"] in lifecycle.OUTCOMES else "-"
        metrics.alert_actions.labels(action["action"], outcome, "applied").inc()
        changed[ref] = (view, event)
        municipality = settings.municipality
        await publish(out, result, ref, municipality, action["correlation_id"])
        alert = result.alert
        if result.acknowledged_now and alert["published_at"]:
            metrics.time_to_acknowledge.labels(alert["team"]).observe(
                max(0.0, (alert["acknowledged_at"] - alert["published_at"]) / 1000)
            )

    pages.register(app, settings, catalog, metrics, views)
    inputs = {topic_name(t) for t in WORKER_INPUTS}

    @app.timer(interval=5.0)
    async def measure_lag() -> None:
        """Consumer lag per input partition, for the "lag growing" alert.

        faust-streaming 0.15.3 keeps the committed offsets only in a private
        mapping (the next offset to read, or None before the first commit).
        """
        committed = app.consumer._committed_offset
        for tp in app.consumer.assignment():
            if tp.topic in inputs:
                lag = max(0, app.consumer.highwater(tp) - (committed.get(tp) or 0))
                name = logical_name(tp.topic, settings.topic_prefix)
                metrics.consumer_lag.labels(name, str(tp.partition)).set(lag)

    app.wijkhub_metrics = metrics  # type: ignore[attr-defined]
    return app
