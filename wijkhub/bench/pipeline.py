"""Benchmark: the whole pipeline against a raw Kafka pass-through, same broker, same run.

Run with ``wijkhub bench --events N --json`` (or ``make bench``, or
``python -m wijkhub.bench.pipeline N``). Two phases:

* **backlog** (replay/backfill, where throughput matters): (a) a plain aiokafka
  consume→produce loop copies N pre-encoded raw events from one topic to another;
  (b) for each worker count 1..``--workers``, the same N events are written to
  topics of their own, then that many wijkhub worker processes in one group run
  the full topology (decode, link, household view, rules, alerts, views) over
  them. Throughput = the events not yet taken when the group is stable / time
  from then until the last record is done; scaling efficiency = rate(k) /
  (k * rate(1)); and the cores the broker and the workers kept busy meanwhile
  (on a small machine they compete).
* **live** (latency, with the most workers): a paced stream of events
  (``--live-rate``, default 1,000/s) goes through both paths.
  Pass-through latency is measured per record by an observer (output
  consumed - input create time). Pipeline latency comes from the worker's
  histogram (connector accept → household stage applied), read before and
  after the phase and interpolated within buckets (as Prometheus'
  histogram_quantile does).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import os
import random
import re
import secrets
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic

from wijkhub.admin import prepare
from wijkhub.bench.workers import Workers, cpu_seconds
from wijkhub.broker import LocalBroker, cluster, free_port
from wijkhub.connectors.alerts import latest_alerts
from wijkhub.connectors.canonical import to_raw_event
from wijkhub.connectors.identity import Pseudonymiser
from wijkhub.kafka import connect
from wijkhub.schemas.registry import RAW_EVENT, Catalog
from wijkhub.settings import Settings
from wijkhub.streams.access import ADMIN
from wijkhub.streams.topics import full_name, raw
from wijkhub.synthetic import SOURCE_ORDER, generate

EVENTS_PER_HOUSEHOLD = 3.2  # what generate() yields on average
LIVE_RATE = 1000  # events/s of the live phase (issue 19: p99 under 1 s at this rate)
LIVE_SECONDS = 6  # of paced input
# the first live record is due this long after their encoding begins: a fixed part, and
# this multiple of what encoding as many took in the backlog
LIVE_LEAD_SECONDS = (0.5, 1.5)
DRAIN_POLL_SECONDS = (0.25, 2.0)  # shortest and longest wait between two lag polls
LIVE_HISTOGRAMS = ("wijkhub_processing_latency_seconds", "wijkhub_relinked_fact_age_seconds")


def source_records(n: int, seed: int) -> list[tuple[str, dict]]:
    """n (source, record) pairs of a synthetic municipality, sources interleaved."""
    town = generate(households=int(n / EVENTS_PER_HOUSEHOLD) + 10, seed=seed, with_bad_input=False)
    out = [(source, r) for source in SOURCE_ORDER for r in town.records.get(source, [])]
    if len(out) < n:
        raise RuntimeError(f"generated {len(out)} events, fewer than {n}")
    random.Random(seed).shuffle(out)
    return out[:n]


class Encoder:
    """What the intake connector does per record: validate, pseudonymise, Avro-encode."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pseudo = Pseudonymiser(settings.pseudonym_key, settings.pseudonym_key_id)
        self.catalog = Catalog()

    def __call__(self, source: str, record: dict, now: dt.datetime) -> tuple[str, bytes, bytes]:
        """(logical raw topic, key, value): each run puts its own prefix before the topic."""
        domain, key, event = to_raw_event(
            record, source, self.pseudo, self.settings.municipality, now
        )
        return raw(domain), key.encode(), self.catalog.encode(RAW_EVENT, event)


def produce(settings: Settings, items: list[tuple[str, bytes, bytes]]) -> float:
    """Write (topic, key, value) items as a backlog; seconds until Kafka acknowledged all."""
    producer = KafkaProducer(
        **connect(settings, ADMIN).kafka_python(),
        acks="all",
        linger_ms=10,
        batch_size=512 * 1024,
    )
    began = time.perf_counter()
    for topic, key, value in items:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()
    return time.perf_counter() - began


