"""Least privilege on the real broker: TLS and SCRAM for every client, ACLs per service.

The session's broker is the secured local broker (SASL_SSL, StandardAuthorizer, no ACL
means no access) with the ACLs of streams/access.py applied; every other integration
test runs on it too, each service as its own principal.
"""

from __future__ import annotations

import dataclasses

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ACL,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourceType,
)
from kafka.errors import KafkaError, TopicAuthorizationFailedError

from wijkhub.acls import drift
from wijkhub.admin import admin_client
from wijkhub.kafka import PLAINTEXT, connect
from wijkhub.streams.access import DELIVERY, INBOX, OPERATOR, WORKER, intake
from wijkhub.streams.topics import (
    ALERT_ACTIONS,
    ALERTS,
    AUDIT,
    CONTACT_CARDS,
    HOUSEHOLD_VIEW,
    TOPICS,
    Domain,
    raw,
)

QUICK = {"request_timeout_ms": 5000, "max_block_ms": 5000}


def secured(hub) -> bool:
    return hub.settings.kafka_security_protocol.upper() != PLAINTEXT


@pytest.fixture
def require_secured(hub):
    if not secured(hub):
        pytest.fail("the integration suite must run on the secured broker")


def end_offsets(hub, topic: str) -> dict:
    consumer = KafkaConsumer(**connect(hub.settings, "admin").kafka_python())
    try:
        tps = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        return consumer.end_offsets(tps)
    finally:
        consumer.close()


def test_a_plaintext_or_unauthenticated_client_is_refused(hub, require_secured):
    plain = dataclasses.replace(hub.settings, kafka_security_protocol=PLAINTEXT)
    with pytest.raises(KafkaError):
        KafkaAdminClient(
            **connect(plain, WORKER).kafka_python(), request_timeout_ms=3000
        ).list_topics()
    wrong = dataclasses.replace(connect(hub.settings, WORKER), password="not-the-password")
    with pytest.raises(KafkaError):
        KafkaAdminClient(**wrong.kafka_python(), request_timeout_ms=3000).list_topics()


@pytest.mark.parametrize("target", [ALERT_ACTIONS, ALERTS, raw(Domain.TEAMS)])
def test_an_intake_principal_cannot_write_outside_its_own_raw_topic(hub, require_secured, target):
    topic = hub.topic(target)
    before = end_offsets(hub, topic)
    producer = KafkaProducer(**connect(hub.settings, intake("income")).kafka_python(), **QUICK)
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(topic, b"forged").get(timeout=10)
    finally:
        producer.close()
    assert end_offsets(hub, topic) == before  # nothing written


def test_the_inbox_principal_sees_only_alerts_and_views(hub, require_secured, plant):
    """The inbox cannot even learn that source data exists: it may describe only the alerts
    and household views it reads, and the actions and audit it writes (the audit it also
    reads, for the privacy officer's page); a fetch elsewhere returns nothing."""
    admin = KafkaAdminClient(**connect(hub.settings, INBOX).kafka_python(),
                             request_timeout_ms=5000)  # fmt: skip
    try:
        hubs = {hub.topic(t.name) for t in TOPICS}  # (other runs share the test prefix)
        visible = {t for t in admin.list_topics() if t in hubs}
    finally:
        admin.close()
    # what it reads, and what it writes (actions; the audit of every page it shows, which
    # it reads back for the fg's audit-trail page only)
    # (and the contact cards, which it alone reads: the responsible team's contact card)
    assert visible == {
        hub.topic(t) for t in (ALERTS, HOUSEHOLD_VIEW, CONTACT_CARDS, ALERT_ACTIONS, AUDIT)
    }
    for other in (DELIVERY, OPERATOR):  # nobody else may even see that contact cards exist
        admin = KafkaAdminClient(**connect(hub.settings, other).kafka_python(),
                                 request_timeout_ms=5000)  # fmt: skip
        try:
            assert hub.topic(CONTACT_CARDS) not in admin.list_topics(), other
        finally:
            admin.close()
    hub.ingest("population", [plant.person("1091AA", "7")])  # raw.population holds a record
    consumer = KafkaConsumer(**connect(hub.settings, INBOX).kafka_python(),
                             request_timeout_ms=5000, enable_auto_commit=False)  # fmt: skip
    try:  # a topic it may not describe: no metadata, no fetch, nothing
        consumer.assign([TopicPartition(hub.topic(raw(Domain.POPULATION)), p)
                         for p in range(hub.settings.topic_partitions)])  # fmt: skip
        consumer.seek_to_beginning()
        assert all(consumer.poll(timeout_ms=500) == {} for _ in range(4))
    finally:
        consumer.close()


@pytest.mark.parametrize("service", [WORKER, OPERATOR, INBOX])
def test_nobody_deletes_the_audit_trail(hub, require_secured, service):
    admin = KafkaAdminClient(**connect(hub.settings, service).kafka_python(),
                             request_timeout_ms=5000)  # fmt: skip
    try:
        with pytest.raises(KafkaError):
            admin.delete_topics([hub.topic(AUDIT)], timeout_ms=5000)
    finally:
        admin.close()
    assert hub.topic(AUDIT) in set(admin_client(hub.settings).list_topics())


def test_acls_check_reports_a_grant_added_by_hand_and_apply_removes_it(hub, require_secured):
    from wijkhub.acls import apply

    admin = admin_client(hub.settings)
    try:
        assert drift(admin, hub.settings) == []
        extra = ACL(f"User:{hub.settings.kafka_principal_prefix}{INBOX}", "*", ACLOperation.READ,
                    ACLPermissionType.ALLOW,
                    ResourcePattern(ResourceType.TOPIC, hub.topic(raw(Domain.DEBT))))  # fmt: skip
        # and a stranger's grant on a prefix that covers every topic of the hub
        wide = ACL("User:mallory", "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                   ResourcePattern(ResourceType.TOPIC, hub.settings.topic_prefix,
                                   ACLResourcePatternType.PREFIXED))  # fmt: skip
        admin.create_acls([extra, wide])
        assert drift(admin, hub.settings) == [
            f"not defined: User:mallory ALLOW WRITE on topic {hub.settings.topic_prefix}*",
            f"not defined: User:{hub.settings.kafka_principal_prefix}{INBOX} ALLOW READ on "
            f"topic {hub.topic(raw(Domain.DEBT))}",
        ]
        assert apply(admin, hub.settings) == (0, 2)
        assert drift(admin, hub.settings) == []
    finally:
        admin.close()
