"""The worker's Outbox on the real broker: a batch's records go in one Kafka record batch per
partition (several when one is full), each partition's records in the order sent, to the
partition the producer's partitioner picks for the key, and every one acknowledged."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from wijkhub.streams.faust_adapter import Outbox, partition_for

from builders import as_admin

PARTITIONS = 3


def test_each_partitions_records_arrive_in_the_order_sent_and_all_are_acknowledged(hub_settings):
    topic = f"{hub_settings.topic_prefix}outbox-check"
    admin = KafkaAdminClient(**as_admin(hub_settings))
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    sent = [
        (f"key-{n % 7}".encode(), f"{n:05d}".encode() * 40, [("n", str(n).encode())])
        for n in range(400)
    ]  # 200 bytes each: a 4 KB batch fills after some twenty

    async def send() -> tuple[dict[tuple[str, int], int], int]:
        producer = AIOKafkaProducer(**as_admin(hub_settings), acks="all", max_batch_size=4096)
        await producer.start()
        try:
            out = Outbox(producer)
            for key, value, headers in sent:
                await out.send(topic, key, value, headers)
            await out.send(topic, b"key-0", None, None)  # a tombstone too
            return await out.delivered(), out.records
        finally:
            await producer.stop()

    last, records = asyncio.run(send())

    consumer = KafkaConsumer(**as_admin(hub_settings), enable_auto_commit=False)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    got: dict[int, list] = {p: [] for p in range(PARTITIONS)}
    while sum(map(len, got.values())) < len(sent) + 1:
        for tp, messages in consumer.poll(timeout_ms=2000).items():
            got[tp.partition] += [(m.key, m.value, m.headers, m.offset) for m in messages]
    consumer.close()

    expected: dict[int, list] = {p: [] for p in range(PARTITIONS)}
    for key, value, headers in [*sent, (b"key-0", None, [])]:
        partition = partition_for(key, list(range(PARTITIONS)), list(range(PARTITIONS)))
        expected[partition].append((key, value, headers))
    assert {p: [m[:3] for m in ms] for p, ms in got.items()} == expected
    assert records == len(sent) + 1
    assert last == {(topic, p): got[p][-1][3] for p in range(PARTITIONS) if got[p]}
    assert len({p for p in got if got[p]}) > 1  # the keys spread: more than one partition
