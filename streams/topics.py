"""Every topic and every table changelog of the hub, defined once, each with its data class.

``wijkhub topics create`` and ``topics check``, the Faust app, the connectors,
the processing register (``wijkhub privacy register``) and the docs all read
this module; no other module spells a topic name.

A *data class* is a kind of personal data with one retention: one setting
(``WIJKHUB_RETENTION_<CLASS>_DAYS``, read in :mod:`wijkhub.settings`), whose
default cites the legal term where a law sets one and otherwise says why it is
what it is ("to be set by the municipality"). The broker enforces it: a
topic's ``retention.ms`` and cleanup policy are derived from its class, never
written beside the topic, so changing one setting changes every topic of the
class (``topics create`` alters them, ``topics check`` reports drift).

Compacted topics (the latest record per key is the state: alerts, household
views, the review queue, hand-over, the tables' changelogs) keep a key until
a tombstone removes it; with a term they are ``compact,delete`` and a key not
written within the term goes too. Two settings bound how long a superseded
value or a tombstone stays readable after it was written:
``max.compaction.lag.ms`` forces compaction (and the roll of the active
segment) within that time, where Kafka would otherwise wait for half the log
to be dirty, which on a quiet topic may be never; ``delete.retention.ms``
removes the tombstone itself after that time. Together they are the bounded
time until a tombstone (an erasure, a closed review entry) removes data.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wijkhub.settings import Settings

DAY_MS = 24 * 60 * 60 * 1000
# Compaction never touches a record younger than this (a reader of the newest records
# sees every one of them); capped at the configured maximum lag, which must be larger.
MIN_COMPACTION_LAG_MS = 60_000
# One state entry (a large building, a long history) can outgrow Kafka's default 1 MB
# per record; streams/faust_adapter.py sizes the producer's requests for the same bound.
STATE_RECORD_MAX_BYTES = 16 * 1024 * 1024

MUNICIPALITY = "no legal term: to be set by the municipality"

# Personal data in clear (a BSN never is: the connectors pseudonymise it).
NAME, BIRTH_DATE, ADDRESS = "name", "birth date", "address"
MATCHING = frozenset({NAME, BIRTH_DATE, ADDRESS})  # where matching needs all three
# Telephone and e-mail of a person (not a professional's): only for the contact card.
CONTACT = "contact details"
# Where the contact card's sources travel: a vroegsignaal's or BRP registration's name,
# address and contact details, from the source to the household stage (issue 17).
CARD_SOURCE = frozenset({NAME, ADDRESS, CONTACT})


class Domain(StrEnum):
    """The source domains; each has one raw topic (raw.<domain>)."""

    POPULATION = "population"
    CARE = "care"
    YOUTH = "youth"
    INCOME = "income"
    DEBT = "debt"
    TEAMS = "teams"


@dataclass(frozen=True)
class DataClass:
    """A kind of data with one retention setting.

    ``default_days`` 0 means *kept while current* and is allowed only for a
    compacted class: only a tombstone removes a key. ``legal`` names the law
    that sets the term, or says that none does; ``reason`` says why the
    default is this number, so that a municipality changing it knows what it
    trades. ``stored_in`` is set for data that is not on Kafka (files).
    """

    id: str
    title: str
    default_days: int
    compacted: bool
    legal: str
    reason: str
    env_name: str = ""
    stored_in: str = ""

    @property
    def env(self) -> str:
        """The environment variable that sets this class's retention in days."""
        return self.env_name or f"WIJKHUB_RETENTION_{self.id.upper().replace('-', '_')}_DAYS"


def _raw_class(domain: Domain, title: str, days: int, legal: str, reason: str) -> DataClass:
    return DataClass(f"raw-{domain.value}", title, days, False, legal, reason)


