"""Operator commands against the real cluster: topic drift and ``wijkhub status``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from kafka.admin import ConfigResource, ConfigResourceType

from wijkhub.admin import admin_client, create_topics
from wijkhub.streams.topics import (
    DATA_CLASSES,
    RAW_CLASSES,
    STATE_TABLES,
    Domain,
    changelog_name,
    cluster_topics,
)

from builders import TEAM_A, household, wait_for_alerts


def wijkhub(settings, *args: str, extra=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wijkhub", *args],
                          env={**os.environ, **settings.to_env(), **(extra or {})},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_topics_check_finds_no_drift_on_the_hubs_topics(hub):
    done = wijkhub(hub.settings, "topics", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "topics match streams/topics.py" in done.stdout


def separate(hub):
    """Settings with topics and table changelogs of their own (prefix and app id)."""
    run = uuid.uuid4().hex[:6]
    return hub.settings.with_(topic_prefix=f"drift-{run}.", app_id=f"wijkhub-drift-{run}")


def configs_on_the_broker(settings, names):
    admin = admin_client(settings)
    try:
        resources = [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        described = admin.describe_configs(resources, config_filter="all")["topic"]
    finally:
        admin.close()
    return {name: {k: v.get("value") for k, v in described[name].items()} for name in names}


def test_every_topic_and_changelog_on_the_broker_has_its_data_class_retention(hub):
    """Issue 16, done when: the retention of every topic and changelog on the broker
    equals its configured data class (the worker is running: its tables use them)."""
    hub.wait_drained()
    topics = cluster_topics(hub.settings)
    changelogs = {changelog_name(hub.settings.app_id, stage) for stage in STATE_TABLES}
    assert changelogs <= topics.keys()
    on_broker = configs_on_the_broker(hub.settings, list(topics))
    assert {t.data_class for t in topics.values()} == {c for c in DATA_CLASSES if not c.stored_in}
    for name, spec in topics.items():
        days = hub.settings.retention(spec.data_class)
        have = on_broker[name]
        assert have["retention.ms"] == (str(days * 86_400_000) if days else "-1"), name
        want = ("compact,delete" if days else "compact") if spec.data_class.compacted else "delete"
        assert have["cleanup.policy"] == want, name
        if spec.data_class.compacted:  # a tombstone removes data within a bounded time
            assert have["max.compaction.lag.ms"] == str(
                hub.settings.compaction_max_lag_seconds * 1000
            )
            assert have["delete.retention.ms"] == str(
                hub.settings.tombstone_retention_seconds * 1000
            )
    assert all(on_broker[name]["cleanup.policy"] == "compact" for name in changelogs)


def test_a_changed_retention_setting_is_drift_until_topics_create_alters_it(hub):
    other = separate(hub)
    create_topics(other)
    env = {"WIJKHUB_RETENTION_RAW_DEBT_DAYS": "90", "WIJKHUB_RETENTION_STAGE_STATE_DAYS": "3650"}
    changed = other.with_(retention_days={"raw-debt": 90, "stage-state": 3650})
    checked = wijkhub(other, "topics", "check", extra=env)
    assert checked.returncode == 1
    name = other.topic_prefix + "raw.debt"
    assert (
        f"{name}: retention.ms={180 * 86_400_000}, defined {90 * 86_400_000} "
        f"({RAW_CLASSES[Domain.DEBT].env})" in checked.stdout
    )
    changelog = changelog_name(other.app_id, "household")
    assert f"{changelog}: cleanup.policy=compact, defined compact,delete" in checked.stdout
    created = wijkhub(other, "topics", "create", extra=env)
    assert created.returncode == 0, created.stderr
    assert f"altered {name}" in created.stdout and f"altered {changelog}" in created.stdout
    assert wijkhub(other, "topics", "check", extra=env).returncode == 0
    on_broker = configs_on_the_broker(changed, [name, changelog])
    assert on_broker[name]["retention.ms"] == str(90 * 86_400_000)
    assert on_broker[changelog]["cleanup.policy"] == "compact,delete"
    assert on_broker[changelog]["retention.ms"] == str(3650 * 86_400_000)


def test_topics_check_reports_a_changed_retention_and_a_missing_topic(hub):
    other = separate(hub)
    create_topics(other)
    admin = admin_client(other)
    try:
        name = other.topic_prefix + "raw.debt"
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name,
                                            configs={"retention.ms": "1000"})])  # fmt: skip
        admin.delete_topics([other.topic_prefix + "audit"])
    finally:
        admin.close()
    done = wijkhub(other, "topics", "check")
    assert done.returncode == 1
    assert f"{name}: retention.ms=1000, defined {180 * 86_400_000}" in done.stdout
    assert f"{other.topic_prefix}audit: missing" in done.stdout
    assert "changelog" not in done.stdout  # created with the topics, as defined


def status(hub) -> dict:
    done = wijkhub(hub.settings, "status", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_status_shows_intake_lag_dead_letters_and_open_alerts(hub, plant):
    hub.wait_drained()
    before = status(hub)
    p = plant.person("1004EA", "5")  # wijkteam-centrum's district
    hub.ingest("population", [p])
    signals = [
        plant.arrears("1004EA", "5", "Huur", "2026-03-01"),
        plant.arrears("1004EA", "5", "Energie", "2026-03-20"),
        plant.arrears("1004EA", "5", "Water", "2026-13-01"),
    ]  # the third has no such date: one dead letter
    report = hub.ingest("vroegsignalering", signals)
    assert (report.events, report.dead_lettered) == (2, 1)
    wait_for_alerts(hub, {household("1004EA", "5")}, 1)
    hub.wait_drained()
    after = status(hub)
    # the newest record of a partition names its source: ours are the newest of theirs
    ours = {
        f"urn:nld:gemeente:{hub.settings.municipality}:{s}"
        for s in ("population", "vroegsignalering")
    }
    assert ours <= after["last_intake_per_source"].keys(), after
    assert all(n == 0 for n in after["consumer_lag_per_topic"].values()), after
    # this test's one dead letter and one alert, on top of what the session had
    kept = before["kept_for_review"]["dlq.ingest"], after["kept_for_review"]["dlq.ingest"]
    assert kept[1] - kept[0] == 1
    open_a = [s["open_alerts_per_team"].get(TEAM_A, 0) for s in (before, after)]
    assert open_a[1] - open_a[0] == 1
    text = wijkhub(hub.settings, "status")
    assert "open alerts per team:" in text.stdout and "wijkteam-centrum" in text.stdout
