"""What a worker says at start-up, before it touches Kafka."""

from structlog.testing import capture_logs

from wijkhub.broker import DISTRICT_FIXTURE
from wijkhub.settings import Settings
from wijkhub.streams.app import build_app


def test_a_worker_without_a_district_table_warns_that_alerts_go_to_the_fallback_team(tmp_path):
    with capture_logs() as logs:
        build_app(Settings(data_dir=tmp_path, bootstrap_servers="127.0.0.1:1"))
    [warning] = [e for e in logs if e["log_level"] == "warning"]
    assert warning["event"] == "no district table: every alert goes to the fallback team"
    assert warning["setting"] == "WIJKHUB_DISTRICT_TABLE"
    with capture_logs() as logs:
        build_app(
            Settings(
                data_dir=tmp_path,
                bootstrap_servers="127.0.0.1:1",
                district_table=str(DISTRICT_FIXTURE),
            )
        )
    assert [e for e in logs if e["log_level"] == "warning"] == []
