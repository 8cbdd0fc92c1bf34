"""Retention is configuration per data class, and every topic and changelog has one.

The broker's retention of a topic must follow from one setting of its data class,
never from a number written beside the topic; the changelogs Faust creates must be
the ones defined here, configured alike (issue 16).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from faust.transport.drivers.aiokafka import Transport

from wijkhub.settings import Settings, SettingsError
from wijkhub.streams import faust_adapter
from wijkhub.streams.app import build_app
from wijkhub.streams.topics import (
    DATA_CLASSES,
    DAY_MS,
    MUNICIPALITY,
    RAW_CLASSES,
    SOURCE_FILES,
    STAGE_STATE,
    STATE_RECORD_MAX_BYTES,
    STATE_TABLES,
    TOPICS,
    Domain,
    changelog_configs,
    changelog_name,
    changelogs,
    cluster_topics,
    raw,
    topic_config,
    topics_of,
)

from builders import offline_worker_settings

REPO = Path(__file__).resolve().parents[2]
CLASSES = {c.id: c for c in DATA_CLASSES}


def test_every_topic_and_changelog_belongs_to_a_defined_class_and_every_class_is_used():
    every = (*TOPICS, *changelogs("wijkhub"))
    assert {t.data_class for t in every} <= set(DATA_CLASSES)
    assert len(CLASSES) == len(DATA_CLASSES)  # ids are unique
    unused = [c.id for c in DATA_CLASSES if not topics_of(c) and not c.stored_in]
    assert unused == []
    assert topics_of(SOURCE_FILES) == () and SOURCE_FILES.stored_in
    # a compacted topic keeps the latest record per key: it must have one
    assert all(t.key != "none" for t in every if t.data_class.compacted)


def test_each_domain_has_its_raw_topic_in_its_own_class():
    assert set(RAW_CLASSES) == set(Domain)
    for domain, data_class in RAW_CLASSES.items():
        assert topics_of(data_class) == (raw(domain),)
        assert data_class.env == f"WIJKHUB_RETENTION_RAW_{domain.value.upper()}_DAYS"


def test_every_default_names_its_legal_source_or_says_the_municipality_sets_it():
    for c in DATA_CLASSES:
        assert c.legal and c.reason and c.title, c.id
        assert c.legal.startswith(MUNICIPALITY) or any(
            law in c.legal for law in ("Wgs", "Jeugdwet", "Archiefwet")
        ), c.id
    assert "Besluit gemeentelijke schuldhulpverlening" in RAW_CLASSES[Domain.DEBT].legal
    assert "7.1.4.5" in CLASSES["alerts"].legal and CLASSES["alerts"].default_days == 730
    for case_data in ("team-actions", "raw-teams"):
        assert "Selectielijst gemeenten" in CLASSES[case_data].legal


def test_each_class_is_one_setting_from_the_environment():
    s = Settings.from_env(
        {"WIJKHUB_RETENTION_RAW_DEBT_DAYS": "90", "WIJKHUB_FILEDROP_PURGE_DAYS": "7"}
    )
    assert s.retention(RAW_CLASSES[Domain.DEBT]) == 90
    assert s.retention(SOURCE_FILES) == 7
    assert s.retention(CLASSES["audit"]) == CLASSES["audit"].default_days
    assert Settings().retention(RAW_CLASSES[Domain.DEBT]) == 180  # the default, unset
    again = Settings.from_env(s.to_env())
    assert all(again.retention(c) == s.retention(c) for c in DATA_CLASSES)
    assert {c.env for c in DATA_CLASSES} <= s.to_env().keys()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WIJKHUB_RETENTION_AUDIT_DAYS": "0"}, "WIJKHUB_RETENTION_AUDIT_DAYS must be at least 1"),
        ({"WIJKHUB_RETENTION_ALERTS_DAYS": "-1"}, "WIJKHUB_RETENTION_ALERTS_DAYS must be at least"),
        ({"WIJKHUB_FILEDROP_PURGE_DAYS": "soon"}, "WIJKHUB_FILEDROP_PURGE_DAYS must be an integer"),
        ({"WIJKHUB_COMPACTION_MAX_LAG_SECONDS": "0"}, "COMPACTION_MAX_LAG_SECONDS must be at"),
    ],
)
def test_a_retention_that_would_lose_data_at_once_is_refused(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_kept_while_current_is_allowed_only_for_a_compacted_class():
    assert Settings.from_env({"WIJKHUB_RETENTION_ALERTS_DAYS": "0"}).retention_days["alerts"] == 0
    assert STAGE_STATE.compacted and STAGE_STATE.default_days == 0


def test_the_broker_config_follows_the_class_setting():
    s = Settings(
        retention_days={"raw-debt": 90, "alerts": 365, "review": 0},
        compaction_max_lag_seconds=3600,
        tombstone_retention_seconds=7200,
    )
    topics = cluster_topics(s)
    assert topics["raw.debt"].config(s) == {
        "cleanup.policy": "delete",
        "retention.ms": str(90 * DAY_MS),
    }
    assert topics["alerts"].config(s) == {
        "cleanup.policy": "compact,delete",
        "retention.ms": str(365 * DAY_MS),
        "min.compaction.lag.ms": "60000",
        "max.compaction.lag.ms": "3600000",
        "delete.retention.ms": "7200000",
    }
    unmatched = topics["unmatched"].config(s)
    assert (unmatched["cleanup.policy"], unmatched["retention.ms"]) == ("compact", "-1")
    # a test may want compaction within seconds: the minimum lag never exceeds the maximum
    quick = Settings(compaction_max_lag_seconds=5)
    assert topic_config(STAGE_STATE, quick)["min.compaction.lag.ms"] == "5000"


def test_changelogs_are_named_as_faust_names_them_and_prefixed_by_the_app_id_only():
    s = Settings(app_id="gemeente-x", topic_prefix="t.")
    names = set(cluster_topics(s))
    assert {f"gemeente-x-{stage}-state-changelog" for stage in STATE_TABLES} <= names
    assert "t.raw.debt" in names and "raw.debt" not in names
    for spec in changelogs("gemeente-x"):
        assert spec.data_class is STAGE_STATE
        assert spec.config(s) == changelog_configs(s)
        assert spec.config(s)["max.message.bytes"] == str(STATE_RECORD_MAX_BYTES)


@pytest.fixture(scope="module")
def worker_app(tmp_path_factory):
    settings = offline_worker_settings(tmp_path_factory.mktemp("app")).with_(
        app_id="wijkhub-retention", topic_partitions=6
    )
    return settings, build_app(settings)


def test_the_workers_tables_are_the_ones_defined_here(worker_app):
    settings, app = worker_app
    topics = {t.changelog_topic.get_topic_name(): t for t in app.tables.values()}
    assert set(topics) == {changelog_name(settings.app_id, stage) for stage in STATE_TABLES}
    for table in topics.values():
        # Faust sizes a changelog like this when it creates one
        assert (table.changelog_topic.partitions or app.conf.topic_partitions) == 6
    assert faust_adapter.MAX_RECORD_BYTES == STATE_RECORD_MAX_BYTES


def faust_creates(table) -> dict[str, str]:
    """The config Faust 0.15.3 gives a changelog it creates (``_really_create_topic``):
    the cleanup and retention flags of the topic, then its ``extra_topic_configs``."""
    topic = table.changelog_topic
    config = Transport._topic_config(None, topic.retention, topic.compacting, topic.deleting)
    return {**config, **topic.config}


def test_faust_would_create_no_changelog_contradicting_its_data_class(worker_app):
    settings, app = worker_app
    want = changelog_configs(settings)
    for table in app.tables.values():
        made = faust_creates(table)
        assert {k: v for k, v in made.items() if k in want} == {
            k: want[k] for k in made if k in want
        }


def test_faust_would_create_each_changelog_exactly_as_its_data_class_says(worker_app):
    settings, app = worker_app
    for table in app.tables.values():
        assert faust_creates(table) == changelog_configs(settings)


def table_row(document: str, first_cell: str) -> str:
    [row] = [line for line in document.splitlines() if line.startswith(f"| {first_cell} |")]
    return row


def test_the_design_topics_table_gives_every_topic_and_changelog_its_class_and_default():
    design = (REPO / "docs" / "DESIGN.md").read_text()
    defaults = Settings()
    for spec in (*TOPICS, *changelogs("<app id>")):
        row = table_row(design, f"`{spec.name}`")
        cleanup = spec.config(defaults)["cleanup.policy"].replace(",", ", ")
        days = defaults.retention(spec.data_class)
        assert f"| {cleanup} | `{spec.data_class.id}` |" in row, row
        assert f"| {days} d |" in row if days else "| while current |" in row, row


def test_the_readme_retention_table_is_the_registers_data_class_table():
    from wijkhub.privacy import render
    from wijkhub.streams import ruleset
    from wijkhub.streams.routing import Router

    readme = (REPO / "README.md").read_text()
    register = render(ruleset.load(), Router.load(), Settings())
    rows = register[register.index("| class | what |") :].strip().splitlines()
    assert len(rows) == len(DATA_CLASSES) + 2
    missing = [row for row in rows if row not in readme.splitlines()]
    assert missing == [], "copy the data class table of `wijkhub privacy register` into README"
