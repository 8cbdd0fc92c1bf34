"""Cluster administration from the one topic definition (streams/topics.py)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from wijkhub.acls import apply as apply_acls
from wijkhub.kafka import connect
from wijkhub.settings import Settings
from wijkhub.streams.access import ADMIN
from wijkhub.streams.topics import cluster_topics


@dataclass(frozen=True)
class TopicResult:
    name: str
    created: bool
    partitions: int
    # "key: old → new" for every config ``topics create`` set on an existing topic
    altered: tuple[str, ...] = ()


def admin_client(
    settings: Settings, service: str = ADMIN, timeout: float = 30.0
) -> KafkaAdminClient:
    """An admin client (by default the administrator principal), retried until the cluster
    answers or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return KafkaAdminClient(
                **connect(settings, service).kafka_python(),
                client_id=f"{settings.app_id}-admin",
                request_timeout_ms=15000,
            )
        except KafkaError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def create_topics(settings: Settings) -> list[TopicResult]:
    """Create every topic and table changelog of the hub that does not exist yet, and set
    the configuration of those that do to what their data class says (idempotent).

    The changelogs are created here too, before any worker starts, so that they carry
    their data class's configuration from the first record on rather than Faust's
    defaults. A differing partition count is not changed (that would move keys):
    ``topics check`` reports it.
    """
    admin = admin_client(settings)
    try:
        specs = cluster_topics(settings)
        existing = set(admin.list_topics())
        present = [name for name in specs if name in existing]
        current = configs_of(admin, present)
        results, new, alter = [], [], []
        for name, spec in specs.items():
            partitions = spec.partitions or settings.topic_partitions
            want = spec.config(settings)
            if name not in existing:
                new.append(
                    NewTopic(name, partitions, settings.replication_factor, topic_configs=want)
                )
                results.append(TopicResult(name, True, partitions))
                continue
            changed = {k: v for k, v in want.items() if current[name].get(k) != v}
            if changed:
                alter.append(ConfigResource(ConfigResourceType.TOPIC, name, configs=changed))
            altered = tuple(f"{k}: {current[name].get(k)} → {v}" for k, v in changed.items())
            results.append(TopicResult(name, False, partitions, altered))
        if alter:
            admin.alter_configs(alter)
        if new:
            # Another process (a worker creating its changelogs) may create them between
            # list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new, timeout_ms=30000)
            # Return only once the cluster lists them: a command started right after
            # (an intake's preflight) must not find them missing in stale metadata.
            wanted, deadline = {t.name for t in new}, time.monotonic() + 30
            while not wanted <= set(admin.list_topics()) and time.monotonic() < deadline:
                time.sleep(0.2)
        return results
    finally:
        admin.close()


def configs_of(admin: KafkaAdminClient, names: list[str]) -> dict[str, dict[str, str | None]]:
    """Every config value of each topic in ``names``, as the broker reports it."""
    if not names:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    described = admin.describe_configs(resources, config_filter="all")["topic"]
    return {
        name: {key: (entry or {}).get("value") for key, entry in described[name].items()}
        for name in names
    }


def topic_drift(settings: Settings) -> list[str]:
    """How the cluster differs from streams/topics.py: missing topics and changelogs,
    partitions, configs (cleanup policy, retention, compaction lags, record size).

    Only what the definition sets is compared; an empty list means no drift. A changelog
    is missing until ``topics create`` or the first worker created it.
    """
    admin = admin_client(settings)
    try:
        specs = cluster_topics(settings)
        existing = set(admin.list_topics())
        drift = [f"{name}: missing" for name in specs if name not in existing]
        present = [name for name in specs if name in existing]
        if not present:
            return drift
        described = {t["name"]: t for t in admin.describe_topics(present)}
        actual = configs_of(admin, present)
        for name in present:
            spec = specs[name]
            want = spec.partitions or settings.topic_partitions
            have = len(described[name]["partitions"])
            if have != want:
                drift.append(f"{name}: {have} partitions, defined {want}")
            for key, value in spec.config(settings).items():
                found = actual[name].get(key)
                if found != value:
                    drift.append(f"{name}: {key}={found}, defined {value} ({spec.data_class.env})")
        return drift
    finally:
        admin.close()


def prepare(settings: Settings) -> list[TopicResult]:
    """Topics created and every service's ACLs applied: a cluster ready for the hub (the
    demo, the benches and the tests; in production the two are separate duties)."""
    results = create_topics(settings)
    admin = admin_client(settings)
    try:
        apply_acls(admin, settings)
    finally:
        admin.close()
    return results


ROLL_KEY = b"wijkhub-segment-roll"  # a key no record of the hub uses


def roll_compacted(settings: Settings) -> int:
    """One tombstone for :data:`ROLL_KEY` on every partition of every compacted topic and
    changelog; the number of partitions written.

    Kafka compacts only closed segments, and rolls the active one (after
    ``max.compaction.lag.ms``) only when a record is appended. On a partition nobody
    writes to after an erasure, the superseded values would stay readable until the next
    write. Run daily (a cron job or systemd timer, docs/privacy/erasure.md), this bounds
    that wait. A tombstone for an unused key changes nothing for any reader; the log
    cleaner removes it after ``delete.retention.ms``.
    """
    from kafka import KafkaProducer

    producer = KafkaProducer(**connect(settings, ADMIN).kafka_python(), acks="all")
    admin = admin_client(settings)
    written = 0
    try:
        existing = set(admin.list_topics())
        for name, spec in sorted(cluster_topics(settings).items()):
            if spec.data_class.compacted and name in existing:
                for partition in sorted(producer.partitions_for(name)):
                    producer.send(name, key=ROLL_KEY, value=None, partition=partition)
                    written += 1
        producer.flush(timeout=30)
    finally:
        producer.close()
        admin.close()
    return written
