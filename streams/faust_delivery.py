"""Input records to the stages in batches, straight from the fetcher (not record by record
through Faust's streams).

Measured on this project's broker (issue 19): a Faust agent that does nothing but
``take_events(500)`` receives 7,500 records/s; aiokafka's ``getmany`` delivers 300,000.
Per record, Faust's fetch loop starts four tasks and waits for the first to finish
(``wait_first(callback(message), suspend_flow.wait())``), the conductor makes an event,
and a queue, the stream's iterator and ``take_events`` each hand it on. A worker reads
about three records per input event (raw, ``by-address``, ``linked``), so this path alone
took some 400 µs of every event — about a third of the worker's time.

So the worker's consumer gets its own fetch loop (:meth:`Delivery.drain`, replacing the
private ``Consumer._drain_messages`` of faust-streaming 0.15.3 on that consumer only;
docs/adr/0004). It keeps Faust's rules for where reading resumes, and Faust's own path
for every other topic (the tables' changelogs during recovery). A stage input record goes
into its stage's inbox, tracked as Faust tracks a record in flight (a rebalance waits for
it to be acknowledged). :meth:`Delivery.take` hands a stage its next batch; a record read
in an earlier consumer generation, or while partitions move, is acknowledged as *skipped*
(:class:`~wijkhub.streams.faust_adapter.Processed` reads it again), as Faust's stream
skips it. Everything else stays Faust's: the group membership and partition assignment,
the tables and their recovery, the offset commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import faust
from faust.types import TP

from wijkhub.logs import get as get_logger

log = get_logger("wijkhub.streams")


FETCH_WAIT_MS = 100  # at most this long does the broker hold a fetch that finds nothing


def shorten_fetch_wait(consumer: Any) -> None:
    """The worker's aiokafka consumer asks the broker to hold an empty fetch for at most
    ``FETCH_WAIT_MS``, not the 1,500 ms faust-streaming 0.15.3 fixes.

    aiokafka keeps one fetch in flight per broker, and leaves out of it the partitions
    whose records it holds that were not taken yet. Once those are taken, they wait for
    the fetch in flight to come back, which the broker holds until one of *its*
    partitions has a record, or for the whole wait: a stage's input can sit that long
    with records on the broker (issue 19: the live p99). A shorter wait costs an empty
    fetch now and then on a quiet worker. Faust creates the aiokafka consumer when its
    consumer thread starts (``AIOKafkaConsumerThread._create_worker_consumer``, private);
    aiokafka reads ``_fetch_max_wait_ms`` (private) when that consumer starts."""
    thread = consumer._thread  # private (faust 0.15.3): docs/adr/0004
    create = thread._create_worker_consumer

    def created(transport: Any) -> Any:
        kafka = create(transport)
        kafka._fetch_max_wait_ms = FETCH_WAIT_MS  # private (aiokafka 0.14.0): docs/adr/0004
        return kafka

    thread._create_worker_consumer = created


class Delivery:
    """Per stage, an inbox of input records; one fetch loop fills them."""

    def __init__(
        self,
        app: faust.App,
        stage_of: dict[str, str],
        limit: int,
        dropped: Callable[[TP, int], None],
    ) -> None:
        self.app = app
        self.dropped = dropped  # a stage input read while partitions move: read it again
        self.stage_of = stage_of  # full topic name → stage name
        self.limit = limit  # records an inbox holds before the fetch loop waits
        self.inbox: dict[str, deque[Any]] = {s: deque() for s in set(stage_of.values())}
        self.ready = {s: asyncio.Event() for s in self.inbox}
        self.room = {s: asyncio.Event() for s in self.inbox}
        self.waiting_for_room = False  # the fetch loop waits for a stage to take its batch
        self.idle = dict.fromkeys(self.inbox, False)  # the stage waits in take(), no batch

    def install(self, consumer: Any) -> None:
        """Replace the fetch loop of the worker's consumer (before its fetcher starts), and
        shorten the broker's wait on a fetch (:func:`shorten_fetch_wait`)."""
        consumer._drain_messages = self.drain  # private (faust 0.15.3): docs/adr/0004
        shorten_fetch_wait(consumer)

    async def drain(self, fetcher: Any) -> None:
        """Faust's ``Consumer._drain_messages`` (0.15.3), with stage inputs put in an inbox.

        Faust drops a record below the partition's read position (a prefetch from before a
        seek). For a stage input that rule defeats a seek back: the rest of the fetch in
        hand, past the record sought, moves the read position up again, and the record
        sought is dropped when it comes — measured: a two-worker bench of 100,000 events
        sought ``raw.population`` back to offset 0 every 5 s for minutes. So a stage input
        is always delivered: a record twice is processed twice, which changes nothing
        (ADR 0002), and a rewind reads what it sought. While flow is suspended (partitions
        moving) a stage input is not delivered, but it was read: ``dropped`` says so, and
        the commit guard has it read again (Faust seeks a partition back afterwards only
        if it has a committed offset above 0: aiokafka's ``seek_to_committed``). The
        records come from :meth:`fetch`, which reports what it drops the same way."""
        consumer = self.app.consumer
        c: Any = consumer
        callback, fetch = c.callback, self.fetch
        read_offset = c._read_offset  # private (faust 0.15.3)
        suspended = c.suspend_flow.is_set
        consumer_stopped, fetcher_stopped = c._stopped.is_set, fetcher._stopped.is_set
        stage_of, inbox, ready, limit = self.stage_of, self.inbox, self.ready, self.limit
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records = fetch(1.0)
                await asyncio.sleep(0)  # a fetch can return at once, again and again
                async for tp, message in records:
                    stage = stage_of.get(tp.topic)
                    if stage is None:  # a changelog in recovery: Faust's own path and rule
                        last = read_offset[tp]
                        if last is None or message.offset >= last:
                            await c.wait_first(callback(message), c.suspend_flow.wait())
                            read_offset[tp] = message.offset
                        continue
                    if suspended():
                        read_offset[tp] = message.offset
                        self.dropped(tp, message.offset)  # partitions moving: read again
                        continue
                    read_offset[tp] = message.offset
                    message.tracked = True
                    c.track_message(message)  # in flight: a rebalance waits for its ack
                    inbox[stage].append(message)
                    ready[stage].set()
                    if len(inbox[stage]) >= limit:
                        await self._wait_for_room(stage)
        except c.consumer_stopped_errors:
            if c.transport.app.should_stop:
                log.info("consumer stopped: the worker is shutting down")
                return
            raise
        except asyncio.CancelledError:
            if c.transport.app.should_stop:
                return
            raise

    async def fetch(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        """Faust's ``Consumer.getmany`` (0.15.3), saying which stage inputs it fetched and
        did not hand on.

        Faust's stops handing on a fetch in hand when flow stops or the consumer generation
        changes, and skips the records of a partition out of its active set: dropped, after
        aiokafka moved its position past them. With nothing committed (aiokafka's
        ``seek_to_committed`` seeks only above 0) nothing sought them back. Measured: in a
        two-worker bench of 100,000 events a worker had fetched ten ``raw`` and
        ``by-address`` partitions to their end when the second worker joined, and they
        delivered not one record until :class:`~wijkhub.streams.faust_adapter.Stalls`
        found them idle, at the end of the backlog (a third of the run). Here the lowest
        such offset per partition goes to ``dropped``: read again, commits held until
        then."""
        c: Any = self.app.consumer
        records, active = await c._wait_next_records(timeout)  # private (faust 0.15.3)
        generation = self.app.consumer_generation_id
        if records is None or c.should_stop:
            return  # stopping: nothing is committed past what a stage processed
        handed: dict[TP, int] = {}  # per partition, the offset after the last one handed on
        try:
            if not c.flow_active:  # flow stopped since the fetch: as Faust does
                try:
                    await c.perform_seek()
                except Exception as exc:  # partitions moving: Faust logs it and goes on
                    log.warning("seek back to committed offsets failed while partitions "
                                "move", error=type(exc).__name__)  # fmt: skip
                return
            to_message = c._to_message
            for tp, record in c.scheduler.iterate(records):
                if not c.flow_active or self.app.consumer_generation_id != generation:
                    return
                if active is None or tp in active or tp in c._buffered_partitions:
                    self.app.monitor.track_tp_end_offset(tp, c.highwater(tp))
                    handed[tp] = record.offset + 1
                    yield tp, to_message(tp, record)
        finally:
            self._report_dropped(records, handed, self.app.consumer_generation_id == generation)

    def _report_dropped(
        self, records: dict[TP, list[Any]], handed: dict[TP, int], same_generation: bool
    ) -> None:
        """The guard reads the rest again. Within the generation (flow stopped) the read
        offset moves up to the last record dropped, so that the guard seeks back (it seeks
        only below it). After a generation change the read offset is Faust's again: none
        (revoked; the guard seeks) or the committed offset it sought to (the records come
        again without a seek): it is left as it is."""
        read_offset = self.app.consumer._read_offset  # type: ignore[attr-defined]  # private
        for tp, fetched in records.items():
            if tp.topic not in self.stage_of:
                continue  # a changelog: Faust's own rules, its recovery reads it again
            after = handed.get(tp)
            rest = [r.offset for r in fetched if after is None or r.offset >= after]
            if not rest:
                continue
            if same_generation and read_offset.get(tp) is not None:
                read_offset[tp] = max(read_offset[tp], rest[-1])
            self.dropped(tp, rest[0])

    async def _wait_for_room(self, stage: str) -> None:
        consumer: Any = self.app.consumer
        room = self.room[stage]
        room.clear()
        self.waiting_for_room = True
        try:
            while len(self.inbox[stage]) >= self.limit and not consumer.suspend_flow.is_set():
                await consumer.wait_first(room.wait(), consumer.suspend_flow.wait())
                room.clear()
        finally:
            self.waiting_for_room = False

    async def take(self, stage: str, size: int, within: float) -> list[Any]:
        """The stage's next batch: up to ``size`` records, waiting at most ``within`` seconds
        after the first for more (as ``take_events``). Records read in an earlier consumer
        generation, or while partitions move, are acknowledged unprocessed (skipped: read
        again, never committed) and left out."""
        self.idle[stage] = True
        try:
            return await self._take(stage, size, within)
        finally:
            self.idle[stage] = False

    async def _take(self, stage: str, size: int, within: float) -> list[Any]:
        inbox, ready = self.inbox[stage], self.ready[stage]
        while not inbox:
            ready.clear()
            with contextlib.suppress(TimeoutError):  # look again: also when partitions move
                await asyncio.wait_for(ready.wait(), timeout=1.0)
            self._skip_stale(stage)
        deadline = time.monotonic() + within
        while len(inbox) < size:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready.clear()
            try:
                await asyncio.wait_for(ready.wait(), timeout=left)
            except TimeoutError:
                break
        self._skip_stale(stage)
        batch = [inbox.popleft() for _ in range(min(size, len(inbox)))]
        self.room[stage].set()
        return batch

    def _skip_stale(self, stage: str) -> None:
        """Acknowledge, unprocessed, what must not be processed now (Faust's stream skips
        the same: ``Stream._py_aiter``)."""
        app: Any = self.app
        inbox = self.inbox[stage]
        if not inbox:
            return
        generation, moving = app.consumer_generation_id, not app.flow_control.is_active()
        if moving:
            stale = list(inbox)
            inbox.clear()
        elif inbox[0].generation_id != generation or inbox[-1].generation_id != generation:
            stale = [m for m in inbox if m.generation_id != generation]
            kept = [m for m in inbox if m.generation_id == generation]
            inbox.clear()
            inbox.extend(kept)
        else:
            return
        for message in stale:
            app.consumer.ack(message)  # not marked processed: skipped, read again
        self.room[stage].set()


def fetch_state(consumer: Any, only: set[TP] | None = None) -> dict[str, Any]:
    """aiokafka's view per assigned partition (read from this thread: a snapshot, for the
    eye only): its fetch position, whether it waits for an offset reset, whether a fetch
    is held for it that Faust has not taken, and whether Faust's fetch loop takes it."""
    try:
        kafka = consumer._thread._consumer  # private (faust 0.15.3 / aiokafka)
        assignment = kafka._subscription.subscription.assignment
        records = kafka._fetcher._records
    except AttributeError:
        return {}
    state: dict[str, Any] = {}
    for tp in assignment.tps:
        if only is not None and tp not in only:
            continue
        value = assignment.state_value(tp)
        held = records.get(tp)
        state[f"{tp.topic}/{tp.partition}"] = {
            "position": value.position if value.has_valid_position else None,
            "reset": value.awaiting_reset,
            "paused": value.paused,
            "highwater": value.highwater,
            "fetched_not_taken": held is not None,  # aiokafka holds a fetch for it
            "active": tp in (consumer._active_partitions or ()),  # Faust takes its records
            "paused_in_faust": tp in consumer._paused_partitions,
        }
    return state