RAW_CLASSES: dict[Domain, DataClass] = {
    d: _raw_class(d, *spec)
    for d, spec in {
        Domain.POPULATION: (
            "BRP events: registrations, moves, departures, deaths, relations "
            "(with name and date of birth, for matching)",
            730,
            MUNICIPALITY,
            "the longest rule window (duplicate help, 730 d); a rebuild from the raw topics "
            "knows only the registrations and moves within it: deliver a full BRP extract first",
        ),
        Domain.CARE: (
            "Wmo 2015 events: toewijzingen (iWmo 301, diffed), provisions started, stopped, "
            "requested",
            730,
            MUNICIPALITY + " (the case system keeps the dossier, not this copy)",
            "the longest window of a rule that reads care (730 d)",
        ),
        Domain.YOUTH: (
            "Jeugdwet events: toewijzingen (iJw 301, diffed), provisions started, stopped, "
            "requested",
            730,
            MUNICIPALITY + " (the case system keeps the dossier, not this copy)",
            "the longest window of a rule that reads youth (730 d)",
        ),
        Domain.INCOME: (
            "Participatiewet events: benefit granted, suspended, ended, sanction",
            400,
            MUNICIPALITY,
            "the one rule that reads income looks back 60 d; a year and a month lets "
            "`wijkhub rules backtest` try a changed rule over a whole year",
        ),
        Domain.DEBT: (
            "vroegsignalering arrears signals (DDAS) and schuldhulp changes",
            180,
            "Wgs art. 3 lid 2 and art. 5 with the Besluit gemeentelijke schuldhulpverlening "
            "(Stb. 2020, 240): signal data only as long as needed to offer help; the term the "
            "municipality applies under the Besluit is the ceiling",
            "the longest window over debt signals (VS-YOUTH-HELP-AFTER-DEBT-180D); debt help "
            "started earlier is kept in the stages' state, not replayed by a rebuild",
        ),
        Domain.TEAMS: (
            "team case events (case opened, closed, coordinator) and consent",
            730,
            "Archiefwet 1995 with the VNG Selectielijst gemeenten en intergemeentelijke organen "
            "2020: the team's case system (ZGW Zaken) keeps the case for its category's term; "
            "this copy is not the archive",
            "the longest window of a rule that reads teams (730 d); a rebuild from the raw "
            "topics forgets cases and consent recorded earlier (the source re-delivers them)",
        ),
    }.items()
}

