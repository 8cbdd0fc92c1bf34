"""Every topic of the hub, defined once: name, key, cleanup, retention.

``wijkhub topics create``, the Faust app, the connectors and the docs all read
this table; no other module spells a topic name. Retention follows the data
class: raw personal data is kept only as long as the longest rule window plus
a margin for replay (to be confirmed per municipality, see DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

DAY_MS = 24 * 60 * 60 * 1000


class Domain(StrEnum):
    """The source domains; each has one raw topic (raw.<domain>)."""

    POPULATION = "population"
    CARE = "care"
    YOUTH = "youth"
    INCOME = "income"
    DEBT = "debt"
    TEAMS = "teams"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    cleanup_policy: str
    retention_ms: int
    doc: str
    partitions: int | None = None  # None: the configured default, so co-partitioned topics agree

    def config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}
        if "compact" in self.cleanup_policy:
            cfg["min.compaction.lag.ms"] = str(60_000)
        return cfg


def raw(domain: Domain) -> str:
    return f"raw.{domain.value}"


RAW_RETENTION_DAYS = {
    Domain.POPULATION: 730,
    Domain.CARE: 730,
    Domain.YOUTH: 730,
    Domain.INCOME: 400,
    Domain.DEBT: 400,
    Domain.TEAMS: 730,
}

LINKED = "linked"
ALERTS = "alerts"
HOUSEHOLD_VIEW = "household-view"
BY_ADDRESS = "by-address"
UNMATCHED = "unmatched"
HAND_OVER = "hand-over"
DLQ_INGEST = "dlq.ingest"
DLQ_STREAMS = "dlq.streams"
DLQ_DELIVERY = "dlq.delivery"
AUDIT = "audit"
ALERT_ACTIONS = "alert-actions"

TOPICS: tuple[TopicSpec, ...] = (
    *(
        TopicSpec(
            raw(d),
            "person_ref, else address_ref",
            "delete",
            days * DAY_MS,
            f"validated, pseudonymised {d.value} events from the connectors",
        )
        for d, days in RAW_RETENTION_DAYS.items()
    ),
    TopicSpec(
        BY_ADDRESS,
        "address_ref",
        "delete",
        7 * DAY_MS,
        "repartition from the person stage to the address stage (who lived together when)",
    ),
    TopicSpec(
        UNMATCHED,
        "event_id",
        "compact,delete",
        30 * DAY_MS,
        "signals the hub could not link with certainty, for review: event + reason in headers; "
        "the latest record per event is the entry, a tombstone closes it (linked after all)",
    ),
    TopicSpec(
        HAND_OVER,
        "event_id",
        "compact,delete",
        90 * DAY_MS,
        "events about people who left the municipality: for the new municipality, not a team; "
        "a tombstone withdraws one (a late BRP record moved it back)",
    ),
    TopicSpec(
        LINKED,
        "household_ref",
        "delete",
        7 * DAY_MS,
        "raw events linked to a household; repartition to household_ref",
    ),
    TopicSpec(
        ALERTS,
        "alert_id",
        "compact",
        -1,
        "alerts and their state; compacted so the latest state per alert is kept",
    ),
    TopicSpec(
        ALERT_ACTIONS,
        "household_ref",
        "delete",
        730 * DAY_MS,
        "team actions on alerts (claim, acknowledge, contact made, resolve) for the household "
        "stage; co-partitioned with linked",
    ),
    TopicSpec(
        HOUSEHOLD_VIEW,
        "household_ref",
        "compact",
        -1,
        "the one household view (latest per household)",
    ),
    TopicSpec(
        DLQ_INGEST,
        "HMAC of source, input and record place (readers deduplicate by key)",
        "delete",
        30 * DAY_MS,
        "input the connectors could not accept: sealed original bytes + reason",
    ),
    TopicSpec(
        DLQ_STREAMS,
        "original key",
        "delete",
        30 * DAY_MS,
        "records the stream processors could not process: original bytes + reason",
    ),
    TopicSpec(
        DLQ_DELIVERY,
        "alert_id",
        "delete",
        30 * DAY_MS,
        "alert changes a sink (webhook, mail) could not deliver after its retries: record + reason",
    ),
    TopicSpec(AUDIT, "none", "delete", 730 * DAY_MS, "every view of personal data"),
)

RAW_TOPICS: tuple[str, ...] = tuple(raw(d) for d in Domain)
# What the stream workers consume (lag, drain checks and status read this).
WORKER_INPUTS: tuple[str, ...] = (*RAW_TOPICS, BY_ADDRESS, LINKED, ALERT_ACTIONS)


def full_name(name: str, prefix: str = "") -> str:
    """The topic's name on the cluster: an optional prefix isolates test runs and tenants."""
    return f"{prefix}{name}"


def logical_name(topic: str, prefix: str = "") -> str:
    """The name as defined here, without the cluster prefix (for metric labels and docs)."""
    return topic.removeprefix(prefix)
