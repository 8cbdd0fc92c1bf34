"""An intake before `wijkhub topics create`: one line that says so, at once, non-zero exit."""

import re
import socket
import time

import pytest
from typer.testing import CliRunner

from wijkhub import cli
from wijkhub.broker import free_port
from wijkhub.connectors import preflight
from wijkhub.connectors.formats import SOURCES
from wijkhub.connectors.intake import Intake
from wijkhub.connectors.preflight import (
    IntakeNotReady,
    accepts_connections,
    cluster_topics,
    intake_topics,
    missing_message,
    require_topics,
)
from wijkhub.settings import Settings
from wijkhub.streams.topics import RAW_TOPICS

SECRETS = {"WIJKHUB_PSEUDONYM_KEY": "p" * 32, "WIJKHUB_DEAD_LETTER_KEY": "d" * 32}
SETTINGS = Settings(
    bootstrap_servers="127.0.0.1:9", topic_prefix="test.", pseudonym_key=b"p" * 32,
    dead_letter_key=b"d" * 32,
)  # fmt: skip
WANTED = "topic test.raw.debt does not exist (nor 1 more of the hub's topics): " \
    "run `wijkhub topics create` first"  # fmt: skip


def test_every_source_writes_only_its_own_raw_topic_and_the_dead_letters():
    assert set(preflight.SOURCE_DOMAINS) == set(SOURCES)
    assert intake_topics(["vroegsignalering"], "test.") == ["test.raw.debt", "test.dlq.ingest"]
    assert sorted(intake_topics(SOURCES, "test.")) == sorted(
        ["test.dlq.ingest", *(f"test.{t}" for t in RAW_TOPICS)]
    )


def test_the_message_is_one_line_with_what_to_do():
    assert missing_message(["x.raw.care"]) == (
        "topic x.raw.care does not exist: run `wijkhub topics create` first"
    )
    assert "\n" not in missing_message(["a", "b", "c"])


def test_require_topics_names_the_first_missing_topic_of_the_source():
    everything = set(intake_topics(SOURCES, "test."))
    require_topics(SETTINGS, ["income"], lister=lambda *_: everything)
    with pytest.raises(IntakeNotReady) as refused:
        require_topics(SETTINGS, ["income"], lister=lambda *_: everything - {"test.raw.income"})
    assert str(refused.value) == (
        "topic test.raw.income does not exist: run `wijkhub topics create` first"
    )
    require_topics(SETTINGS, ["income"], lister=lambda *_: everything - {"test.raw.teams"})
    with pytest.raises(IntakeNotReady) as refused:
        require_topics(SETTINGS, ["schuldhulp"], lister=lambda *_: {"other"})
    assert str(refused.value) == WANTED


def test_an_unreachable_broker_is_said_within_the_timeout():
    settings = SETTINGS.with_(bootstrap_servers=f"127.0.0.1:{free_port()}")
    began = time.monotonic()
    with pytest.raises(IntakeNotReady, match=re.escape("no Kafka broker answers at 127.0.0.1:")):
        cluster_topics(settings, 0.5, "intake-income")
    assert time.monotonic() - began < 5


def test_a_listening_server_anywhere_in_the_bootstrap_list_is_enough():
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert accepts_connections(f"127.0.0.1:{free_port()}, 127.0.0.1:{port}", 1.0)
    assert not accepts_connections(f"[::1]:{free_port()},no-port,127.0.0.1:x", 0.5)


def test_an_intake_checks_before_it_makes_a_producer(monkeypatch):
    monkeypatch.setattr(preflight, "cluster_topics", lambda *_: set())
    with pytest.raises(IntakeNotReady, match=re.escape("topic test.raw.income does not exist")):
        Intake(SETTINGS, "income")


@pytest.mark.parametrize(
    "args",
    [
        ["ingest", "vroegsignalering", "{file}"],
        ["watch", "{dir}", "--once"],
        ["serve-intake"],
        ["relay", "vroegsignalering", "--topic", "elsewhere"],
    ],
)
def test_every_intake_command_refuses_to_start_with_one_line(monkeypatch, tmp_path, args):
    monkeypatch.setattr(preflight, "cluster_topics", lambda *_: {"test.raw.population"})
    data = tmp_path / "signals.csv"
    data.write_text("ID;signaaldatum\nVS-1;2026-01-01\n")
    env = {**SECRETS, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9", "WIJKHUB_TOPIC_PREFIX": "test.",
           "WIJKHUB_INGEST_TOKENS": "vroegsignalering=" + "t" * 24}  # fmt: skip
    args = [a.format(file=data, dir=tmp_path / "drop") for a in args]
    result = CliRunner().invoke(cli.app, args, env=env)
    assert result.exit_code == 2, result.output
    [line] = result.output.strip().splitlines()
    own = "youth" if args[0] == "watch" else "debt"  # watch serves every source: ijw first
    more = "nor 5" if args[0] == "watch" else "nor 1"
    assert line == f"error: {WANTED}".replace("debt", own).replace("nor 1", more)
    assert not (tmp_path / "drop").exists()  # nothing prepared, nothing moved