LINKING = DataClass(
    "linking",
    "repartitions between the stages: who lived where when, events to link (by-address), "
    "events linked to a household (linked)",
    7,
    False,
    MUNICIPALITY,
    "read within seconds; a week covers a worker outage; nothing reads them later (the "
    "stages keep what they need)",
)
REVIEW = DataClass(
    "review",
    "the review queue: signals not linked with certainty, with the reason",
    30,
    True,
    MUNICIPALITY + " (never beyond the raw-debt term: the entries are vroegsignalering signals)",
    "an entry not closed within a month has lost its use; the signal itself stays on raw.debt",
)
HAND_OVER_CLASS = DataClass(
    "hand-over",
    "events about people who left the municipality",
    90,
    True,
    MUNICIPALITY,
    "a quarter to hand the events over to the new municipality; a tombstone withdraws one",
)
ALERTS_CLASS = DataClass(
    "alerts",
    "alerts (meldingen): rule, the facts behind it, team, state, involved parties",
    730,
    True,
    "Jeugdwet art. 7.1.4.5 lid 2 onder a (verwijsindex): a match is removed at most two "
    "years after it was made; duplicate-help alerts follow it, early-detection alerts are "
    "kept no longer",
    "compact,delete: an alert not changed for two years leaves the topic",
)
HOUSEHOLD_VIEW_CLASS = DataClass(
    "household-view",
    "the latest view per household: members per date, facts",
    730,
    True,
    MUNICIPALITY,
    "a view not changed for two years holds only facts older than every rule window",
)
TEAM_ACTIONS = DataClass(
    "team-actions",
    "team actions on alerts: claim, acknowledge, contact made, resolve with outcome (member)",
    730,
    False,
    "Archiefwet 1995 with the VNG Selectielijst gemeenten en intergemeentelijke organen 2020 "
    "for the case record, which the team's case system keeps; the hub keeps the actions as "
    "long as the alerts they act on",
    "as long as the alerts class: a rebuild needs the actions on every alert still kept",
)
DEAD_LETTERS = DataClass(
    "dead-letters",
    "input the hub could not process (original bytes sealed, reason) and alerts a sink could "
    "not deliver",
    30,
    False,
    MUNICIPALITY,
    "a month for an operator to review, correct and re-deliver",
)
AUDIT_CLASS = DataClass(
    "audit",
    "every view of personal data, allowed or refused: who, what, when, why",
    730,
    False,
    MUNICIPALITY,
    "as long as an alert can exist, so every view of it can be shown to the person (AVG art. 15)",
)
STAGE_STATE = DataClass(
    "stage-state",
    "the stages' state (table changelogs): facts per person, building and household; name and "
    "date of birth as match features in the address stage",
    0,
    True,
    MUNICIPALITY,
    "0: kept while current. A later event needs who lives where, however old the "
    "registration; with a term, a worker rebuilding its state would forget everyone nobody "
    "wrote about within it. Keys leave by tombstones (erasure); old facts by pruning",
)
ERASURE_REGISTER = DataClass(
    "erasure-register",
    "erasure requests (AVG art. 17): whose facts received before when are erased, by pseudonym",
    730,
    False,
    MUNICIPALITY + " (AVG art. 17 and art. 5 lid 2: the hub must keep refusing an erased "
    "person's facts while copies of them can still be delivered again)",
    "as long as the longest raw term: a request outlives every copy of the facts it erases "
    "that a rebuild could replay; then both are gone (docs/privacy/erasure.md)",
)
SOURCE_FILES = DataClass(
    "source-files",
    "source files in the file drop after intake (clear BSNs)",
    30,
    False,
    MUNICIPALITY,
    "no longer than the dead letters they produced, so a fault found in review can be traced "
    "to its file; the source system keeps the original",
    env_name="WIJKHUB_FILEDROP_PURGE_DAYS",
    stored_in="file drop: `<root>/<source>/processed/` and `failed/`",
)

DATA_CLASSES: tuple[DataClass, ...] = (
    *RAW_CLASSES.values(),
    LINKING,
    REVIEW,
    HAND_OVER_CLASS,
    ALERTS_CLASS,
    HOUSEHOLD_VIEW_CLASS,
    TEAM_ACTIONS,
    DEAD_LETTERS,
    AUDIT_CLASS,
    ERASURE_REGISTER,
    STAGE_STATE,
    SOURCE_FILES,
)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    data_class: DataClass
    doc: str
    partitions: int | None = None  # None: the configured default, so co-partitioned topics agree
    max_message_bytes: int | None = None  # None: the broker's default
    # Personal data it may hold in clear besides pseudonyms (NAME, BIRTH_DATE, ADDRESS): the
    # privacy scan in the tests holds every topic and changelog to this (issue 16).
    holds: frozenset[str] = frozenset()

    def config(self, settings: Settings) -> dict[str, str]:
        """The topic's configuration on the broker, from its data class's settings."""
        return topic_config(self.data_class, settings, self.max_message_bytes)


def topic_config(
    data_class: DataClass, settings: Settings, max_message_bytes: int | None = None
) -> dict[str, str]:
    """Cleanup policy and retention from the class's setting; for a compacted class also
    the bounded time until compaction and until a tombstone is gone (see module docstring).
    """
    days = settings.retention(data_class)
    retention = str(days * DAY_MS) if days else "-1"
    if not data_class.compacted:
        cfg = {"cleanup.policy": "delete", "retention.ms": retention}
    else:
        max_lag_ms = settings.compaction_max_lag_seconds * 1000
        cfg = {
            "cleanup.policy": "compact,delete" if days else "compact",
            "retention.ms": retention,
            "min.compaction.lag.ms": str(min(MIN_COMPACTION_LAG_MS, max_lag_ms)),
            "max.compaction.lag.ms": str(max_lag_ms),
            "delete.retention.ms": str(settings.tombstone_retention_seconds * 1000),
        }
    if max_message_bytes:
        cfg["max.message.bytes"] = str(max_message_bytes)
    return cfg


