"""Operator commands against the real cluster: topic drift and ``wijkhub status``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

from kafka.admin import ConfigResource, ConfigResourceType

from wijkhub.admin import admin_client, create_topics


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


def test_status_shows_intake_lag_dead_letters_and_open_alerts(hub):
    hub.wait_drained()
    done = wijkhub(hub.settings, "status", "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["last_intake_per_source"], status
    assert all(n == 0 for n in status["consumer_lag_per_topic"].values()), status
    assert status["kept_for_review"]["dlq.ingest"] > 0
    assert status["open_alerts_per_team"].get("wijkteam-centrum", 0) >= 1
    text = wijkhub(hub.settings, "status")
    assert "open alerts per team:" in text.stdout and "wijkteam-centrum" in text.stdout
