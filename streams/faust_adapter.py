"""Faust runs the stages: one batch task and one changelogged table per stage.

It executes each batch's :class:`~wijkhub.streams.stage.Plan` in the order
that plan documents (docs/adr/0001-checkpoint-order.md): the touched keys'
state with its outbox written and the changelog flushed; then every output
sent and acknowledged; then the outboxes known as delivered (in memory:
:class:`~wijkhub.streams.stage.Delivered`; one store write and one changelog
record per touched key and batch); then (Faust, on its interval, after flushing
the producer) the offsets committed. A stage's decisions are
therefore never lost and never sent without the state knowing.

Faust private APIs used here, checked against faust-streaming 0.15.3 (pinned
in pyproject.toml), and why:
- ``Consumer._drain_messages`` and what it uses: replaced by
  :class:`~wijkhub.streams.faust_delivery.Delivery` (its module says why and what).
- ``Consumer._committed_offset``: committed offsets, for the lag gauge and for where a
  partition resumes after a rebalance (no public accessor).
- ``Consumer._add_gap``: replaced on the worker's consumer, so that offsets Faust never
  delivered are never committed (:class:`Continuity`).
- The table's store, read and written a batch at a time
  (:class:`~wijkhub.streams.faust_store.LocalStore`: its module lists what it uses):
  state is written to RocksDB and its changelog record sent by this module, so that
  step 1 can wait for Kafka's acknowledgement; Faust's buffered ``send_soon`` cannot
  be awaited reliably (its flush gives up after a timeout).
- ``Producer._ensure_producer`` (Faust's driver): the aiokafka producer below it, whose
  public ``create_batch`` and ``send_batch`` send a batch's records per partition
  (:class:`Outbox`).
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.errors import IllegalStateError
from aiokafka.partitioner import DefaultPartitioner, murmur2
from faust.serializers import codecs
from faust.transport.consumer import Consumer
from faust.types import TP, TableT

from wijkhub.kafka import connect
from wijkhub.logs import get as get_logger
from wijkhub.metrics import Metrics
from wijkhub.settings import Settings
from wijkhub.streams.access import WORKER
from wijkhub.streams.faust_delivery import Delivery, fetch_state
from wijkhub.streams.faust_store import LocalStore
from wijkhub.streams.stage import (
    Delivered,
    Message,
    Result,
    Stage,
    Timed,
    caused_at,
    plan,
    sealed,
)
from wijkhub.streams.topics import (
    DLQ_STREAMS,
    WORKER_INPUTS,
    changelog_configs,
    full_name,
    logical_name,
)

log = get_logger("wijkhub.streams")

PARTITION_CACHE = 65_536  # keys whose partition hash is remembered
MAX_RECORD_BYTES = 16 * 1024 * 1024  # one state entry: a large building, a long history
LINK_OUTCOMES = (
    # person stage, per input record: exactly one of these (or a dead letter)
    "register", "diffed", "person-event", "address-event", "unlinkable",
    # person stage, per decision (an event routed again when the BRP facts change)
    "derived", "routed", "parked", "unparked", "handed-over", "withdrawn",
    # address stage, per input record (or a dead letter)
    "residency", "event",
    # address stage, per decision
    "person", "address", "match", "unmatched",
    # household stage: a team's "wrong link" outcome put a fact linked without BSN up for review
    "wrong-link",
)  # fmt: skip


def new_app(settings: Settings) -> faust.App:
    """The Faust app: commit by time, fast failure detection, web server locked down."""
    return faust.App(
        settings.app_id,
        broker=settings.broker_url,
        broker_credentials=connect(settings, WORKER).faust(),  # its own principal and ACLs
        store="rocksdb://",
        datadir=str(settings.data_dir / "worker"),
        autodiscover=False,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.replication_factor,
        table_standby_replicas=settings.standby_replicas,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger=0.005,
        # Commit by time, not per N messages: a commit first flushes the producer.
        broker_commit_every=100_000,
        broker_commit_interval=2.0,
        # A worker killed without leaving the group is replaced after this long.
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=settings.heartbeat_interval_seconds,
        broker_rebalance_timeout=max(30.0, settings.session_timeout_seconds),
        consumer_group_instance_id=settings.worker_instance_id or None,
        producer_max_batch_size=512 * 1024,
        producer_compression_type=settings.kafka_compression_type,
        producer_partitioner=partition_for,
        producer_max_request_size=MAX_RECORD_BYTES,
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


@functools.lru_cache(maxsize=PARTITION_CACHE)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_for(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """Kafka's default partitioner (murmur2 of the key, as the Java client and aiokafka),
    with each key's hash remembered: the same households and buildings are written again
    and again, and aiokafka's pure-Python murmur2 took 1.7 % of a worker's time (issue 19)."""
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    return all_partitions[_key_hash(key) % len(all_partitions)]


class Continuity:
    """Every input record reaches the stage: no hole in a partition's offsets.

    With faust-streaming 0.15.3 a partition's records can start past records nobody
    processed. Measured: a worker joining a running backlog began ``by-address`` at
    offset 59 or 380 with nothing committed there (the previous owner had not reached
    that stage yet). And records fetched before a rebalance can be read after the
    consumer sought back; the fetcher then takes the distance for a gap (as on a
    compacted topic), marks it committable and drops the same records when they come
    again (``Consumer._drain_messages``; robinhood/faust #559, faust-streaming #221).

    This check finds the hole: per input partition, the next offset expected within one
    consumer generation. At its start, that is the committed offset, or the offset after
    the last record this worker processed of the partition in an earlier generation if
    that is further (a partition it kept: with nothing committed Faust does not seek it
    back, and what this worker processed is processed), or where the log starts when
    neither is known. A record past it means records were skipped: the hole goes to
    :class:`Processed`, which commits nothing past it and seeks back. Records read in
    between are processed as they come: the stages' results do not depend on the order
    (docs/adr/0002). Gaps are never committable (:func:`keep_holes_uncommitted`): no
    worker input is compacted or written in transactions, so a real gap cannot occur.
    """

    def __init__(self) -> None:
        self.generation = -1
        self.next: dict[TP, int] = {}
        self.before: dict[TP, int] = {}  # ``next`` as an earlier generation left it
        self.rewound: dict[TP, int] = {}  # sought back to: checked again from there

    def holes(
        self, batch: Sequence[Any], generation: int, committed: Mapping[TP, int | None]
    ) -> dict[TP, tuple[int, int]]:
        """(first skipped offset, the offset that came instead) per partition with a hole,
        in a batch of consumer messages."""
        if generation != self.generation:
            self.before = {**self.before, **self.next}
            self.generation, self.next, self.rewound = generation, {}, {}
        found: dict[TP, tuple[int, int]] = {}
        for message in batch:
            tp, offset = message.tp, message.offset
            if tp in self.rewound:
                if offset != self.rewound[tp]:
                    continue  # read before the seek took effect: processed, not checked
                del self.rewound[tp]
            expected = self.next.get(tp)
            if expected is None:
                known = [o for o in (committed.get(tp), self.before.get(tp)) if o is not None]
                expected = max(known) if known else None
            if expected is not None and offset > expected:
                found[tp] = (expected, offset)
                self.rewound[tp] = expected
                continue
            self.next[tp] = max(self.next.get(tp, 0), offset + 1)
        return found


# A seek back always brings the record (Delivery delivers every stage input); sought again
# only if it has not been processed this long after (a seek lost in a rebalance).
REWIND_RETRY_SECONDS = 120.0


class Processed:
    """Only a record a stage has processed is ever committed past; a skipped one is read
    again.

    faust-streaming 0.15.3 acknowledges a record its stream *skips*: one read while flow
    control is suspended (a rebalance, a table recovery at start) or one fetched in an
    older consumer generation (``Stream._py_aiter``: ``value is skipped_value`` →
    ``event.ack()``); ``take_events`` acknowledges a batch when its generator is closed,
    processed or not. And Faust commits the first run of acknowledged offsets even when
    records before it were never acknowledged, if the partition has no committed offset
    yet (``Consumer._new_offset``: ``if committed_offset:``) — a worker's first minutes.
    Measured before this guard: ``wijkhub bench --workers 2`` on 20,000 events ended with
    798 to 826 of the 955 alerts one worker (and the in-memory harness) raises, in seven
    of eleven runs (docs/adr/0004).

    So the worker's consumer (private API, faust 0.15.3; docs/adr/0004):
    - acknowledges a record the adapter marked (its batch's outputs acknowledged) as Faust
      does; any other record of a stage input only as *finished* (a rebalance does not wait
      for it) and remembers its offset as skipped;
    - commits no partition at or past its lowest skipped offset;
    - and :meth:`rewind` seeks each such partition back to it, so the record comes again.
    """

    def __init__(self, consumer: Any, inputs: set[str]) -> None:
        # processed, not yet acknowledged: per offset, how many copies (a record sought
        # back to can come twice in one batch; each copy is acknowledged)
        self.done: Counter[tuple[TP, int]] = Counter()
        self.skipped: dict[TP, set[int]] = {}  # offsets that must still be processed
        # sought back to this offset (when), not yet read again
        self.rewound: dict[TP, tuple[int, float]] = {}
        self.start: dict[TP, int] = {}  # where the log starts (read when it mattered)
        self.held: set[TP] = set()  # partitions whose commit waits for a record
        # per partition: every record before this offset was processed by this worker or
        # committed (a stage's :class:`Continuity`, after its batch): survives rebalances
        self.reached: dict[TP, int] = {}
        self.inputs = inputs
        self.consumer = consumer
        self.ack, self.new_offset = consumer.ack, consumer._new_offset
        consumer.ack = self._ack  # private (faust 0.15.3): see the module docstring
        consumer._new_offset = self._new_offset

    def mark(self, batch: Sequence[Any]) -> None:
        """These consumer messages were processed: their acknowledgement may commit them."""
        for message in batch:
            tp, offset = message.tp, message.offset
            self.done[tp, offset] += 1
            if offset in self.skipped.get(tp, ()):
                self.skipped[tp].discard(offset)
                if not self.skipped[tp]:
                    del self.skipped[tp]
            if tp in self.rewound and self.rewound[tp][0] == offset:
                del self.rewound[tp]  # read again from there: a later skip seeks anew

    def carry(self, reached: Mapping[TP, int]) -> None:
        """A stage processed every record of these partitions before these offsets."""
        for tp, offset in reached.items():
            self.reached[tp] = max(self.reached.get(tp, offset), offset)

    def missing(self, tp: TP, first: int) -> None:
        """Records from ``first`` never reached the stage (:class:`Continuity`): read them
        again, and commit nothing past them until then."""
        self.skipped.setdefault(tp, set()).add(first)

    def dropped(self, tp: TP, offset: int) -> None:
        """The fetch loop read this record while partitions moved and did not deliver it
        (:meth:`~wijkhub.streams.faust_delivery.Delivery.drain`): the lowest such offset
        is read again; a seek back made before it was used up by this read."""
        holes = self.skipped.get(tp)
        if not holes or offset < min(holes):
            self.missing(tp, offset)
        self.rewound.pop(tp, None)

    def _ack(self, message: Any) -> bool:
        if message.topic not in self.inputs:
            return bool(self.ack(message))
        key = (message.tp, message.offset)
        copies = self.done.get(key, 0)
        if not copies:
            message.acked = True  # finished: a rebalance need not wait for it
            self.consumer._unacked_messages.discard(message)
            self.missing(message.tp, message.offset)
            self.rewound.pop(message.tp, None)  # what a seek back brought may be this one
            return False  # not committable
        if copies == 1:
            del self.done[key]
        else:
            self.done[key] = copies - 1
        return bool(self.ack(message))

    def begins(self, starts: Mapping[TP, int | None]) -> None:
        """Where this worker's responsibility for partitions with nothing committed begins:
        where their logs start, or after what this worker processed of one in an earlier
        consumer generation (:class:`Continuity` carries it; Faust forgets acknowledged
        offsets at a rebalance, and with nothing committed does not seek back). Only
        further, never back."""
        for tp, offset in starts.items():
            if offset is not None:
                self.start[tp] = max(self.start.get(tp, offset), offset)

    def _new_offset(self, tp: TP) -> int | None:
        """Faust's next commit for ``tp``, unless it would pass a record nobody processed:
        a skipped one, or one below the lowest processed offset that is neither (Faust's
        own check lets the record at the committed offset itself pass, and none at all
        when nothing is committed yet)."""
        acked = self.consumer._acked.get(tp)
        if acked and tp.topic in self.inputs and self._passes_unprocessed(tp, acked):
            self.held.add(tp)
            return None
        self.held.discard(tp)
        found: int | None = self.new_offset(tp)
        return found

    def _passes_unprocessed(self, tp: TP, acked: list[int]) -> bool:
        holes = self.skipped.get(tp)
        if holes and min(holes) <= max(acked):
            return True
        # private (faust 0.15.3): the next offset to read as committed (0 kept as None)
        committed, start = self.consumer._committed_offset.get(tp), self.start.get(tp)
        if committed is None and start is None:
            return True  # where the partition begins is not known yet: not before it is
        return min(acked) > max(committed or 0, start or 0)

    async def _forget_unreadable(self, tps: list[TP]) -> None:
        """Offsets that cannot or need not be read again: below the committed offset (this
        guard commits nothing unprocessed, so they were processed before), or below where
        the log now starts (deleted by retention while the group was behind: lost, and
        said so once, loudly). Without this a partition would hold its commits forever."""
        starts = await self.consumer.earliest_offsets(*tps)
        self.begins(starts)
        committed = self.consumer._committed_offset  # private (faust 0.15.3)
        for tp in tps:
            offsets = self.skipped.get(tp, set())
            start, done = starts.get(tp) or 0, committed.get(tp) or 0
            gone = {o for o in offsets if o < start and o >= done}
            if gone:
                log.error("input records deleted by retention before they were processed: "
                          "they cannot be read again", topic=tp.topic, partition=tp.partition,
                          first=min(gone), log_start=start)  # fmt: skip
            kept = {o for o in offsets if o >= max(start, done)}
            if kept:
                self.skipped[tp] = kept
            else:
                self.skipped.pop(tp, None)
                self.rewound.pop(tp, None)

    def _forget(self, tp: TP) -> None:
        self.skipped.pop(tp, None)  # its new owner reads it from the committed offset
        self.rewound.pop(tp, None)

    async def rewind(self) -> dict[TP, int]:
        """Seek every owned partition with skipped records back to the lowest of them.
        Only ever backwards, and only below the consumer's read position: a partition
        already sought back to that offset or below is being read again from there (every
        later record comes again too), unless the record has not come within
        ``REWIND_RETRY_SECONDS``: then it is sought again. Returns what was sought."""
        owned = self.consumer.assignment()
        for tp in [tp for tp in self.skipped if tp not in owned]:
            self._forget(tp)
        if self.skipped:
            await self._forget_unreadable(list(self.skipped))
        now = time.monotonic()
        # decided before the first await: a batch may mark records meanwhile
        targets = {tp: min(offsets) for tp, offsets in self.skipped.items() if offsets}
        sought = {}
        for tp, first in targets.items():
            at, when = self.rewound.get(tp, (None, 0.0))
            if not (at is None or first < at or now - when > REWIND_RETRY_SECONDS):
                continue
            read = self.consumer._read_offset.get(tp)  # private (faust 0.15.3): last read
            # claimed before the await: another stage's rewind meanwhile does not seek too
            self.rewound[tp] = (first, now)
            if read is None or first <= read:  # not yet read: it comes without a seek
                try:
                    # On the consumer's own thread: Faust's ``seek`` changes aiokafka's
                    # fetch buffers from the calling thread, racing the fetcher (measured:
                    # KeyError in aiokafka's fetched_records, the fetcher and the worker
                    # stopped, in a two-worker bench of 100,000 events).
                    await self.consumer.seek_wait({tp: first})
                except IllegalStateError:  # revoked meanwhile: the new owner reads it
                    self._forget(tp)
                    continue
                sought[tp] = first
        return sought


STALL_SECONDS = 15.0  # records waiting in a partition and none delivered this long: read again


class Stalls:
    """A partition with records not yet processed that delivers none, while the worker is
    settled and its stage waits for work, is read again from where it stands: never
    waited for in silence.

    Measured (``test_faults``, one run in eight; ``linked`` partitions in a two-worker
    bench): a worker that took over partitions with nothing committed never received their
    records — Kafka's highwater showed them, the read position and the committed offset
    stayed empty, no hole, no skip, no log line. Faust's ``Consumer.getmany`` drops the
    rest of a fetch in hand when flow stops or the generation changes, and with nothing
    committed aiokafka's ``seek_to_committed`` does not seek back. Every guard above keys
    on a record that came; this one keys on records that do not come. (The mechanism
    found since, a fetch dropped when a rebalance begins, is reported where it happens:
    ``Delivery.fetch``; this stays as the backstop for any other.) It seeks on the
    consumer's thread to the read position (Faust's ``_read_offset``: the last record
    delivered, or the one sought to: read once more, never passed), or to where the
    partition begins, and puts the partition back in Faust's active set. A record read
    twice changes nothing (ADR 0002).
    """

    def __init__(self, app: faust.App, guard: Processed, delivery: Delivery) -> None:
        self.app, self.guard, self.delivery = app, guard, delivery
        self.consumer: Any = app.consumer
        self.generation = -1
        self.seen: dict[TP, int | None] = {}  # read offset at the last look
        self.since: dict[TP, float] = {}  # records waiting, none delivered, since
        self.found: dict[TP, dict[str, Any]] = {}  # how the last stalled ones looked

    def _still(self, generation: int, tp: TP) -> bool:
        """Nothing moved while a seek was awaited: same generation, settled, still ours."""
        return bool(
            settled(self.app)
            and self.app.consumer_generation_id == generation
            and tp in self.consumer.assignment()
        )

    async def check(self, now: float) -> dict[TP, int]:
        """Read stalled partitions again; returns where each was sought to."""
        consumer, generation = self.consumer, self.app.consumer_generation_id
        if generation != self.generation or self.delivery.waiting_for_room:
            # a new generation starts its clocks anew; a fetch loop waiting for a busy
            # stage delivers nothing to any stage: not a stall
            self.generation, self.seen, self.since = generation, {}, {}
            return {}
        sought: dict[TP, int] = {}
        for tp in sorted(consumer.assignment()):
            stage = self.delivery.stage_of.get(tp.topic)
            if stage is None:
                continue
            read, highwater = consumer._read_offset.get(tp), consumer.highwater(tp)
            moved, self.seen[tp] = tp in self.seen and self.seen[tp] != read, read
            committed = consumer._committed_offset.get(tp)  # private (faust 0.15.3)
            done = max(committed or 0, self.guard.start.get(tp) or 0)
            waiting = highwater is not None and highwater > done
            idle = self.delivery.idle[stage] and not self.delivery.inbox[stage]
            if moved or not waiting or not idle:  # a stage still on a batch: not a stall
                self.since.pop(tp, None)
                continue
            if now - self.since.setdefault(tp, now) < STALL_SECONDS:
                continue
            self.since.pop(tp, None)
            target = read if read is not None else done
            if read is None and not committed:  # where the partition begins, from Kafka
                starts = await consumer.earliest_offsets(tp)
                if not self._still(generation, tp):
                    return sought
                self.guard.begins(starts)
                start = starts.get(tp) or 0
                if start >= highwater:
                    continue  # every record deleted by retention: nothing to read
                target = max(target, start)
            target = min([target, *self.guard.skipped.get(tp, ())])
            self.found[tp] = fetch_state(consumer, {tp})  # before the seek changes it
            self.guard.rewound[tp] = (target, time.monotonic())  # the guard's seek too
            try:
                await consumer.seek_wait({tp: target})  # on the consumer's thread (rewind)
            except IllegalStateError:  # revoked meanwhile
                continue
            if not self._still(generation, tp):
                return sought
            consumer.resume_partitions({tp})  # in Faust's active set: its records are taken
            sought[tp] = target
        return sought


async def commit_carried(app: faust.App, guard: Processed) -> dict[TP, int]:
    """Commit what this worker processed of a partition it kept through a rebalance, when
    Faust will not: it forgets acknowledged offsets when partitions are revoked
    (``on_partitions_revoked`` pops ``_acked``). A partition processed to its end in the
    seconds before a rebalance (commits go every 2 s) has no record left to acknowledge:
    it would stay uncommitted, its lag would never reach 0, :class:`Stalls` would read it
    again from its start, and so would the next owner or a restart. Only up to
    :attr:`Processed.reached` (no hole before it), never past a skipped record, never back,
    and only where Faust holds no acknowledgement of its own.
    Returns what was committed."""
    consumer = cast(Consumer, app.consumer)
    if consumer._commit_fut is not None:  # private (faust 0.15.3): Faust is committing
        return {}  # its offsets may be higher; the next second looks again
    committed = consumer._committed_offset  # private (faust 0.15.3), as below
    todo: dict[TP, int] = {}
    for tp in consumer.assignment():
        reached = guard.reached.get(tp)
        if reached is None or consumer._acked.get(tp):  # Faust commits those itself
            continue
        if (committed.get(tp) or 0) >= reached:
            continue
        if any(offset < reached for offset in guard.skipped.get(tp, ())):
            continue  # a record before it must come again first
        todo[tp] = reached
    if not todo:
        return {}
    before = {tp: committed.get(tp) for tp in todo}
    # private (faust 0.15.3): drops revoked partitions; it records the offsets as committed
    # even when Kafka refused them (a rebalance meanwhile): put back what was there then
    if not await consumer._commit_offsets(todo):
        for tp, offset in before.items():
            if offset is None:
                committed.pop(tp, None)
            else:
                committed[tp] = offset
        return {}
    guard.begins(todo)  # the stall watchdog's "done" too
    return todo


def keep_holes_uncommitted(consumer: Any) -> None:
    """Faust's consumer never commits past a record it did not process (see
    :class:`Continuity`): its gap bookkeeping (private, faust-streaming 0.15.3) is off for
    this worker's consumer. A commit waits at a hole until the record is processed."""

    async def no_gap(tp: TP, offset_from: int, offset_to: int) -> None:
        log.warning("fetcher skipped input records: not committing past them",
                    topic=tp.topic, partition=tp.partition, first=offset_from,
                    last=offset_to)  # fmt: skip

    consumer._add_gap = no_gap


