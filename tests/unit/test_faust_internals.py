"""The Faust internals the adapter uses still have the shape it calls, and the Faust hazards
stay configured (docs/adr/0004-faust-private-apis.md).

An upgrade of faust-streaming, aiokafka, mode or rocksdict fails here first, offline,
before the integration tier finds it on a real broker.
"""

import asyncio
import inspect
import tomllib
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import faust.streams
import pytest
from faust.stores import rocksdb
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import Producer
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from wijkhub.streams import faust_adapter, faust_delivery
from wijkhub.streams.app import build_app
from wijkhub.streams.faust_store import LocalStore
from wijkhub.streams.topics import WORKER_INPUTS, full_name, logical_name

from builders import offline_worker_settings

REPO = Path(__file__).resolve().parents[2]
PINNED = ("faust-streaming", "mode-streaming", "aiokafka", "rocksdict", "orjson")


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    settings = offline_worker_settings(tmp_path_factory.mktemp("worker"))
    return build_app(settings), settings


def test_faust_and_its_kafka_client_are_pinned_exactly_and_installed_as_pinned():
    # faust-streaming #672: an aiokafka release broke Faust's driver; they move together.
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        name, _, pinned = dep.partition("==")
        pins[name.split("[")[0]] = pinned
    assert {name: version(name) for name in PINNED} == {name: pins[name] for name in PINNED}


def test_the_private_faust_apis_the_adapter_calls_are_there():
    assert "_committed_offset" in Consumer.__annotations__
    # the gap bookkeeping the worker turns off (streams/faust_adapter.keep_holes_uncommitted)
    assert list(inspect.signature(Consumer._add_gap).parameters) == [
        "self",
        "tp",
        "offset_from",
        "offset_to",
    ]
    assert "self._add_gap(" in inspect.getsource(Consumer._drain_messages)
    # what Delivery.fetch copies of Faust's getmany (and the private calls it makes)
    getmany = inspect.getsource(Consumer.getmany)
    for step in ("await self._wait_next_records(timeout)", "self.scheduler.iterate(records)",
                 "new_generation_id != generation_id", "tp in self._buffered_partitions",
                 "await self.perform_seek()", "to_message(tp, record)"):  # fmt: skip
        assert step in getmany, step
    # what commit_carried relies on: Faust forgets acknowledgements at a revoke, and commits
    # given offsets (only those still assigned) through _commit_offsets
    assert "self._acked.pop(tp, None)" in inspect.getsource(Consumer.on_partitions_revoked)
    assert list(inspect.signature(Consumer._commit_offsets).parameters)[:2] == ["self", "offsets"]
    assert "if tp in assignment:" in inspect.getsource(Consumer._commit_offsets)
    # streams/faust_store.LocalStore: a partition's database, the key of the offset a store
    # reached, which Faust reads back as an int (where its changelog recovery resumes)
    assert list(inspect.signature(rocksdb.Store._db_for_partition).parameters) == [
        "self",
        "partition",
    ]
    assert rocksdb.Store.offset_key == b"__faust\0offset__"
    assert "int(offset)" in inspect.getsource(rocksdb.Store.persisted_offset)
    # recovery writes the changelog's key and value as they are, per partition, as we do
    recovery = inspect.getsource(rocksdb.Store.apply_changelog_batch)
    assert "batches[msg.partition].put(msg.key, msg.value)" in recovery
    # positional, as pages calls it
    assert list(inspect.signature(Producer.send_and_wait).parameters)[:7] == [
        "self", "topic", "key", "value", "partition", "timestamp", "headers"
    ]  # fmt: skip
    # the aiokafka producer below Faust's, whose record batches the Outbox builds
    assert "return self._producer" in inspect.getsource(Producer._ensure_producer)


