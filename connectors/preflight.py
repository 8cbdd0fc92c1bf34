"""Before an intake produces: does the cluster answer, and do its topics exist?

The brokers run with ``auto.create.topics.enable=false`` (topics are created
from ``streams/topics.py`` with their retention and partitions, never by
accident). A producer sending to a topic that does not exist waits for its
metadata for a minute and then fails with a timeout that does not say why. An
operator who ran ``wijkhub ingest`` before ``wijkhub topics create`` deserves
one line that says what to do, at once: this module asks the cluster with a
short timeout before the first record is read.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from wijkhub.connectors.canonical import SOURCE_DOMAINS
from wijkhub.kafka import connect
from wijkhub.settings import Settings
from wijkhub.streams.access import intake
from wijkhub.streams.topics import DLQ_INGEST, full_name, raw

DEFAULT_TIMEOUT = 15.0  # a busy broker answers slowly; an absent one is told at once (TCP)


class IntakeNotReady(RuntimeError):
    """The cluster cannot take this intake's records yet. The message is one line for operators."""


def intake_topics(sources: Iterable[str], prefix: str = "") -> list[str]:
    """Every topic an intake of ``sources`` writes: their raw topics, then ``dlq.ingest``."""
    own = [raw(d) for s in sources for d in SOURCE_DOMAINS.get(s, ())]
    return [full_name(n, prefix) for n in dict.fromkeys([*own, DLQ_INGEST])]


def missing_topics(required: Iterable[str], existing: Iterable[str]) -> list[str]:
    """The required topics the cluster does not have, in the order required."""
    have = set(existing)
    return [t for t in required if t not in have]


def missing_message(missing: list[str]) -> str:
    """``topic test.raw.debt does not exist: run `wijkhub topics create` first``."""
    more = f" (nor {len(missing) - 1} more of the hub's topics)" if len(missing) > 1 else ""
    return f"topic {missing[0]} does not exist{more}: run `wijkhub topics create` first"


def accepts_connections(bootstrap: str, timeout: float) -> bool:
    """Does any ``host:port`` of the bootstrap list accept a TCP connection?

    Asked before the Kafka client, which would retry a refused connection for
    the whole timeout and log every attempt: a broker that is not there is
    said at once, in one line.
    """
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return True
        except (OSError, ValueError):
            continue
    return False


def cluster_topics(settings: Settings, timeout: float, service: str) -> set[str]:
    """The topic names on the cluster that ``service`` may see (its ACLs), or
    :class:`IntakeNotReady` within ``timeout`` seconds."""
    bootstrap = settings.require_bootstrap()
    unreachable = f"no Kafka broker answers at {bootstrap} within {timeout:g} s"
    if not accepts_connections(bootstrap, timeout):
        raise IntakeNotReady(f"no Kafka broker answers at {bootstrap}")
    try:
        admin = KafkaAdminClient(
            **connect(settings, service).kafka_python(),
            client_id=f"{settings.app_id}-preflight",
            bootstrap_timeout_ms=int(timeout * 1000),
            request_timeout_ms=int(timeout * 1000),
        )
    except (KafkaError, OSError):
        raise IntakeNotReady(unreachable) from None
    try:
        return set(admin.list_topics())
    except (KafkaError, OSError):
        raise IntakeNotReady(unreachable) from None
    finally:
        admin.close()


def require_topics(
    settings: Settings,
    sources: Iterable[str],
    timeout: float = DEFAULT_TIMEOUT,
    lister: Callable[[Settings, float, str], set[str]] | None = None,
) -> None:
    """Raise :class:`IntakeNotReady` unless every topic the intake of ``sources`` writes exists
    (asked as each source's own principal: it sees just the topics it may write)."""
    missing: list[str] = []
    for source in sources:
        existing = (lister or cluster_topics)(settings, timeout, intake(source))
        found = missing_topics(intake_topics([source], settings.topic_prefix), existing)
        missing += [t for t in found if t not in missing]
    if missing:
        raise IntakeNotReady(missing_message(missing))