class Outbox:
    """Records of one batch (outputs, or changelog records), sent in one Kafka record batch
    per partition and awaited together.

    aiokafka's ``send`` costs a metadata wait, a partitioner call and a future per record,
    and Faust's driver a sensor call more: measured, the produce path was a sixth of a
    worker's samples at about six records per event. A record batch built per partition
    costs an append per record (``create_batch`` and ``send_batch``, public in aiokafka).
    The records of one partition keep their order: they go in one batch, or in batches one
    after another (aiokafka sends one batch per partition at a time)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self.records = 0
        self._open: dict[tuple[str, int], tuple[Any, list[int]]] = {}  # builder, [records]
        self._sent: list[tuple[tuple[str, int], int, asyncio.Future[Any]]] = []
        self._partitions: dict[str, list[int]] = {}

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None,
        partition: int | None = None,
    ) -> None:
        if partition is None:  # the key's partition, as the producer's partitioner picks it
            if topic not in self._partitions:
                self._partitions[topic] = sorted(await self.producer.partitions_for(topic))
            partitions = self._partitions[topic]
            partition = partition_for(key, partitions, partitions)
        tp = (topic, partition)
        record = {"timestamp": None, "key": key, "value": value, "headers": list(headers or ())}
        batch = self._open.get(tp)
        if batch is not None and batch[0].append(**record) is not None:
            batch[1][0] += 1
        else:  # none open, or it is full (it goes): a new batch takes any record as its first
            if batch is not None:
                await self._close(tp)
            builder = self.producer.create_batch()
            builder.append(**record)
            self._open[tp] = (builder, [1])
        self.records += 1

    async def _close(self, tp: tuple[str, int]) -> None:
        builder, count = self._open.pop(tp)
        future = await self.producer.send_batch(builder, tp[0], partition=tp[1])
        self._sent.append((tp, count[0], future))

    async def delivered(self) -> dict[tuple[str, int], int]:
        """Send what is open and wait until Kafka acknowledged every record; the offset of
        the last record written per (topic, partition)."""
        for tp in list(self._open):
            await self._close(tp)
        last: dict[tuple[str, int], int] = {}
        if self._sent:
            metas = await asyncio.gather(*(f for _, _, f in self._sent))
            for (tp, count, _), meta in zip(self._sent, metas, strict=True):
                last[tp] = max(last.get(tp, -1), meta.offset + count - 1)  # base offset + n
            self._sent.clear()
        return last


def kafka_producer(app: faust.App) -> AIOKafkaProducer:
    """The aiokafka producer below Faust's (private in faust 0.15.3: the module docstring)."""
    return cast(AIOKafkaProducer, app.producer._ensure_producer())  # type: ignore[attr-defined]