def test_stage_inputs_come_in_batches_from_the_workers_own_fetch_loop(app):
    # streams/faust_delivery: no Faust agent (so no agent concurrency: faust-streaming #606
    # cannot commit past a record in flight); one batch task per stage, fed by the
    # consumer's fetch loop, which replaced Consumer._drain_messages on this consumer only.
    worker, settings = app
    assert not worker.agents
    drain = worker.consumer._drain_messages
    delivery = drain.__self__
    assert isinstance(delivery, faust_delivery.Delivery) and drain == delivery.drain
    stage_of = {logical_name(t, settings.topic_prefix): s for t, s in delivery.stage_of.items()}
    assert stage_of == {
        "raw.population": "person", "raw.care": "person", "raw.youth": "person",
        "raw.income": "person", "raw.debt": "person", "raw.teams": "person",
        "erasure-requests": "person", "by-address": "address", "linked": "household",
        "alert-actions": "household",
    }  # fmt: skip
    assert set(stage_of) == set(WORKER_INPUTS)
    assert Consumer._drain_messages is not drain  # Faust's own consumers keep theirs
    # what the replacement copies from faust-streaming 0.15.3's loop, and how it is called
    faust_loop = inspect.getsource(Consumer._drain_messages)
    for kept in ("get_read_offset(tp)", "offset >= r_offset", "callback(message)",
                 "self.suspend_flow.wait()", "getmany(timeout=1.0)"):  # fmt: skip
        assert kept in faust_loop, kept
    from faust.transport.consumer import Fetcher

    assert "consumer._drain_messages(self)" in inspect.getsource(Fetcher)
    assert "generation_id != self.app.consumer_generation_id" in inspect.getsource(
        faust.streams.Stream._py_aiter
    )  # the skip rule Delivery.take keeps


def test_fausts_own_web_pages_are_off_and_the_server_binds_the_configured_host(app):
    worker, settings = app
    conf = worker.conf
    assert [
        conf.web_tables_enabled,
        conf.web_router_enabled,
        conf.web_graph_enabled,
        conf.web_stats_enabled,
        conf.web_metrics_enabled,
    ] == [False] * 5
    assert (conf.web_bind, conf.web_host) == (settings.web_host, settings.web_host)


def test_every_table_has_the_capped_rocksdb_block_cache(app):
    worker, settings = app
    capped = {"driver": "rocksdict", "block_cache_size": settings.rocksdb_block_cache_bytes,
              "block_cache_compressed_size": 0}  # fmt: skip
    assert {name: table.options for name, table in worker.tables.items()} == {
        "person-state": capped,
        "address-state": capped,
        "household-state": capped,
    }
    assert rocksdb.DEFAULT_BLOCK_CACHE_SIZE == 2 * 1024**3  # what the cap protects against


def test_the_worker_keeps_as_many_standby_table_copies_as_configured(app):
    from wijkhub.settings import Settings, SettingsError

    worker, settings = app
    assert settings.standby_replicas == 0 == worker.conf.table_standby_replicas  # not Faust's 1
    one = faust_adapter.new_app(settings.with_(standby_replicas=1))
    assert one.conf.table_standby_replicas == 1
    assert Settings.from_env({"WIJKHUB_STANDBY_REPLICAS": "1"}).standby_replicas == 1
    with pytest.raises(SettingsError, match="WIJKHUB_STANDBY_REPLICAS must be 0 or more"):
        Settings.from_env({"WIJKHUB_STANDBY_REPLICAS": "-1"})


def test_the_worker_runs_at_least_once(app):
    worker, _ = app
    assert (worker.conf.processing_guarantee.value, worker.conf.producer_acks) == (
        "at_least_once",
        -1,
    )


def test_fausts_json_codec_runs_on_orjson_and_still_writes_json_older_changelogs_share():
    # The tables' values and the changelog records durably() sends go through this codec;
    # orjson makes it several times faster (issue 19). A change of Faust's json module that
    # stops picking orjson up is a silent slowdown; one that stops writing JSON would make
    # changelogs written before unreadable in recovery.
    import json

    import orjson
    from faust.serializers import codecs
    from faust.utils import json as faust_json

    assert faust_json.orjson is orjson
    entry = {"state": {"facts": {"e1": {"day": "2026-01-02", "received": 1764495985.123456,
                                        "name": "Müller"}}}, "outbox": []}  # fmt: skip
    written = codecs.dumps("json", entry)
    assert json.loads(written) == entry  # what a stdlib reader (and recovery before) reads
    assert codecs.loads("json", json.dumps(entry).encode()) == entry  # and the other way


