"""The metrics catalogue: every Prometheus metric of the hub, defined once.

Labels hold only bounded, non-personal values (topic, domain, stage, reason
code, rule id, family, team); never a household, person or event id.
Built per process on its own registry, so importing this module has no side
effects and tests can create as many as they like.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

# 0.75 and 1.5 beside 1: the live latency objective is a p99 under 1 s (issue 19)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 30, 60)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )

    def __post_init__(self) -> None:
        r = self.registry
        self.events_consumed = Counter(
            "wijkhub_events_consumed_total",
            "Records read by a stream processor.",
            ["topic", "stage"],
            registry=r,
        )
        self.events_produced = Counter(
            "wijkhub_events_produced_total",
            "Records written by a stream processor or connector.",
            ["topic", "stage"],
            registry=r,
        )
        self.dead_letters = Counter(
            "wijkhub_dead_letters_total",
            "Inputs dead-lettered, by stage, source (connector or input topic) and reason code.",
            ["stage", "source", "reason"],
            registry=r,
        )
        self.link_outcomes = Counter(
            "wijkhub_link_outcomes_total",
            "How events were linked to a household.",
            ["outcome"],
            registry=r,
        )
        self.alerts_raised = Counter(
            "wijkhub_alerts_raised_total",
            "Alerts raised, by rule, family and team.",
            ["rule", "family", "team"],
            registry=r,
        )
        self.intake_records = Counter(
            "wijkhub_intake_records_total",
            "Records read by a source connector.",
            ["source"],
            registry=r,
        )
        self.intake_events = Counter(
            "wijkhub_intake_events_total",
            "Events a source connector produced.",
            ["source"],
            registry=r,
        )
        self.intake_last_success = Gauge(
            "wijkhub_intake_last_success_timestamp_seconds",
            "When a source last delivered input that Kafka acknowledged (for 'source stalled').",
            ["source"],
            registry=r,
        )
        self.processing_latency = Histogram(
            "wijkhub_processing_latency_seconds",
            "From the connector accepting the source record that caused a fact's link (the "
            "fact itself, or the BRP record that moved or released it) to the stage having "
            "applied it: stage=household is the whole path, person and address its first hops.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.relinked_fact_age = Histogram(
            "wijkhub_relinked_fact_age_seconds",
            "Age (since the connector accepted it) of a fact the household stage applied again: "
            "moved by a later record, or released when the person's registration came.",
            ["stage"],
            buckets=(*LATENCY_BUCKETS, 300, 3600, 86400),
            registry=r,
        )
        self.alert_changes = Counter(
            "wijkhub_alert_changes_total",
            "Alert state changes by rule, family, team and change (raised, updated, escalated, "
            "claimed, acknowledged, contact_made, contact_attempted, handed_over, resolved, "
            "expired).",
            ["rule", "family", "team", "change"],
            registry=r,
        )
        self.alert_outcomes = Counter(
            "wijkhub_alert_outcomes_total",
            "Alerts ended, by rule and outcome (help_accepted, help_refused, no_action_needed, "
            "wrong_link, expired, contact_made, condition_ended): a rule's real precision.",
            ["rule", "outcome"],
            registry=r,
        )
        self.alerts_unrouted = Counter(
            "wijkhub_alerts_unrouted_total",
            "Alerts sent to the fallback team: no team covers the household's district.",
            ["family"],
            registry=r,
        )
        self.alert_latency = Histogram(
            "wijkhub_alert_latency_seconds",
            "From the connector accepting the event that completed a pattern to the alert.",
            ["family"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.skipped_reread = Counter(
            "wijkhub_skipped_records_reread_total",
            "Input records the consumer skipped after a rebalance, found by their offsets and "
            "read again (faust-streaming's fetcher; see streams/faust_adapter.Continuity). "
            "stage: the stage that found them, 'timer', or 'stalled' (a partition that "
            "delivered nothing).",
            ["stage"],
            registry=r,
        )
        self.commits_held = Gauge(
            "wijkhub_commits_held_partitions",
            "Input partitions whose offset commit waits for a skipped record to be read again "
            "(streams/faust_adapter.Processed). Normally 0, or briefly more after a "
            "rebalance; a partition held for long replays more on its next restart.",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "wijkhub_consumer_lag_records",
            "Records on an input partition this worker has not committed yet.",
            ["topic", "partition"],
            registry=r,
        )
        self.deliveries = Counter(
            "wijkhub_deliveries_total",
            "Alert deliveries by sink (inbox, webhook, mail), team and result "
            "(delivered, retried, dead-lettered).",
            ["sink", "team", "result"],
            registry=r,
        )
        self.time_to_acknowledge = Histogram(
            "wijkhub_time_to_acknowledge_seconds",
            "From an alert being raised to a team member acknowledging it, per team.",
            ["team"],
            buckets=(60, 600, 3600, 4 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400),
            registry=r,
        )
        self.alert_actions = Counter(
            "wijkhub_alert_actions_total",
            "Team actions on alerts (claim, acknowledge, contact_made, contact_attempt, "
            "warm_handover, resolve, expire) by "
            "outcome and result (applied, duplicate, refused).",
            ["action", "outcome", "result"],
            registry=r,
        )
        self.inbox_logins = Counter(
            "wijkhub_inbox_logins_total",
            "Team inbox log-ins by result (ok, refused, locked).",
            ["result"],
            registry=r,
        )
        self.inbox_pages = Counter(
            "wijkhub_inbox_pages_total",
            "Team inbox pages served (list, alert, beheer, audit, register); every alert page is "
            "audited.",
            ["page"],
            registry=r,
        )
        self.inbox_actions = Counter(
            "wijkhub_inbox_actions_total",
            "Actions team members sent from the inbox, by action and outcome.",
            ["action", "outcome"],
            registry=r,
        )
        self.open_alerts = Gauge(
            "wijkhub_open_alerts",
            "Alerts not yet resolved, per team, alert severity and state (from the inbox).",
            ["team", "alert_severity", "state"],
            registry=r,
        )
        self.unacknowledged_age = Gauge(
            "wijkhub_unacknowledged_alert_age_seconds",
            "Age of the oldest alert nobody has acknowledged, per team and alert severity "
            "(a crisis signal needs contact within 3 working days).",
            ["team", "alert_severity"],
            registry=r,
        )
        self.batch_size = Histogram(
            "wijkhub_batch_size",
            "Events per batch taken by a stream processor.",
            ["stage"],
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000),
            registry=r,
        )

        self.filedrop_purged = Counter(
            "wijkhub_filedrop_purged_total",
            "Source files the file drop deleted from processed/ or failed/ after their term.",
            ["source", "folder"],
            registry=r,
        )
        self.late_facts = Counter(
            "wijkhub_late_facts_total",
            "Facts dated further back than the allowed lateness before their household's "
            "newest fact (still applied: a source delivering that late needs a look).",
            ["stage"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