def settled(app: faust.App) -> bool:
    """Partitions placed, tables recovered, records flowing: the worker's steady state."""
    recovery = app.tables.recovery  # type: ignore[attr-defined]  # TableManagerT lacks it
    return bool(
        not app.rebalancing and recovery.completed.is_set() and app.flow_control.is_active()
    )


async def reread(app: faust.App, guard: Processed, metrics: Metrics, where: str) -> None:
    """Records Faust skipped, sought back to so that they come again (:class:`Processed`).
    Not while partitions move or tables recover: what is read then is not delivered, and
    Faust seeks partitions itself when that ends (the next batch or timer seeks the rest)."""
    if not settled(app):
        return
    for tp, first in (await guard.rewind()).items():
        log.warning("input records skipped by Faust: reading them again", stage=where,
                    topic=tp.topic, partition=tp.partition, first=first)  # fmt: skip
        metrics.skipped_reread.labels(where).inc()


def guard_commits(app: faust.App, settings: Settings) -> Processed:
    """The worker's consumer commits only what a stage processed, and never past a hole
    (:class:`Processed`, :func:`keep_holes_uncommitted`): called once, when the worker
    starts (Faust creates its consumer then)."""
    consumer = app.consumer
    keep_holes_uncommitted(consumer)
    return Processed(consumer, {full_name(t, settings.topic_prefix) for t in WORKER_INPUTS})