def test_the_store_gives_back_the_bytes_a_checkpoint_wrote_as_they_are(app):
    # Delivered knows a delivered entry by its stored bytes: a store that encoded them
    # again would make every outbox go out twice (never lose one, but cost a resend)
    from faust.serializers import codecs

    worker, _ = app
    table = worker.tables["person-state"]
    local = LocalStore(table)
    written = codecs.dumps("json", {"state": {"n": 1}, "outbox": []})
    local.write({b"k": (3, written), b"j": (1, b"{}")}, {3: 41})
    assert local.read({b"k": 3, b"j": 1, b"absent": 3}) == {b"k": written, b"j": b"{}"}
    assert local.read({b"k": 1}) == {}  # a key lives in its own partition only
    # Faust's own reads find it too, outside a batch (the household view page), decoded
    assert table.get(b"k") == {"state": {"n": 1}, "outbox": []}
    # the offset reached, written with the entries, is where Faust's recovery resumes
    assert table.data.persisted_offset(TP("person-state-changelog", 3)) == 41
    assert table.data.persisted_offset(TP("person-state-changelog", 1)) is None
    # a store Faust restored from the changelog holds what a checkpoint writes
    restored = _message("person-state-changelog", 42)
    restored.partition, restored.key, restored.value = 2, b"r", written
    table.data.apply_changelog_batch([SimpleNamespace(message=restored)], None, None)
    assert local.read({b"r": 2}) == {b"r": written}


def _message(topic: str, offset: int) -> ConsumerMessage:
    return ConsumerMessage(topic, 0, offset, 0.0, 0, None, b"k", b"v", None)


def test_a_record_the_stream_skipped_is_finished_but_never_committable(app):
    # faust-streaming acks a record its stream skips during a rebalance (streams/faust_adapter
    # .Processed); on the worker's own consumer (offline: no broker is contacted)
    worker, settings = app
    guard = faust_adapter.guard_commits(worker, settings)
    consumer = worker.consumer
    topic = full_name(WORKER_INPUTS[0], settings.topic_prefix)
    worker.topics._acking_topics.add(topic)  # as when the worker has subscribed
    skipped, processed = _message(topic, 7), _message(topic, 8)
    consumer._unacked_messages.update({skipped, processed})
    assert skipped.ack(consumer) is False
    assert skipped.acked and skipped not in consumer._unacked_messages  # no rebalance waits
    assert 7 not in consumer._acked[skipped.tp]  # never committed: read again
    guard.mark([processed])
    assert processed.ack(consumer) is True
    assert consumer._acked[processed.tp] == [8]
    assert not guard.done  # the mark is spent on its ack
    # no committed offset yet: Faust would commit 9 past the skipped 7; the guard waits
    assert consumer._committed_offset.get(processed.tp) is None
    assert consumer._new_offset(processed.tp) is None
    again = _message(topic, 7)  # read again (the guard sought back to it)
    guard.mark([again])
    assert again.ack(consumer) is True and not guard.skipped
    assert consumer._new_offset(processed.tp) is None  # where the log starts is not known
    guard.begins({processed.tp: 7})  # as read_again learns it for a fresh partition
    assert consumer._new_offset(processed.tp) == 9


def test_a_skipped_offset_retention_deleted_or_already_committed_stops_holding_commits(app):
    # streams/faust_adapter.Processed: a partition whose committed offset is past an old
    # skip, or whose log no longer holds it, must not hold its commits forever
    worker, settings = app
    guard = faust_adapter.guard_commits(worker, settings)
    consumer = worker.consumer
    tp = TP(full_name(WORKER_INPUTS[0], settings.topic_prefix), 3)
    guard.skipped[tp] = {3, 10, 20}
    consumer._committed_offset[tp] = 5  # 3 was processed before that commit

    async def earliest(*tps):
        return {t: 12 for t in tps}  # the log starts at 12: 10 was deleted by retention

    consumer.earliest_offsets = earliest
    asyncio.run(guard._forget_unreadable([tp]))
    assert guard.skipped[tp] == {20}
    guard.skipped[tp] = {4}
    asyncio.run(guard._forget_unreadable([tp]))
    assert tp not in guard.skipped  # nothing held: commits go on


