"""Operator commands against the real cluster: topic drift and ``wijkhub status``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from kafka.admin import ConfigResource, ConfigResourceType

from wijkhub.admin import admin_client, create_topics

from builders import TEAM_A, household, wait_for_alerts


def wijkhub(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wijkhub", *args],
                          env={**os.environ, **settings.to_env()},
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_topics_check_finds_no_drift_on_the_hubs_topics(hub):
    done = wijkhub(hub.settings, "topics", "check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "topics match streams/topics.py" in done.stdout


def test_topics_check_reports_a_changed_retention_and_a_missing_topic(hub):
    other = hub.settings.with_(topic_prefix=f"drift-{uuid.uuid4().hex[:6]}.")
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
    assert f"{name}: retention.ms=1000, defined {400 * 86_400_000}" in done.stdout
    assert f"{other.topic_prefix}audit: missing" in done.stdout


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