def run_stage(
    app: faust.App,
    settings: Settings,
    metrics: Metrics,
    stage: Stage[Any],
    processed: Callable[[], Processed],
    delivery: Delivery,
) -> TableT[bytes, Any]:
    """A task that runs ``stage`` over batches of its input topics (subscribed here, delivered
    by ``delivery``), with its state table (returned)."""
    prefix = settings.topic_prefix
    table = app.Table(
        f"{stage.name}-state",
        key_type=bytes,  # keys are the record keys as they are: changelog recovery too
        # a building's or a household's state can outgrow Kafka's default 1 MB per record
        extra_topic_configs=changelog_configs(settings),  # its data class (streams/topics.py)
        options={
            "driver": "rocksdict",
            "block_cache_size": settings.rocksdb_block_cache_bytes,
            "block_cache_compressed_size": 0,
        },
    )
    channel = app.topic(
        *(full_name(t, prefix) for t in stage.inputs),
        key_serializer="raw",
        value_serializer="raw",
    )
    app.topics.add(channel)  # subscribed and assigned with the tables, as an agent's would be
    batch_size = metrics.batch_size.labels(stage.name)
    observe = _Observer(metrics, stage.name, prefix)
    continuity = Continuity()

    changelog = table.changelog_topic.get_topic_name()

    delivered, local = Delivered(), LocalStore(table)

    async def durably(writes: dict[bytes, Any], last: dict[bytes, Any]) -> dict[bytes, bytes]:
        """Send each key's entry to its changelog partition, wait until Kafka acknowledged
        every record, then write the entries to RocksDB (Faust's own table writes go
        through a buffer whose flush gives up after a timeout: not good enough for step 1).
        A store is never ahead of its changelog: a crash before the store writes leaves
        them to Faust's recovery at the restart, which reads the changelog from the
        store's reached offset, written with the entries (:class:`LocalStore`). Returns
        what was written."""
        out, written = Outbox(kafka_producer(app)), {}
        for key, entry in writes.items():
            # Encoded once, for the store and the changelog: the store keeps them as the
            # changelog carries them (so does Faust's recovery), and reads them as JSON.
            written[key] = codecs.dumps("json", entry)
            await out.send(changelog, key, written[key], None, last[key].partition)
        reached = {partition: offset for (_, partition), offset in (await out.delivered()).items()}
        local.write({key: (last[key].partition, value) for key, value in written.items()}, reached)
        return written

    async def read_again(batch: Sequence[Any]) -> None:
        """Holes in this batch's offsets go to the guard, which seeks back to every record
        that must come again (:class:`Continuity`, :class:`Processed`)."""
        consumer, guard = cast(Consumer, app.consumer), processed()
        committed = dict(consumer._committed_offset)  # private (faust 0.15.3): docstring
        tps = {m.tp for m in batch}
        known = continuity.next if app.consumer_generation_id == continuity.generation else {}
        fresh = {tp for tp in tps if committed.get(tp) is None and tp not in known}
        if fresh:  # nothing committed yet: the partition starts where its log starts
            starts = await consumer.earliest_offsets(*fresh)
            guard.begins(starts)
            committed.update(starts)
        holes = continuity.holes(batch, app.consumer_generation_id, committed)
        guard.begins({tp: continuity.before[tp] for tp in tps if tp in continuity.before})
        for tp, (first, came) in holes.items():
            log.warning("input records skipped by the consumer: reading them again",
                        stage=stage.name, topic=tp.topic, partition=tp.partition,
                        first=first, came=came)  # fmt: skip
            metrics.skipped_reread.labels(stage.name).inc(came - first)
            guard.missing(tp, first)
        await reread(app, guard, metrics, stage.name)

    async def checkpoint(batch: Sequence[Any]) -> None:
        await read_again(batch)
        by_key: dict[bytes, list[Message]] = {}
        last: dict[bytes, Any] = {}
        for m in batch:
            key = m.key or b""
            origin = f"{m.topic}/{m.partition}/{m.offset}"
            topic = logical_name(m.topic, prefix)
            by_key.setdefault(key, []).append(
                Message(topic, key, m.value, origin, caused_at(m.headers))
            )
            last[key] = m
        stored = local.read({key: m.partition for key, m in last.items()})
        todo = plan(stage, {k: delivered.entry(k, v) for k, v in stored.items()}, by_key)
        observe.results(todo.results)
        observe.consumed(batch)
        stored.update(await durably(todo.writes, last))  # 1. state with its outbox, acked
        out = Outbox(kafka_producer(app))  # 2. every output sent and acknowledged
        for o in (sealed(o, settings.dead_letter_key) for o in todo.outputs):
            await out.send(full_name(o.topic, prefix), o.key, o.value, list(o.headers))
        await out.delivered()
        if todo.purges:  # 3. an erasure's outbox: gone, durably
            stored.update(await durably(todo.purges, last))
        for key in todo.clears:  # and the outboxes delivered: in memory (Delivered)
            delivered.mark(key, stored[key])
        processed().mark(batch)
        processed().carry(continuity.next)  # no hole before these: committable as is
        # 4. offsets: committed by Faust on its interval, after flushing the producer

    async def batches() -> None:
        processed()  # the commit guards, before this stage's first record is acknowledged
        while True:
            batch = await delivery.take(stage.name, settings.batch_size,
                                        settings.batch_within_seconds)  # fmt: skip
            if not batch:
                continue  # all of it read in an earlier generation: skipped, read again
            batch_size.observe(len(batch))
            try:
                await checkpoint(batch)
            except asyncio.CancelledError:
                if not app.should_stop:  # nobody stops this task but the worker: never silent
                    log.critical("stage cancelled while the worker runs: stopping before its "
                                 "offsets are committed", stage=stage.name)  # fmt: skip
                    os._exit(70)
                raise  # the worker is stopping: the batch was not committed
            except BaseException as exc:
                # Acknowledging the batch would let its offsets be committed without its
                # outputs. Stop hard instead, like a kill -9: the checkpoint order makes that
                # one more replay (docs/adr/0001).
                log.critical("stage failed: stopping before its offsets are committed",
                             stage=stage.name, error=type(exc).__name__)  # fmt: skip
                os._exit(70)
            ack = app.consumer.ack
            for message in batch:
                ack(message)  # processed (marked): committable

    app.task(batches)
    return table