def _offline_guard(app, monkeypatch, partition):
    """A guard on the worker's consumer with its broker calls answered offline."""
    worker, settings = app
    # on Faust's own methods, not on the wrappers of the guards other tests made
    monkeypatch.setattr(worker.consumer, "ack", Consumer.ack.__get__(worker.consumer))
    monkeypatch.setattr(worker.consumer, "_new_offset",
                        Consumer._new_offset.__get__(worker.consumer))  # fmt: skip
    guard = faust_adapter.Processed(worker.consumer, set())
    guard.inputs = {full_name(WORKER_INPUTS[0], settings.topic_prefix)}
    tp = TP(full_name(WORKER_INPUTS[0], settings.topic_prefix), partition)
    sought: list[tuple[TP, int]] = []

    async def seek_wait(offsets):
        sought.extend(offsets.items())

    async def earliest(*tps):
        return {t: 0 for t in tps}

    consumer = worker.consumer
    monkeypatch.setattr(consumer, "assignment", lambda: {tp})
    monkeypatch.setattr(consumer, "seek_wait", seek_wait)
    monkeypatch.setattr(consumer, "earliest_offsets", earliest)
    return guard, consumer, tp, sought


def test_a_commit_never_passes_the_record_at_the_committed_offset(app, monkeypatch):
    # Faust's own check (min(acked) - committed > 1) lets offset 10 pass unprocessed when
    # 10 is committed (next to read) and 11, 12 are acknowledged; the guard holds it
    guard, consumer, tp, _ = _offline_guard(app, monkeypatch, 11)
    consumer._committed_offset[tp] = 10
    consumer._acked[tp] = [11, 12]
    assert guard._new_offset(tp) is None and tp in guard.held
    assert consumer._acked[tp] == [11, 12]  # nothing taken off: committed later
    consumer._acked[tp] = [10, 11, 12]
    assert guard._new_offset(tp) == 13 and tp not in guard.held


def test_with_nothing_committed_a_commit_waits_for_where_the_log_starts(app, monkeypatch):
    guard, consumer, tp, _ = _offline_guard(app, monkeypatch, 12)
    consumer._committed_offset.pop(tp, None)
    consumer._acked[tp] = [5, 6]
    assert guard._new_offset(tp) is None  # where the partition begins is not known yet
    guard.begins({tp: 3})
    assert guard._new_offset(tp) is None  # 3 and 4 were never processed
    guard.begins({tp: 5})  # retention deleted 3 and 4
    assert guard._new_offset(tp) == 7
    guard.begins({tp: 0})  # where the log started before: never back
    assert guard.start[tp] == 5


def test_what_this_worker_processed_before_a_rebalance_does_not_hold_its_commits(app, monkeypatch):
    # nothing committed when the second worker joined; Faust forgot the acknowledged
    # offsets 0-311 at the rebalance and read on from 312 (no seek back without a commit).
    # Measured before: 8 partitions held their commits for good, the bench waited on lag.
    guard, consumer, tp, _ = _offline_guard(app, monkeypatch, 16)
    consumer._committed_offset.pop(tp, None)
    guard.begins({tp: 0})  # the log start, as read_again learns it
    consumer._acked[tp] = [312, 313]
    assert guard._new_offset(tp) is None  # 0-311: not known to be processed
    guard.begins({tp: 312})  # Continuity: processed here in the earlier generation
    assert guard._new_offset(tp) == 314


def test_what_this_worker_processed_of_a_kept_partition_is_committed_after_a_rebalance(
    app, monkeypatch
):
    # processed to its end just before a rebalance, nothing committed yet: Faust forgot the
    # acknowledgements and no record comes to acknowledge again (never committed, its lag
    # never 0, read again from its start by the stall watchdog, the next owner, a restart)
    guard, consumer, tp, _ = _offline_guard(app, monkeypatch, 17)
    worker, _ = app
    committed: list[dict] = []

    async def commit_offsets(offsets):
        committed.append(dict(offsets))
        consumer._committed_offset.update(offsets)
        return True

    monkeypatch.setattr(consumer, "_commit_offsets", commit_offsets)
    consumer._committed_offset.pop(tp, None)
    consumer._acked.pop(tp, None)

    def carried():
        return asyncio.run(faust_adapter.commit_carried(worker, guard))

    assert carried() == {}  # nothing processed here: nothing to commit
    guard.carry({tp: 3500})  # a stage's Continuity after its last batch
    guard.carry({tp: 3000})  # an older generation's position: never back
    guard.missing(tp, 3200)  # a record before it must come again: not yet
    assert carried() == {} and committed == []
    guard.mark([ConsumerMessage(tp.topic, tp.partition, 3200, 0.0, 0, None, b"k", b"v", None)])
    consumer._acked[tp] = [3600]  # Faust holds an acknowledgement: it commits itself
    assert carried() == {}
    consumer._acked.pop(tp)
    consumer._commit_fut = object()  # Faust's own commit in flight: not beside it
    try:
        assert carried() == {} and committed == []
    finally:
        consumer._commit_fut = None
    refused: list[dict] = []

    async def refuse(offsets):  # a rebalance meanwhile: Faust records them all the same
        refused.append(dict(offsets))
        consumer._committed_offset.update(offsets)
        return False

    monkeypatch.setattr(consumer, "_commit_offsets", refuse)
    assert carried() == {} and refused == [{tp: 3500}]
    assert consumer._committed_offset.get(tp) is None  # put back: tried again
    monkeypatch.setattr(consumer, "_commit_offsets", commit_offsets)
    assert carried() == {tp: 3500} and committed == [{tp: 3500}]
    assert guard.start[tp] == 3500  # the stall watchdog sees nothing waiting below it
    assert carried() == {}  # committed: once