def raw(domain: Domain) -> str:
    return f"raw.{domain.value}"


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
ERASURES = "erasure-requests"
CONTACT_CARDS = "contact-cards"

TOPICS: tuple[TopicSpec, ...] = (
    *(
        TopicSpec(
            raw(d),
            "person_ref, else address_ref",
            data_class,
            f"validated, pseudonymised {d.value} events from the connectors",
            # as the sources send them: signals without BSN carry all three; vroegsignalen
            # and BRP registrations how to reach the person, for the contact card
            holds=MATCHING | CARD_SOURCE,
        )
        for d, data_class in RAW_CLASSES.items()
    ),
    TopicSpec(
        BY_ADDRESS,
        "address_ref",
        LINKING,
        "repartition from the person stage to the address stage (who lived together when)",
        # the residents' match features travel to the address stage; the events' contact
        # details (for the contact card) with the events
        holds=MATCHING | CARD_SOURCE,
    ),
    TopicSpec(
        UNMATCHED,
        "event_id",
        REVIEW,
        "signals the hub could not link with certainty, for review: event + reason in headers; "
        "the latest record per event is the entry, a tombstone closes it (linked after all)",
        holds=frozenset({ADDRESS}),
    ),
    TopicSpec(
        HAND_OVER,
        "event_id",
        HAND_OVER_CLASS,
        "events about people who left the municipality: for the new municipality, not a team; "
        "a tombstone withdraws one (a late BRP record moved it back)",
        holds=frozenset({ADDRESS}),
    ),
    TopicSpec(
        LINKED,
        "household_ref",
        LINKING,
        "raw events linked to a household; repartition to household_ref",
        holds=CARD_SOURCE,  # the contact details travel on to the household stage (issue 17)
    ),
    TopicSpec(
        ALERTS,
        "alert_id",
        ALERTS_CLASS,
        "alerts and their state; compacted so the latest state per alert is kept",
    ),
    TopicSpec(
        CONTACT_CARDS,
        "alert_id",
        ALERTS_CLASS,  # as long as its alert at most; a tombstone when the alert closes
        "the contact card of every open alert, for its responsible team only: the persons "
        "behind the facts with name, address, telephone and e-mail as a source supplied them; "
        "a tombstone when the alert closes or its facts are erased; only the inbox reads it",
        holds=CARD_SOURCE,
    ),
    TopicSpec(
        ALERT_ACTIONS,
        "household_ref",
        TEAM_ACTIONS,
        "team actions on alerts (claim, acknowledge, contact made, resolve) for the household "
        "stage; co-partitioned with linked",
    ),
    TopicSpec(
        HOUSEHOLD_VIEW,
        "household_ref",
        HOUSEHOLD_VIEW_CLASS,
        "the one household view (latest per household)",
        holds=frozenset({ADDRESS}),
    ),
    TopicSpec(
        DLQ_INGEST,
        "HMAC of source, input and record place (readers deduplicate by key)",
        DEAD_LETTERS,
        "input the connectors could not accept: sealed original bytes + reason",
    ),
    TopicSpec(
        DLQ_STREAMS,
        "original key",
        DEAD_LETTERS,
        "records the stream processors could not process: original bytes + reason",
    ),
    TopicSpec(
        DLQ_DELIVERY,
        "alert_id",
        DEAD_LETTERS,
        "alert changes a sink (webhook, mail) could not deliver after its retries: record + reason",
    ),
    TopicSpec(
        AUDIT,
        "writer (one hash chain per key)",
        AUDIT_CLASS,
        "every view of personal data, and every erasure and subject-access request",
    ),
    TopicSpec(
        ERASURES,
        "person_ref (co-partitioned with the raw topics)",
        ERASURE_REGISTER,
        "erasure requests for the person stage: `wijkhub erase` writes them (fg or operator)",
    ),
)