class _Observer:
    """Metrics and logs of one stage's results (labels: bounded, never an id)."""

    def __init__(self, metrics: Metrics, stage: str, prefix: str) -> None:
        self.m, self.stage, self.prefix = metrics, stage, prefix
        self.outcomes = {o: metrics.link_outcomes.labels(o) for o in LINK_OUTCOMES}
        self.latency = metrics.processing_latency.labels(stage)
        self.relinked_age = metrics.relinked_fact_age.labels(stage)
        self.histograms = {
            "alert_latency": metrics.alert_latency,
            "time_to_acknowledge": metrics.time_to_acknowledge,
        }

    def consumed(self, batch: Sequence[Any]) -> None:
        per_topic: dict[str, int] = {}
        for message in batch:
            per_topic[message.topic] = per_topic.get(message.topic, 0) + 1
        for name, n in per_topic.items():
            self.m.events_consumed.labels(name, self.stage).inc(n)

    def results(self, results: Sequence[Result[Any]]) -> None:
        """A batch's results: the produced counter once per topic, the rest per result."""
        produced: Counter[str] = Counter()
        counts: Counter[tuple[str, ...]] = Counter()
        now = time.time()
        for result in results:
            produced.update(o.topic for o in result.outputs)
            counts.update(result.counts)
            self.result(result, now)
        for topic, n in produced.items():
            self.m.events_produced.labels(full_name(topic, self.prefix), self.stage).inc(n)
        self.counts(counts)

    def result(self, result: Result[Any], now: float) -> None:
        """What is observed per result: dead letters (each logged), latencies."""
        m = self.m
        for o in result.outputs:
            if o.topic == DLQ_STREAMS:
                h = {k: v.decode() for k, v in o.headers}
                m.dead_letters.labels(self.stage, h["dl_source"], h["dl_reason_code"]).inc()
                log.warning("record dead-lettered", stage=self.stage, reason_code=h[
                    "dl_reason_code"], reason=h["dl_reason"], origin=h["dl_origin"])  # fmt: skip
        for caused in result.caused_at:
            self.latency.observe(max(0.0, now - caused))
        for received in result.relinked_at:
            self.relinked_age.observe(max(0.0, now - received))
        for metric, observed, value in result.observations:
            self.histograms[metric].labels(*observed).observe(value)

    def counts(self, counts: Counter[tuple[str, ...]]) -> None:
        """A batch's counts (``Result.counts``, added up), each counter incremented once."""
        m = self.m
        for (metric, *labels), n in counts.items():
            if metric == "link_outcome" and labels[0] in self.outcomes:
                self.outcomes[labels[0]].inc(n)
            elif metric == "alert_change":
                m.alert_changes.labels(*labels).inc(n)
                log.info("alert changed", rule_id=labels[0], team=labels[2], change=labels[3],
                         alerts=n)  # fmt: skip
            elif metric == "alert_outcome":
                m.alert_outcomes.labels(*labels).inc(n)
            elif metric == "alert_raised":
                m.alerts_raised.labels(*labels).inc(n)
            elif metric == "unrouted":
                m.alerts_unrouted.labels(*labels).inc(n)
            elif metric == "alert_action":
                m.alert_actions.labels(*labels).inc(n)
            elif metric == "late_fact":
                m.late_facts.labels(self.stage).inc(n)