def _offline_fetch(app, monkeypatch, fetched, active):
    """The worker's fetch over ``fetched`` (partition → offsets), as aiokafka would hand
    them with ``active`` partitions taken, dropped records reported to the guard."""
    from aiokafka.structs import ConsumerRecord

    worker, _ = app
    guard, consumer, _, sought = _offline_guard(app, monkeypatch, min(fetched).partition)
    delivery = worker.consumer._drain_messages.__self__
    monkeypatch.setattr(delivery, "dropped", guard.dropped)
    monkeypatch.setattr(consumer, "assignment", lambda: set(fetched))
    monkeypatch.setattr(consumer, "highwater", lambda _: 110)
    records = {at: [ConsumerRecord(at.topic, at.partition, o, 0, 0, b"k", b"v", None, 1, 1, ())
                    for o in offsets] for at, offsets in fetched.items()}  # fmt: skip

    async def wait_next_records(timeout):
        return records, set(active)

    monkeypatch.setattr(consumer, "_wait_next_records", wait_next_records)
    return guard, consumer, delivery, sought, records


def test_records_fausts_fetch_drops_at_a_rebalance_are_read_again(app, monkeypatch):
    # measured (100,000-event two-worker bench): a worker had fetched ten partitions to
    # their end when the second worker joined; Faust's getmany dropped the fetch in hand
    # (generation changed), aiokafka's position stayed at the end, nothing was committed:
    # not one record delivered until the stages went idle, a third of the run later
    worker, settings = app
    tp, other = (TP(full_name(WORKER_INPUTS[0], settings.topic_prefix), p) for p in (21, 22))
    guard, consumer, delivery, sought, fetched = _offline_fetch(
        app, monkeypatch, {tp: range(100, 110), other: range(7, 10)}, {tp, other}
    )
    generation = worker.consumer_generation_id
    for partition in (tp, other):
        consumer._committed_offset.pop(partition, None)
        consumer._read_offset[partition] = None  # revoked and assigned again: popped
    handed: list = []

    async def take_some():
        async for partition, message in delivery.fetch(1.0):
            handed.append((partition, message.offset))
            if len(handed) == 4:  # a rebalance starts
                monkeypatch.setattr(worker, "consumer_generation_id", generation + 1,
                                    raising=False)  # fmt: skip

    asyncio.run(take_some())
    assert len(handed) == 4
    for partition, records in fetched.items():
        got = [o for p, o in handed if p == partition]
        first_dropped = records[len(got)].offset  # handed on in order, the rest dropped
        assert got == [r.offset for r in records[: len(got)]]
        assert guard.skipped[partition] == {first_dropped}
    # after the rebalance the guard seeks each back (Faust's read offset was popped) and
    # holds its commits until the first dropped record is processed
    assert dict(sought) == {} and asyncio.run(guard.rewind()) == {
        p: fetched[p][len([o for q, o in handed if q == p])].offset for p in fetched
    }
    # a fetch handed on in full reports nothing; a partition out of Faust's active set
    # (its records skipped) is reported whole
    guard.skipped.clear()
    guard.rewound.clear()

    async def only_tp_active(timeout):
        return fetched, {tp}

    monkeypatch.setattr(consumer, "_wait_next_records", only_tp_active)  # the same records
    handed.clear()
    asyncio.run(take_some())
    assert [o for p, o in handed if p == tp] == list(range(100, 110))
    assert guard.skipped == {other: {7}}