async def passthrough(kafka: dict[str, Any], src: str, dst: str, n: int) -> float:
    """Copy n records from src to dst, consume→produce: the floor any Kafka stage pays.

    Seconds from the first record taken to the last one acknowledged.
    """
    consumer = AIOKafkaConsumer(
        src,
        **kafka,
        group_id=f"bench-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    producer = AIOKafkaProducer(**kafka, acks="all", linger_ms=5, max_batch_size=256 * 1024)
    await consumer.start()
    await producer.start()
    try:
        count, began = 0, 0.0
        while count < n:
            batches = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for messages in batches.values():
                if not began:
                    began = time.perf_counter()
                for m in messages:
                    await producer.send(dst, m.value, key=m.key)
                count += len(messages)
        await producer.flush()
        await consumer.commit()
        return time.perf_counter() - began
    finally:
        await producer.stop()
        await consumer.stop()


def metric_sum(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _buckets(text: str, name: str, stage: str = "household") -> dict[float, float]:
    """A histogram's buckets, added up over the workers, of one stage's series."""
    out: dict[float, float] = {}
    pattern = rf'^{name}_bucket{{(.*)le="([^"]+)"(.*)}} (\S+)$'
    for before, le, after, value in re.findall(pattern, text, re.M):
        if f'stage="{stage}"' in before + after:
            out[float(le)] = out.get(float(le), 0.0) + float(value)
    return out


def _quantile(q: float, buckets: dict[float, float]) -> float | None:
    """histogram_quantile: linear interpolation inside the bucket that holds rank q."""
    edges = sorted(buckets)
    total = buckets[edges[-1]] if edges else 0
    if not total:
        return None
    rank, lower, below = q * total, 0.0, 0.0
    for edge in edges:
        if buckets[edge] >= rank:
            if edge == float("inf"):
                return lower
            return lower + (edge - lower) * (rank - below) / max(buckets[edge] - below, 1e-9)
        lower, below = edge, buckets[edge]
    return lower


HOPS = ("person", "address", "household")  # the stages, in the order a fact passes them


def _live_histograms(text: str) -> dict[tuple[str, str], dict[float, float]]:
    """The live phase's histograms, per (name, stage), as the workers report them now."""
    return {(name, stage): _buckets(text, name, stage)
            for name in LIVE_HISTOGRAMS for stage in HOPS}  # fmt: skip


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def drained(lag: Callable[[], int], timeout: float, what: str) -> None:
    """Wait until ``lag()`` is 0, polling less often while much remains: each poll reads
    every input partition's end and committed offsets (measured: 0.065 cores at 4 polls a
    second, CPU the workers under test did not get on 2 cores). The next poll comes after a
    quarter of the time the last drain rate needs for what remains (between 0.25 s and
    2 s), so the end is still seen within a quarter of a second of when it came."""
    deadline = time.monotonic() + timeout
    before: tuple[float, int] | None = None
    while (left := lag()) > 0:
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        wait = DRAIN_POLL_SECONDS[0]
        if before is not None and left < before[1]:
            eta = left * (now - before[0]) / (before[1] - left)
            wait = min(max(eta / 4, DRAIN_POLL_SECONDS[0]), DRAIN_POLL_SECONDS[1])
        before = (now, left)
        time.sleep(wait)


async def _live_passthrough(
    kafka: dict[str, Any], src: str, dst: str, items, rate: int
) -> list[float]:
    """Pace records into src at `rate`/s while a pass-through copies them; per-record latency."""
    observer = AIOKafkaConsumer(
        dst, **kafka, auto_offset_reset="latest", group_id=f"obs-{uuid.uuid4()}"
    )
    await observer.start()
    await asyncio.sleep(1.0)
    copier = asyncio.create_task(passthrough(kafka, src, dst, len(items)))
    producer = AIOKafkaProducer(**kafka, linger_ms=0)
    await producer.start()
    latencies: list[float] = []

    async def observe() -> None:
        while len(latencies) < len(items):
            for messages in (await observer.getmany(timeout_ms=500)).values():
                now = time.time() * 1000
                latencies.extend((now - m.timestamp) / 1000 for m in messages)

    watcher = asyncio.create_task(observe())
    for i, (_topic, key, value) in enumerate(items):
        await producer.send(src, value, key=key)
        if (i + 1) % 50 == 0:
            await asyncio.sleep(50 / rate)
    await producer.flush()
    await asyncio.wait_for(watcher, 60)
    await copier
    await producer.stop()
    await observer.stop()
    return latencies


def run_bench(
    base: Settings, events: int, quiet: bool = False, workers: int = 1, live_rate: int = LIVE_RATE
) -> dict:
    """The bench; with ``workers`` N, the backlog once per worker count 1..N (each on topics
    of its own), and the live phase with N workers."""

    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    if base.bootstrap_servers is None:
        say("starting the local Kafka broker…")
    home = base.data_dir.resolve() / "bench-broker"
    with cluster(base, home) as settings:
        broker = LocalBroker(home).pid() if base.bootstrap_servers is None else None
        return _run(fresh(settings, "bench"), events, say, workers, live_rate, broker)


def fresh(settings: Settings, name: str) -> Settings:
    """A run of its own: app id, topic prefix, state and keys new (nothing of an earlier run
    is read, and nothing of this one can be linked to another's ids)."""
    run = uuid.uuid4().hex[:8]
    return settings.with_(
        app_id=f"wijkhub-{name}-{run}",
        topic_prefix=f"{name}-{run}.",
        pseudonym_key=secrets.token_urlsafe(32).encode(),
        dead_letter_key=secrets.token_urlsafe(32).encode(),
        action_keys="bench=" + secrets.token_urlsafe(32),
        id_key=secrets.token_urlsafe(32).encode(),
        web_port=free_port(),
        data_dir=settings.data_dir.resolve() / f"{name}-{run}",
        log_level="WARNING",
    )


def _run(
    settings: Settings,
    n: int,
    say: Callable[[str], None],
    workers: int,
    live_rate: int,
    broker: int | None,
) -> dict:
    kafka = connect(settings, ADMIN).kafka_python()  # the bench's own clients: the administrator
    pt_in, pt_out, live_in, live_out = (
        f"{settings.topic_prefix}{name}"
        for name in ("pt-in", "pt-out", "pt-live-in", "pt-live-out")
    )
    admin = KafkaAdminClient(**kafka)
    admin.create_topics(
        [NewTopic(t, settings.topic_partitions, 1) for t in (pt_in, pt_out, live_in, live_out)]
    )
    admin.close()

    say(f"encoding {n} synthetic events…")
    began = time.perf_counter()
    encode = Encoder(settings)
    now = dt.datetime.now(dt.UTC)
    # One town: the backlog is its history, the live phase what happens next (the people
    # are known, as in a running municipality; a town of its own would wait for BRP records).
    town = source_records(n + LIVE_SECONDS * live_rate, seed=11)
    items = [encode(source, record, now) for source, record in town[:n]]
    encode_s = time.perf_counter() - began

    say("backlog: raw pass-through…")
    produce(settings, [(pt_in, k, v) for _, k, v in items])
    pt_cpu = cpu_seconds(broker)
    pt_seconds = asyncio.run(passthrough(kafka, pt_in, pt_out, n))
    pt_broker = _cores(pt_cpu, cpu_seconds(broker), pt_seconds)
    pt_rate = n / pt_seconds

    scaling: list[dict] = []
    live: dict = {}
    for count in range(1, workers + 1):
        say(f"backlog: wijkhub pipeline, {count} worker(s)…")
        # Topics, a group and state of its own: every count starts from the same backlog.
        own = settings.with_(app_id=f"{settings.app_id}-w{count}",
                             topic_prefix=f"{settings.topic_prefix}w{count}.",
                             data_dir=settings.data_dir / f"w{count}")  # fmt: skip
        prepare(own)  # topics, and the ACLs: the workers run as their own principal
        load_s = produce(own, [(full_name(t, own.topic_prefix), k, v) for t, k, v in items])
        pool = Workers(own, count).start()
        try:
            scaling.append(
                {**_backlog(own, pool, len(items), broker), "load_seconds": round(load_s, 2)}
            )
            if count == workers:
                say("live: latency of both paths…")
                live = _live(own, pool, kafka, (live_in, live_out), items, town[n:], live_rate,
                             n / encode_s)  # fmt: skip
        finally:
            pool.stop()
    for step in scaling:  # rate(k) / (k * rate(1)): 1.0 is perfect scale-out
        step["scaling_efficiency"] = round(
            step["events_per_second"] / (step["workers"] * scaling[0]["events_per_second"]), 2
        )
    last = scaling[-1]
    return {
        "events": n,
        "broker": "apache-kafka (local KRaft, single node)",
        "partitions": settings.topic_partitions,
        "batch_size": settings.batch_size,
        "standby_replicas": settings.standby_replicas,
        "machine_cores": os.cpu_count(),
        "workers": workers,
        "pipeline": {
            "seconds": last["seconds"],
            "events_per_second": last["events_per_second"],
            "alerts_raised": last["alerts_raised"],
            "alerts_final": last["alerts_final"],
            "cores_used": last["cores_used"],
            "live_latency_ms": live["pipeline"],
        },
        "scaling": scaling,
        # every worker count ended with the same alerts (rule, team, state, facts)
        "alerts_identical_across_worker_counts": len({s["alerts_digest"] for s in scaling}) == 1,
        "raw_passthrough": {
            "seconds": round(pt_seconds, 2),
            "events_per_second": round(pt_rate),
            "cores_used": {"broker": pt_broker},
            "live_latency_ms": live["passthrough"],
        },
        "pipeline_to_passthrough_ratio": round(last["events_per_second"] / pt_rate, 3),
        "live_events": live["events"],
        "live_rate_per_second": live_rate,
        "live_sent_per_second": live["sent_per_second"],
        "encode_events_per_second": round(n / encode_s),
        "load_events_per_second": round(n / last["load_seconds"]),
    }


def final_alerts(settings: Settings) -> dict:
    """The alerts that exist at the end (latest per id on the compacted topic, tombstones
    dropped), counted and digested (:func:`alerts_digest`)."""
    return alerts_digest(latest_alerts(settings))


def alerts_digest(alerts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """How many alerts exist (withdrawn ones left out) and a digest of what a team sees of
    them: rule, team, state and the facts they rest on. The same input gives the same
    digest for any worker count, batching or rebalance (the determinism promise,
    docs/adr/0002); the raised counter need not agree, since it counts transitions, and
    one batching can raise, withdraw and raise again where another raises once."""
    seen = sorted(
        (a["alert_id"], a["rule_id"], a["team"], a["state"],
         sorted(f["event_id"] for f in a["facts"]))
        for a in alerts if a["change"] != "withdrawn"
    )  # fmt: skip
    text = json.dumps(seen, separators=(",", ":")).encode()
    return {"alerts_final": len(seen), "alerts_digest": hashlib.sha256(text).hexdigest()[:16]}


def _cores(before: float | None, after: float | None, seconds: float) -> float | None:
    """CPU seconds per wall second over a window: how many cores a process kept busy."""
    return None if before is None or after is None else round((after - before) / seconds, 2)


def _consumed(text: str, stage: str) -> float:
    return metric_sum(text, "wijkhub_events_consumed_total", stage=stage)


def _backlog(settings: Settings, pool: Workers, n: int, broker: int | None) -> dict:
    """The backlog of ``n`` events, written before the workers started, through ``pool``.

    The clock starts once their group is stable (joining is not scale-out), so the
    events the first of them took before that are not counted: rate = (n - taken) /
    seconds until the group has committed every record of every topic it reads (the
    committed offsets, not the workers' counters: a batch a rebalance interrupted is
    counted twice there). Nothing else runs meanwhile (the bench polls the offsets four
    times a second at the end, less often before: :func:`drained`)."""
    taken = _consumed(pool.metrics_text(), "person")
    began, cpu = time.perf_counter(), (cpu_seconds(broker), pool.cpu_seconds())
    drained(pool.lag, 1800, "the backlog to drain")
    seconds = time.perf_counter() - began
    text = pool.metrics_text()
    return {
        "workers": len(pool.procs),
        "seconds": round(seconds, 2),
        "events_measured": int(n - taken),
        "events_per_second": round((n - taken) / seconds),
        "alerts_raised": int(metric_sum(text, "wijkhub_alerts_raised_total")),
        **final_alerts(settings),
        "cores_used": {
            "broker": _cores(cpu[0], cpu_seconds(broker), seconds),
            "workers": _cores(cpu[1], pool.cpu_seconds(), seconds),
        },
    }


def scheduled(
    encode: Encoder, coming: list[tuple[str, dict]], rate: int, start: float
) -> list[tuple[str, bytes, bytes]]:
    """The live records encoded ahead, each accepted (``received_at``, where the latency
    starts) at the moment it is due to be sent: ``start`` + its place / ``rate``. A record
    the bench sends late counts its lateness as latency, never less (no coordinated
    omission)."""
    return [
        encode(source, record, dt.datetime.fromtimestamp(start + i / rate, dt.UTC))
        for i, (source, record) in enumerate(coming)
    ]


def _live(
    settings: Settings,
    pool: Workers,
    kafka: dict[str, Any],
    passthrough_topics: tuple[str, str],
    items: list,
    coming: list[tuple[str, dict]],
    rate: int,
    encode_rate: float,
) -> dict:
    """A paced stream through both paths: latency per record (pass-through) and from the
    workers' histogram (connector accept → household applied). ``encode_rate``: records
    the bench encodes a second (the live records are encoded before they are due)."""
    live_n = min(LIVE_SECONDS * rate, len(items), len(coming))
    latencies = asyncio.run(_live_passthrough(kafka, *passthrough_topics, items[:live_n], rate))
    before = _live_histograms(pool.metrics_text())
    # Encoded before the clock starts, as the pass-through's records are: encoding them
    # while sending took the bench 0.4-0.6 cores at 1,000 events/s, which the workers
    # under test lost on 2 cores. Each is stamped with the moment it is due to be sent.
    start = time.time() + LIVE_LEAD_SECONDS[0] + LIVE_LEAD_SECONDS[1] * live_n / encode_rate
    due = scheduled(Encoder(settings), coming[:live_n], rate, start)
    producer = KafkaProducer(**kafka, linger_ms=0)
    time.sleep(max(0.0, start - time.time()))
    began, cpu = time.monotonic(), pool.cpu_seconds()
    for i, (topic, key, value) in enumerate(due):
        producer.send(full_name(topic, settings.topic_prefix), key=key, value=value)
        if (i + 1) % 50 == 0:
            producer.flush()
            time.sleep(max(0.0, began + (i + 1) / rate - time.monotonic()))  # paced at rate
    producer.flush()
    producer.close()
    sent_rate = live_n / (time.monotonic() - began)
    drained(pool.lag, 300, "the live phase")
    # the workers' share of the machine while the live input came and was worked off
    cores = _cores(cpu, pool.cpu_seconds(), time.monotonic() - began)
    after = _live_histograms(pool.metrics_text())
    grown = {series: {le: n - before[series].get(le, 0.0) for le, n in after[series].items()}
             for series in after}  # fmt: skip
    hist, relinked = grown[LIVE_HISTOGRAMS[0], "household"], grown[LIVE_HISTOGRAMS[1], "household"]
    hops = {stage: [_ms(_quantile(q, grown[LIVE_HISTOGRAMS[0], stage])) for q in (0.5, 0.99)]
            for stage in HOPS}  # fmt: skip
    latencies.sort()

    def pct(values: list[float], q: float) -> float:
        return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1)

    return {
        "events": live_n,
        "pipeline": {
            "p50": _ms(_quantile(0.5, hist)),
            "p99": _ms(_quantile(0.99, hist)),
            "method": "worker histogram (connector accept of the record that caused the "
            "link → household applied), bucket-interpolated",
            "facts": round(max(hist.values(), default=0.0)),
            "facts_over_1s": round(max(hist.values(), default=0.0) - hist.get(1.0, 0.0)),
            # facts applied again (moved by a later record): their age, not a latency
            "relinked_facts": round(max(relinked.values(), default=0.0)),
            "cores_used": {"workers": cores},
            # where the time goes: connector accept → each hop applied (p50, p99 in ms)
            "hops": hops,
        },
        "sent_per_second": round(sent_rate),
        "passthrough": {
            "p50": pct(latencies, 0.5),
            "p99": pct(latencies, 0.99),
            "method": "per record: output consumed - input create time",
        },
    }


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    print(json.dumps(run_bench(Settings.from_env(), count), indent=2))