RAW_TOPICS: tuple[str, ...] = tuple(raw(d) for d in Domain)
# What the stream workers consume (lag, drain checks and status read this).
# The person stage's inputs: co-partitioned by person_ref.
PERSON_INPUTS: tuple[str, ...] = (*RAW_TOPICS, ERASURES)
WORKER_INPUTS: tuple[str, ...] = (*PERSON_INPUTS, BY_ADDRESS, LINKED, ALERT_ACTIONS)

# The stages that keep a Faust table, by their ``Stage.name`` (streams/app.py runs them),
# each with the key of its table; a unit test holds this to the stages the worker builds.
STATE_TABLES: dict[str, str] = {
    "person": "person_ref, else address_ref",
    "address": "address_ref (building)",
    "household": "household_ref",
}
# What each table holds in clear: the person stage keeps the registrations it sends on to
# the address stage, which keeps the residents' match features (issue 16: only there).
STATE_HOLDS: dict[str, frozenset[str]] = {
    "person": MATCHING | CARD_SOURCE,
    "address": MATCHING | CARD_SOURCE,
    # the facts' contact details, from which the contact cards are derived (issue 17)
    "household": CARD_SOURCE,
}


def table_name(stage: str) -> str:
    """The Faust table of a stage (streams/faust_adapter.py names it so)."""
    return f"{stage}-state"


def changelog_name(app_id: str, stage: str) -> str:
    """The changelog topic Faust gives a stage's table: ``<app id>-<table>-changelog``.

    faust-streaming 0.15.3, ``Collection._changelog_topic_name``: the app id
    (``WIJKHUB_APP_ID``; Faust appends a version only for ``version`` > 1,
    which the hub never sets), not the topic prefix.
    """
    return f"{app_id}-{table_name(stage)}-changelog"


def changelogs(app_id: str) -> tuple[TopicSpec, ...]:
    """The tables' changelog topics of the app ``app_id``, as Faust names and sizes them:
    partitions = ``topic_partitions`` (the table's source topics have as many)."""
    return tuple(
        TopicSpec(
            changelog_name(app_id, stage),
            key,
            STAGE_STATE,
            f"the {stage} stage's state per key; the worker's RocksDB is a cache of it",
            max_message_bytes=STATE_RECORD_MAX_BYTES,
            holds=STATE_HOLDS[stage],
        )
        for stage, key in STATE_TABLES.items()
    )


def changelog_configs(settings: Settings) -> dict[str, str]:
    """The configuration of every table changelog, for Faust's ``extra_topic_configs``.

    Faust creates a missing changelog with ``cleanup.policy=compact`` and then
    applies these on top, so a changelog the worker creates and one
    ``wijkhub topics create`` created up front are configured alike.
    """
    return topic_config(STAGE_STATE, settings, STATE_RECORD_MAX_BYTES)


def cluster_topics(settings: Settings) -> dict[str, TopicSpec]:
    """Every topic of the hub under its name on the cluster: the topics with the topic
    prefix, and the changelogs of the tables of ``settings.app_id``."""
    named = {full_name(t.name, settings.topic_prefix): t for t in TOPICS}
    named.update((t.name, t) for t in changelogs(settings.app_id))
    return named


def topics_of(data_class: DataClass, app_id: str = "<app id>") -> tuple[str, ...]:
    """The names of the topics of a class (changelogs under ``app_id``), for docs."""
    return tuple(t.name for t in (*TOPICS, *changelogs(app_id)) if t.data_class == data_class)


def full_name(name: str, prefix: str = "") -> str:
    """The topic's name on the cluster: an optional prefix isolates test runs and tenants."""
    return f"{prefix}{name}"


def logical_name(topic: str, prefix: str = "") -> str:
    """The name as defined here, without the cluster prefix (for metric labels and docs)."""
    return topic.removeprefix(prefix)