def test_a_fetch_dropped_within_a_generation_is_sought_back_and_never_past_a_seek(app, monkeypatch):
    # flow stopped in the middle of a fetch, same generation: Faust's read offset still
    # says "read up to 101", the fetch went to 109; the guard must seek back to 102. After a
    # generation change Faust sought to the committed offset: left alone, no seek forward
    worker, settings = app
    tp = TP(full_name(WORKER_INPUTS[0], settings.topic_prefix), 23)
    guard, consumer, delivery, sought, _ = _offline_fetch(
        app, monkeypatch, {tp: range(100, 110)}, {tp}
    )
    consumer._committed_offset[tp] = 90

    async def take_two(stop):
        async for _, message in delivery.fetch(1.0):
            consumer._read_offset[tp] = message.offset  # as Delivery.drain does
            if message.offset == 101:
                stop()

    asyncio.run(take_two(lambda: monkeypatch.setattr(consumer, "flow_active", False)))
    monkeypatch.setattr(consumer, "flow_active", True)
    assert guard.skipped[tp] == {102} and consumer._read_offset[tp] == 109
    assert asyncio.run(guard.rewind()) == {tp: 102} and sought == [(tp, 102)]
    guard.skipped.clear()
    guard.rewound.clear()
    generation = worker.consumer_generation_id

    def rebalance():
        monkeypatch.setattr(worker, "consumer_generation_id", generation + 1, raising=False)
        consumer._read_offset[tp] = 90  # Faust's perform_seek: back to the committed offset

    asyncio.run(take_two(rebalance))
    assert guard.skipped[tp] == {102} and consumer._read_offset[tp] == 90
    assert asyncio.run(guard.rewind()) == {} and sought == [(tp, 102)]  # 102 comes again
    # flow stopped before the fetch was handed on: Faust's seek back, and its failure while
    # partitions move, never stop the fetch loop; what was fetched is read again
    guard.skipped.clear()
    monkeypatch.setattr(consumer, "flow_active", False)

    async def no_assignment():
        raise AssertionError("No partitions are currently assigned")

    monkeypatch.setattr(consumer, "perform_seek", no_assignment)
    asyncio.run(take_two(lambda: None))
    assert guard.skipped[tp] == {100}


def test_a_rewind_never_seeks_forward_past_records_not_yet_read(app, monkeypatch):
    guard, consumer, tp, sought = _offline_guard(app, monkeypatch, 13)
    consumer._committed_offset[tp] = 40
    guard.missing(tp, 50)
    consumer._read_offset[tp] = 45  # sought back to 40 by a rebalance: 50 comes anyway
    assert asyncio.run(guard.rewind()) == {} and sought == []
    assert guard.skipped[tp] == {50}  # still held until it is processed
    guard.rewound.clear()
    consumer._read_offset[tp] = 60  # read past it: only a seek brings it back
    assert asyncio.run(guard.rewind()) == {tp: 50} and sought == [(tp, 50)]


def test_a_rewind_of_a_partition_revoked_meanwhile_forgets_it(app, monkeypatch):
    from aiokafka.errors import IllegalStateError

    guard, consumer, tp, _ = _offline_guard(app, monkeypatch, 14)
    consumer._committed_offset[tp] = 1
    consumer._read_offset[tp] = 9
    guard.missing(tp, 4)

    async def revoked(offsets):
        raise IllegalStateError("No current assignment for partition")

    monkeypatch.setattr(consumer, "seek_wait", revoked)
    assert asyncio.run(guard.rewind()) == {}
    assert tp not in guard.skipped and tp not in guard.rewound  # its new owner reads it


def test_a_rewind_seeks_on_the_consumer_thread_not_the_calling_one():
    # Faust's threaded consumer: seek() changes aiokafka's fetch buffers from the caller's
    # thread (a KeyError in fetched_records stopped a worker); seek_wait() runs there
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    assert "call_thread(self._seek_wait" in inspect.getsource(AIOKafkaConsumerThread.seek_wait)
    assert "call_thread" not in inspect.getsource(AIOKafkaConsumerThread.seek)
    assert "seek_wait(" in inspect.getsource(faust_adapter.Processed.rewind)
    assert ".seek(" not in inspect.getsource(faust_adapter.Processed.rewind)


