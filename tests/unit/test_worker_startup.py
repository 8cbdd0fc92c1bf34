"""What a worker says at start-up, before it touches Kafka."""

import pytest
from structlog.testing import capture_logs

from wijkhub import kafka
from wijkhub.broker import DISTRICT_FIXTURE
from wijkhub.settings import Settings, SettingsError
from wijkhub.streams.app import build_app

from builders import offline_worker_settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    return offline_worker_settings(tmp_path)


def test_a_worker_without_a_district_table_warns_that_alerts_go_to_the_fallback_team(settings):
    with capture_logs() as logs:
        build_app(settings)
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert warning["event"] == "no district table: every alert goes to the fallback team"
    assert warning["setting"] == "WIJKHUB_DISTRICT_TABLE"
    with capture_logs() as logs:
        build_app(settings.with_(district_table=str(DISTRICT_FIXTURE)))
    assert [e for e in logs if e["log_level"] == "warning"] == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"action_keys": ""}, "WIJKHUB_ACTION_KEYS is not set"),
        ({"action_keys": "k1=short"}, "each secret at least 32 characters"),
        ({"kafka_credentials_dir": ""}, "WIJKHUB_KAFKA_CREDENTIALS_DIR is not set"),
        ({"kafka_security_protocol": "TLS"}, "must be one of ('SASL_SSL', 'SSL', 'PLAINTEXT')"),
    ],
)
def test_a_worker_missing_a_secret_refuses_to_start_with_one_line(settings, change, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        build_app(settings.with_(**change))


def test_plaintext_is_a_choice_and_a_warning(settings):
    kafka._warn_plaintext.cache_clear()  # once per process and address
    with capture_logs() as logs:
        build_app(settings.with_(kafka_security_protocol="PLAINTEXT",
                                 district_table=str(DISTRICT_FIXTURE)))  # fmt: skip
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert warning["event"].startswith("kafka without TLS or authentication")


def test_a_worker_collects_garbage_less_often_and_skips_what_it_built_at_start():
    """``WIJKHUB_GC_YOUNG_OBJECTS``: issue 19 measured 22 % more events/s with 50,000."""
    import gc

    from wijkhub.worker import tune_gc

    assert Settings.from_env({}).gc_young_objects == 50_000
    assert Settings.from_env({"WIJKHUB_GC_YOUNG_OBJECTS": "700"}).gc_young_objects == 700
    with pytest.raises(SettingsError, match="WIJKHUB_GC_YOUNG_OBJECTS must be at least 1"):
        Settings.from_env({"WIJKHUB_GC_YOUNG_OBJECTS": "0"})  # 0 would switch the GC off
    before = gc.get_threshold()
    try:
        tune_gc(12_345)
        assert gc.get_threshold() == (12_345, 10, 10)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_workers_and_the_intake_compress_what_they_produce_with_zstd_unless_told_otherwise(
    settings,
):
    assert Settings.from_env({}).kafka_compression == "zstd"
    assert Settings.from_env({"WIJKHUB_KAFKA_COMPRESSION": "none"}).kafka_compression_type is None
    with pytest.raises(SettingsError, match="COMPRESSION must be one of zstd, gzip, none"):
        Settings.from_env({"WIJKHUB_KAFKA_COMPRESSION": "lz4"})  # the sinks cannot read it
    assert build_app(settings).conf.producer_compression_type == "zstd"
    plain = settings.with_(kafka_compression="none")
    assert build_app(plain).conf.producer_compression_type is None
    # the intake's producer too
    from wijkhub.connectors.intake import producer_options

    local = settings.with_(kafka_security_protocol="PLAINTEXT")  # no intake credential here
    assert producer_options(local, "population")["compression_type"] == "zstd"
    local = local.with_(kafka_compression="none")
    assert producer_options(local, "population")["compression_type"] is None
    # every client can read them: without its codec, aiokafka or kafka-python fails a fetch
    import aiokafka.codec
    import kafka.codec

    assert aiokafka.codec.has_zstd() and kafka.codec.has_zstd()