SWEEP_YIELD_EVERY = 200  # keys between yields to the event loop: the stages keep running


def sweep(app: faust.App, settings: Settings, table: TableT[bytes, Any], stage: Timed[Any]) -> None:
    """Every ``expiry_sweep_seconds``: the stage's due records for every key in this
    worker's active partitions, sent to the stage's own input (:class:`stage.Timed`).

    Each worker sweeps only what it owns, so after a rebalance the new owner takes over;
    a sweep that overlaps a batch, or runs twice, sends records with the same ids, which
    the stage applies once.
    """
    prefix = settings.topic_prefix

    @app.timer(interval=settings.expiry_sweep_seconds)  # type: ignore[untyped-decorator]  # mode's timer decorator is unannotated
    async def due() -> None:
        # Not while partitions move or tables recover: the owner is not settled, and the
        # store must not be read beside its recovery (the next sweep comes soon enough).
        if not settled(app):
            return
        now, out = time.time(), Outbox(kafka_producer(app))
        for n, (key, entry) in enumerate(table.items()):  # active partitions only
            for o in stage.due(entry["state"], key, now):
                await out.send(full_name(o.topic, prefix), o.key, o.value, list(o.headers))
            if n % SWEEP_YIELD_EVERY == SWEEP_YIELD_EVERY - 1:
                await asyncio.sleep(0)
        if out.records:
            log.info("due records sent", stage=stage.name, records=out.records)
            await out.delivered()