def test_two_copies_of_one_record_in_a_batch_are_both_processed_not_skipped(app, monkeypatch):
    # a partition sought back to can deliver a record twice in one batch (the copy read
    # before the seek and the one read again); both are marked, both acknowledged, and
    # neither counts as skipped (which would seek back again, and again)
    worker, _ = app
    guard, consumer, tp, _ = _offline_guard(app, monkeypatch, 15)
    topic = tp.topic
    worker.topics._acking_topics.add(topic)
    monkeypatch.setattr(consumer, "ack", guard._ack)
    first, again = (ConsumerMessage(topic, 15, 4, 0.0, 0, None, b"k", b"v", None)
                    for _ in range(2))  # fmt: skip
    guard.mark([first, again])
    assert guard._ack(first) is True
    assert guard._ack(again) is False  # already acknowledged once: not committable twice
    assert tp not in guard.skipped and not guard.done


def test_a_record_read_while_partitions_move_is_read_again_where_nothing_is_committed(
    app, monkeypatch
):
    # a defence (Faust's getmany does not yield while flow is stopped): Faust seeks back
    # only partitions committed above 0 (aiokafka seek_to_committed), so a record the fetch
    # loop reads and does not deliver while partitions move must be read again by the guard
    worker, _ = app
    guard, consumer, tp, sought = _offline_guard(app, monkeypatch, 17)
    delivery = worker.consumer._drain_messages.__self__
    monkeypatch.setattr(delivery, "dropped", guard.dropped)
    consumer._committed_offset.pop(tp, None)
    guard.rewound[tp] = (29, 0.0)  # a seek back to 29 made earlier: this read used it up
    read = [(tp, ConsumerMessage(tp.topic, tp.partition, o, 0.0, 0, None, b"k", b"v", None))
            for o in (30, 31)]  # fmt: skip

    def fetch(timeout):
        async def records():
            for item in read:
                yield item
            consumer._stopped.set()  # one fetch, then the loop ends

        return records()

    monkeypatch.setattr(delivery, "fetch", fetch)
    consumer.suspend_flow.set()  # partitions moving
    try:
        asyncio.run(delivery.drain(type("Fetcher", (), {"_stopped": asyncio.Event()})()))
    finally:
        consumer.suspend_flow.clear()
        consumer._stopped.clear()
    assert not any(delivery.inbox.values())  # not delivered while partitions move
    assert guard.skipped[tp] == {30} and tp not in guard.rewound
    consumer._acked[tp] = [32]
    guard.begins({tp: 0})
    assert guard._new_offset(tp) is None  # nothing committed past 30 until it comes
    consumer._read_offset[tp] = None  # as perform_seek leaves a partition with no commit
    assert asyncio.run(guard.rewind()) == {tp: 30} and sought == [(tp, 30)]


def test_the_workers_partitioner_is_kafkas_default_one(app):
    # co-partitioning with every other Kafka client rests on it: murmur2 of the key
    from aiokafka.partitioner import DefaultPartitioner

    worker, _ = app
    assert worker.conf.producer_partitioner is faust_adapter.partition_for
    default, partitions = DefaultPartitioner(), list(range(12))
    for n in range(2000):
        key = f"H-{n:x}".encode() * (1 + n % 3)
        for count in (1, 3, 4, 12):
            assert faust_adapter.partition_for(key, partitions[:count], []) == default(
                key, partitions[:count], []
            )
    assert faust_adapter.partition_for(None, [0, 1], [1]) == 1


