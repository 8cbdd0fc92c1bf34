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
from wijkhub.streams.topics import TOPICS, full_name


@dataclass(frozen=True)
class TopicResult:
    name: str
    created: bool
    partitions: int


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
    """Create every topic of the hub that does not exist yet (idempotent)."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        results = []
        new = []
        for t in TOPICS:
            name = full_name(t.name, settings.topic_prefix)
            partitions = t.partitions or settings.topic_partitions
            if name in existing:
                results.append(TopicResult(name, False, partitions))
                continue
            new.append(
                NewTopic(name, partitions, settings.replication_factor, topic_configs=t.config())
            )
            results.append(TopicResult(name, True, partitions))
        if new:
            # Another process may create them between list and create.
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


def topic_drift(settings: Settings) -> list[str]:
    """How the cluster differs from streams/topics.py: missing topics, partitions, configs.

    Only what the definition sets is compared (cleanup policy, retention,
    compaction lag, partition count); an empty list means no drift.
    """
    admin = admin_client(settings)
    try:
        names = {full_name(t.name, settings.topic_prefix): t for t in TOPICS}
        existing = set(admin.list_topics())
        drift = [f"{name}: missing" for name in names if name not in existing]
        present = [name for name in names if name in existing]
        if not present:
            return drift
        described = {t["name"]: t for t in admin.describe_topics(present)}
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in present]
        configs = admin.describe_configs(resources, config_filter="all")["topic"]
        for name in present:
            spec = names[name]
            want = spec.partitions or settings.topic_partitions
            have = len(described[name]["partitions"])
            if have != want:
                drift.append(f"{name}: {have} partitions, defined {want}")
            actual = configs[name]
            for key, value in spec.config().items():
                found = (actual.get(key) or {}).get("value")
                if found != value:
                    drift.append(f"{name}: {key}={found}, defined {value}")
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