def reread_skipped(
    app: faust.App, metrics: Metrics, guard: Callable[[], Processed], delivery: Delivery
) -> None:
    """Every second: skipped records sought back to also when no batch comes to do it (a
    quiet worker right after a rebalance), stalled partitions read again (:class:`Stalls`),
    and the partitions whose commits wait for a record counted
    (``wijkhub_commits_held_partitions``)."""
    stalls: list[Stalls] = []  # made with the guard, when the worker runs

    @app.timer(interval=1.0)  # type: ignore[untyped-decorator]  # mode's timer decorator is unannotated
    async def rewind() -> None:
        held = guard().held & app.consumer.assignment()
        metrics.commits_held.set(len(held))
        await reread(app, guard(), metrics, "timer")
        if not settled(app):
            return
        for tp, offset in (await commit_carried(app, guard())).items():
            log.info("committed what this worker processed before the rebalance",
                     topic=tp.topic, partition=tp.partition, offset=offset)  # fmt: skip
        if not stalls:
            stalls.append(Stalls(app, guard(), delivery))
        for tp, offset in (await stalls[0].check(time.monotonic())).items():
            log.warning("input partition delivered nothing with records waiting: reading it "
                        "again", waited_seconds=STALL_SECONDS, topic=tp.topic,
                        partition=tp.partition, offset=offset,
                        fetch=stalls[0].found.pop(tp, {}))  # fmt: skip
            metrics.skipped_reread.labels("stalled").inc()


def measure_lag(app: faust.App, settings: Settings, metrics: Metrics) -> None:
    """Consumer lag per input partition, for the "lag growing" alert (every 5 s)."""
    inputs = {full_name(t, settings.topic_prefix) for t in WORKER_INPUTS}

    @app.timer(interval=5.0)  # type: ignore[untyped-decorator]  # mode's timer decorator is unannotated
    async def lag() -> None:
        # private (faust 0.15.3), see the module docstring; ConsumerT does not declare it
        committed = cast(Consumer, app.consumer)._committed_offset
        for tp in app.consumer.assignment():
            if tp.topic not in inputs:
                continue
            highwater = app.consumer.highwater(tp)
            if highwater is None:
                continue  # just assigned: no fetch yet, no highwater to measure against
            name = logical_name(tp.topic, settings.topic_prefix)
            lag_now = max(0, highwater - (committed.get(tp) or 0))
            metrics.consumer_lag.labels(name, str(tp.partition)).set(lag_now)