def test_a_partition_with_records_waiting_that_delivers_none_is_read_again(app, monkeypatch):
    # measured (test_faults, one run in eight): partitions taken over with nothing
    # committed never delivered their records; no guard saw it, as no record came
    worker, _ = app
    guard, consumer, tp, sought = _offline_guard(app, monkeypatch, 18)
    delivery = worker.consumer._drain_messages.__self__
    stage = delivery.stage_of[tp.topic]
    monkeypatch.setattr(faust_adapter, "settled", lambda _: True)
    monkeypatch.setattr(consumer, "highwater", lambda _: 19)  # 19 records in the log
    consumer._committed_offset.pop(tp, None)
    consumer._read_offset[tp] = None
    consumer.pause_partitions({tp})  # out of Faust's active set: its records never taken
    stalls = faust_adapter.Stalls(worker, guard, delivery)
    limit = faust_adapter.STALL_SECONDS
    monkeypatch.setitem(delivery.idle, stage, True)  # the stage waits in take()

    def check(at):
        return asyncio.run(stalls.check(at))

    assert check(0.0) == {}  # a new generation: its clocks start
    assert check(1.0) == {} and check(limit) == {} and sought == []
    assert check(limit + 2) == {tp: 0} and sought == [(tp, 0)]  # where the log starts
    assert tp in consumer._active_partitions and tp not in consumer._paused_partitions
    # sought to 7 by Faust (read offset 7: the next to read); it stalls again: read from 7,
    # never from 8 (record 7 would be passed)
    consumer._committed_offset[tp] = 7
    consumer._read_offset[tp] = 7
    assert check(100.0) == {}  # it moved (0 → 7)
    assert check(101.0) == {} and check(102.0 + limit) == {tp: 7}
    # a stage on a batch (a broker outage holds its acknowledgements), records in its
    # inbox, or a fetch loop waiting for another stage's room: no stall
    delivery.idle[stage] = False
    assert check(150.0) == {} and check(160.0 + limit) == {}
    delivery.idle[stage] = True
    delivery.inbox[stage].append(object())
    try:
        assert check(200.0) == {} and check(300.0) == {}
    finally:
        delivery.inbox[stage].clear()
    delivery.waiting_for_room = True
    try:
        assert check(400.0) == {} and check(500.0) == {}
    finally:
        delivery.waiting_for_room = False
    # nothing waiting: all of it processed and committed
    consumer._committed_offset[tp] = 19
    assert check(600.0) == {} and check(700.0) == {}
    # every record deleted by retention, nothing committed: nothing to read, no seek storm
    consumer._committed_offset.pop(tp, None)
    consumer._read_offset[tp] = None
    guard.start.pop(tp, None)

    async def expired(*tps):
        return {t: 19 for t in tps}

    monkeypatch.setattr(consumer, "earliest_offsets", expired)
    assert check(800.0) == {} and check(801.0) == {} and check(802.0 + limit) == {}
    assert sought == [(tp, 0), (tp, 7)]


def test_stages_rewinding_at_once_seek_a_partition_back_once(app, monkeypatch):
    # measured: the timer and two stages each sought the same partition back, at once
    guard, consumer, tp, sought = _offline_guard(app, monkeypatch, 19)
    consumer._committed_offset[tp] = 100
    consumer._read_offset[tp] = 130
    guard.missing(tp, 125)

    async def slow_seek(offsets):
        await asyncio.sleep(0.01)
        sought.extend(offsets.items())

    monkeypatch.setattr(consumer, "seek_wait", slow_seek)

    async def three():
        return await asyncio.gather(guard.rewind(), guard.rewind(), guard.rewind())

    assert sorted(map(len, asyncio.run(three()))) == [0, 0, 1] and sought == [(tp, 125)]


def test_the_broker_holds_an_empty_fetch_of_the_worker_at_most_100_ms(app):
    # streams/faust_delivery.shorten_fetch_wait: Faust fixes 1,500 ms, aiokafka reads the
    # attribute when the consumer starts (it creates its fetcher then)
    from aiokafka import AIOKafkaConsumer
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    worker, _ = app
    assert faust_delivery.FETCH_WAIT_MS == 100

    async def fetch_wait() -> int:  # aiokafka wants a running loop
        kafka = worker.consumer._thread._create_worker_consumer(worker.consumer.transport)
        try:
            return int(kafka._fetch_max_wait_ms)
        finally:
            await kafka.stop()

    assert asyncio.run(fetch_wait()) == 100
    made = inspect.getsource(AIOKafkaConsumerThread._create_worker_consumer)
    assert "fetch_max_wait_ms=1500" in made
    # the worker's consumer thread creates its consumer through the method wrapped
    dispatch = inspect.getsource(AIOKafkaConsumerThread._create_consumer)
    assert "return self._create_worker_consumer(transport)" in dispatch
    assert "self._consumer = self._create_consumer(" in inspect.getsource(
        AIOKafkaConsumerThread.on_start
    )
    assert "fetch_max_wait_ms=self._fetch_max_wait_ms" in inspect.getsource(AIOKafkaConsumer.start)
