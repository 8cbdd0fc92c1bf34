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


def test_a_secret_comes_from_its_file_variant_and_not_from_both(tmp_path):
    secret = tmp_path / "pseudonym.key"
    secret.write_text("k" * 40 + "\n")
    settings = Settings.from_env({"WIJKHUB_PSEUDONYM_KEY_FILE": str(secret)})
    assert settings.pseudonym_key == b"k" * 40  # the trailing newline of an editor is no part
    with pytest.raises(
        SettingsError, match="set WIJKHUB_PSEUDONYM_KEY or WIJKHUB_PSEUDONYM_KEY_FILE"
    ):
        Settings.from_env({"WIJKHUB_PSEUDONYM_KEY_FILE": str(secret),
                           "WIJKHUB_PSEUDONYM_KEY": "x" * 40})  # fmt: skip
    with pytest.raises(SettingsError, match=r"WIJKHUB_ACTION_KEYS_FILE .*cannot read"):
        Settings.from_env({"WIJKHUB_ACTION_KEYS_FILE": str(tmp_path / "missing")})


def test_the_worker_seals_what_it_dead_letters():
    from wijkhub.connectors.deadletter import unseal
    from wijkhub.streams.stage import Message, dead_letter, sealed

    original = b"raw bytes that may hold anything"
    letter = dead_letter("person", Message("raw.debt", b"k", original, "raw.debt/0/7"),
                         "undecodable", "not Avro")  # fmt: skip
    out = sealed(letter, b"d" * 32)
    assert original not in out.value and dict(out.headers)["dl_sealed"] == b"1"
    assert unseal(b"d" * 32, out.value) == original
    assert sealed(out, b"d" * 32) == out  # sealed once
    assert dict(out.headers)["dl_reason_code"] == b"undecodable"


def test_a_row_without_message_id_gets_a_keyed_id():
    import hashlib

    from wijkhub.connectors.identity import Pseudonymiser

    row = b"2026-01-01;111222333;bijstand;beeindigd"
    ref = Pseudonymiser(b"p" * 32).content_ref(row)
    assert (
        ref
        == Pseudonymiser(b"p" * 32).content_ref(row)
        != Pseudonymiser(b"q" * 32).content_ref(row)
    )
    assert hashlib.sha256(row).hexdigest()[:32] not in ref


def test_an_eight_digit_bsn_is_masked_and_a_date_is_not():
    from wijkhub.logs import mask_bsn_like

    # 12345672 is 012345672 in the BRP's 9 digits and passes the elfproef; 20250801 does not
    assert mask_bsn_like("bsn 12345672, file pc6hnr20250801") == "bsn ********, file pc6hnr20250801"
