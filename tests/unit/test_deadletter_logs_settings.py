import json
import logging

import pytest
from cryptography.exceptions import InvalidTag

from wijkhub import logs
from wijkhub.connectors.deadletter import DeadLetter, seal, unseal
from wijkhub.settings import Settings, SettingsError


def test_sealed_dead_letter_round_trips_and_hides_the_bytes():
    original = b'{"bsn": "111222333"}'
    sealed = seal(b"k" * 32, original)
    assert b"111222333" not in sealed
    assert unseal(b"k" * 32, sealed) == original
    with pytest.raises(InvalidTag):
        unseal(b"x" * 32, sealed)


def test_dead_letter_headers_round_trip():
    letter = DeadLetter("ingest", "invalid", "field x is missing", "income", b"raw", True, "f:1")
    assert DeadLetter.from_headers(letter.headers(), b"raw") == letter


def test_logs_are_json_and_nine_digit_numbers_are_masked(capsys):
    logs.configure("INFO")
    logs.get("t").info("saw 111222333 here", event_id="e1")
    logging.getLogger("faust.test").warning("also 123456782")
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0]["message"] == "saw ********* here" and lines[0]["event_id"] == "e1"
    assert lines[0]["level"] == "info" and "timestamp" in lines[0]
    assert lines[1]["message"] == "also *********" and lines[1]["logger"] == "faust.test"


def test_settings_from_env_and_errors():
    s = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "a:1,b:2", "WIJKHUB_TOPIC_PARTITIONS": "8"})
    assert s.broker_url == "kafka://a:1;kafka://b:2" and s.topic_partitions == 8
    assert Settings.from_env(s.to_env()) == s
    with pytest.raises(SettingsError, match="WIJKHUB_TOPIC_PARTITIONS"):
        Settings.from_env({"WIJKHUB_TOPIC_PARTITIONS": "many"})
    with pytest.raises(SettingsError, match="PSEUDONYM_KEY"):
        s.require_secrets()
