"""Who may do what on the broker: every service principal and its ACLs, defined once.

Least privilege (DESIGN.md): each service connects as its own principal and gets
exactly the topics and groups it needs. ``wijkhub acls apply`` writes these grants
to a cluster and ``wijkhub acls check`` reports drift; the local broker creates a
credential for every principal here when it formats its storage. Names of topics
come from :mod:`topics`; nothing here re-spells one.

The grants, in words:
- an intake principal per source writes only its ``raw.<domain>`` topics and ``dlq.ingest``;
- the worker reads its inputs, writes what the stages produce (and the audit of the
  operator's household reads it serves), and owns its internal topics (changelogs,
  Faust's leader topic) and its consumer group;
- the inbox reads ``alerts``, ``household-view`` and (it alone) ``contact-cards``, writes
  ``alert-actions`` and ``audit``,
  and reads ``audit`` for the privacy officer's audit-trail page;
- delivery reads ``alerts`` (its own group) and writes ``dlq.delivery``;
- the operator reads what operations need (status, alerts, review, dead letters) and
  writes erasure requests (``wijkhub erase``);
- nobody but the worker writes ``alerts``; nobody deletes or alters ``audit``
  (an explicit DENY for every principal; only the cluster's administrator, the
  broker's super user that applies these ACLs, stands above it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from wijkhub.connectors.canonical import SOURCE_DOMAINS
from wijkhub.streams.topics import (
    ALERT_ACTIONS,
    ALERTS,
    AUDIT,
    BY_ADDRESS,
    CONTACT_CARDS,
    DLQ_DELIVERY,
    DLQ_INGEST,
    DLQ_STREAMS,
    ERASURES,
    HAND_OVER,
    HOUSEHOLD_VIEW,
    LINKED,
    RAW_TOPICS,
    UNMATCHED,
    WORKER_INPUTS,
    raw,
)

ADMIN = "admin"  # the cluster administrator: creates topics and applies these ACLs
WORKER = "worker"
INBOX = "inbox"
DELIVERY = "delivery"
OPERATOR = "operator"
INTAKE = "intake"  # one principal per source: intake-<source>


def intake(source: str) -> str:
    """The service name of one source's intake (file drop, HTTP, relay, ``ingest``)."""
    return f"{INTAKE}-{source}"


SERVICES: tuple[str, ...] = (
    ADMIN, WORKER, INBOX, DELIVERY, OPERATOR, *(intake(s) for s in SOURCE_DOMAINS),
)  # fmt: skip


class Resource(StrEnum):
    TOPIC = "topic"
    GROUP = "group"


class Pattern(StrEnum):
    LITERAL = "literal"  # the full name
    PREFIXED = "prefixed"  # every name that starts with it


@dataclass(frozen=True, order=True)
class Grant:
    """One ACL: ``principal`` may (or, if ``deny``, may not) ``operation`` on a resource.

    ``name`` is logical: a topic as defined in :mod:`topics` (the cluster prefix is
    added by :func:`grants`), or a group or internal-topic prefix given in full.
    """

    principal: str  # the service; the broker principal is User:<principal prefix><service>
    resource: Resource
    name: str
    operation: str  # READ, WRITE, DESCRIBE, CREATE, ALTER, DELETE, ALTER_CONFIGS, ...
    pattern: Pattern = Pattern.LITERAL
    deny: bool = False


def _topics(service: str, names: tuple[str, ...], *operations: str) -> list[Grant]:
    return [Grant(service, Resource.TOPIC, n, op) for n in names for op in operations]


def grants(topic_prefix: str, app_id: str) -> list[Grant]:
    """Every ACL the hub needs on a cluster whose topics carry ``topic_prefix`` and whose
    worker runs as ``app_id`` (its consumer group and internal-topic prefix)."""
    found: list[Grant] = []
    for source, domains in SOURCE_DOMAINS.items():
        service = intake(source)
        found += _topics(service, (*(raw(d) for d in domains), DLQ_INGEST), "WRITE", "DESCRIBE")
        # the Kafka relay's consumer group (its input topic is the source's own)
        found.append(Grant(service, Resource.GROUP, f"{app_id}-relay-{source}", "READ"))
    # alert-actions: the expiry sweep (ADR 0006); audit: the operator's household reads
    outputs = (BY_ADDRESS, LINKED, ALERTS, HOUSEHOLD_VIEW, CONTACT_CARDS, UNMATCHED, HAND_OVER,
               DLQ_STREAMS, ALERT_ACTIONS, AUDIT)  # fmt: skip
    found += _topics(WORKER, WORKER_INPUTS, "READ", "DESCRIBE")
    found += _topics(WORKER, outputs, "WRITE", "DESCRIBE")
    found += [
        Grant(WORKER, Resource.TOPIC, f"{app_id}-", op, Pattern.PREFIXED)
        for op in ("READ", "WRITE", "CREATE", "DESCRIBE", "DESCRIBE_CONFIGS")
    ]  # its changelogs and Faust's internal topics
    found.append(Grant(WORKER, Resource.GROUP, app_id, "READ"))
    # contact-cards: only the inbox reads it (the responsible team's contact card)
    found += _topics(INBOX, (ALERTS, HOUSEHOLD_VIEW, CONTACT_CARDS), "READ", "DESCRIBE")
    # audit: read for the privacy officer's page (issue 15), which only the fg role opens
    found += _topics(INBOX, (AUDIT,), "READ")
    found += _topics(INBOX, (ALERT_ACTIONS, AUDIT), "WRITE", "DESCRIBE")
    found += _topics(DELIVERY, (ALERTS,), "READ", "DESCRIBE")
    found += _topics(DELIVERY, (DLQ_DELIVERY,), "WRITE", "DESCRIBE")
    found.append(Grant(DELIVERY, Resource.GROUP, f"{app_id}-delivery", "READ"))
    readable = (*RAW_TOPICS, ERASURES, ALERTS, HOUSEHOLD_VIEW, UNMATCHED, HAND_OVER, DLQ_INGEST,
                DLQ_STREAMS, DLQ_DELIVERY, ALERT_ACTIONS, AUDIT)  # fmt: skip
    found += _topics(OPERATOR, readable, "READ", "DESCRIBE")
    found += _topics(OPERATOR, (AUDIT,), "WRITE")  # reads by the CLI are audited
    found += _topics(OPERATOR, (ERASURES,), "WRITE", "DESCRIBE")  # `wijkhub erase`
    found.append(Grant(OPERATOR, Resource.GROUP, app_id, "DESCRIBE"))  # lag in status
    # Nobody deletes or alters the audit trail (a DENY beats every ALLOW).
    found += [Grant("*", Resource.TOPIC, AUDIT, op, deny=True)
              for op in ("DELETE", "ALTER", "ALTER_CONFIGS")]  # fmt: skip
    return sorted(_prefixed(g, topic_prefix) for g in found)


def _prefixed(grant: Grant, topic_prefix: str) -> Grant:
    """Topic names on the cluster carry the prefix; groups and internal topics do not."""
    if grant.resource is not Resource.TOPIC or grant.pattern is Pattern.PREFIXED:
        return grant
    return Grant(grant.principal, grant.resource, topic_prefix + grant.name, grant.operation,
                 grant.pattern, grant.deny)  # fmt: skip
