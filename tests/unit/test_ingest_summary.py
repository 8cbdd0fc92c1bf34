"""`wijkhub ingest … --json`: the totals, and per file read / events / dead letters by reason."""

import json
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from wijkhub import cli
from wijkhub.connectors import intake as intake_module
from wijkhub.connectors import preflight

from builders import FakeKafka

SAMPLES = Path(__file__).resolve().parents[2] / "connectors" / "samples"
ELFPROEF = "BSN fails the elfproef or is not 8-9 digits"
CHANGE = "field change must be one of granted, suspended, ended, sanction"
ENV = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "WIJKHUB_PSEUDONYM_KEY": "p" * 32,
       "WIJKHUB_DEAD_LETTER_KEY": "d" * 32, "WIJKHUB_TOPIC_PREFIX": ""}  # fmt: skip


@pytest.fixture
def kafka(monkeypatch) -> FakeKafka:
    fake = FakeKafka()
    monkeypatch.setattr(preflight, "cluster_topics", lambda s, *_: set(preflight.intake_topics(
        preflight.SOURCE_DOMAINS, s.topic_prefix)))  # fmt: skip
    monkeypatch.setattr(intake_module, "producer", lambda _settings, _source: fake)
    return fake


def ingest(*args: str):
    with capture_logs():  # the CLI logs to stderr; here structlog would print to stdout
        result = CliRunner().invoke(cli.app, ["ingest", "income", *args], env=ENV)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_json_summary_gives_every_file_its_counts_and_dead_letters_by_reason(kafka):
    csv, jsn = SAMPLES / "income.csv", SAMPLES / "income.json"
    summary = json.loads(ingest(str(csv), str(jsn), "--json"))
    assert summary["per_file"] == [
        {"file": str(csv), "read": 3, "events": 2, "dead_lettered": 1,
         "reasons": {"invalid": 1}, "dead_letter_reasons": {CHANGE: 1}},
        {"file": str(jsn), "read": 3, "events": 2, "dead_lettered": 1,
         "reasons": {"invalid": 1}, "dead_letter_reasons": {ELFPROEF: 1}},
    ]  # fmt: skip
    totals = {k: summary[k] for k in ("source", "files", "read", "events", "dead_lettered")}
    assert totals == {"source": "income", "files": 2, "read": 6, "events": 4, "dead_lettered": 2}
    assert summary["reasons"] == {"invalid": 2}
    assert summary["dead_letter_reasons"] == {CHANGE: 1, ELFPROEF: 1}
    assert sorted(kafka.topics) == ["dlq.ingest"] * 2 + ["raw.income"] * 4


def test_the_text_summary_has_a_line_per_file_then_the_totals(kafka):
    csv = SAMPLES / "income.csv"
    lines = ingest(str(csv), str(csv)).splitlines()
    assert lines[0] == f"{csv}: 3 records read: 2 events, 1 dead letters [1: {CHANGE}]"
    assert lines[1] == lines[0]
    assert lines[2].startswith(f"2 files, 6 records read: 4 events, 2 dead letters [2: {CHANGE}]")
