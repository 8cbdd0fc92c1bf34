"""Source authority: a source's token lets it emit its own event kinds, nothing else.

An ``income`` token posting ``consent_changed`` would grant consent; one posting
``case_opened`` would make a team "involved". Such records, and records dated
further in the future than the tolerance, become dead letters with their own code.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from wijkhub.connectors.canonical import KINDS, SOURCE_KINDS
from wijkhub.connectors.formats import SOURCES
from wijkhub.connectors.intake import Intake
from wijkhub.settings import Settings

from builders import FakeKafka

SETTINGS = Settings(pseudonym_key=b"p" * 32, dead_letter_key=b"d" * 32)
BSN = "111222333"
TEAMS_KINDS = {
    "consent_changed": {"purpose": "wmo-regie", "consent_domain": "care", "consent": "given"},
    "person_registered": {"postcode": "1011AB", "huisnummer": "1"},
    "case_opened": {"case_id": "C-1", "team": "Wijkteam Noord", "case_type": "jeugd"},
}


def ingest(source: str, *records: dict, settings: Settings = SETTINGS) -> tuple:
    """(report, dead-letter reason codes) of one JSON input through the real Intake."""
    kafka = FakeKafka()
    intake = Intake(settings, source, kafka=kafka)
    report = intake.ingest(json.dumps(list(records)).encode(), "test")
    codes = [r["headers"]["dl_reason_code"].decode() for r in kafka.sent
             if r["topic"] == "dlq.ingest"]  # fmt: skip
    return report, codes


def record(kind: str, day: str = "2026-05-01", **fields: str) -> dict:
    return {"kind": kind, "message_id": f"m-{kind}-{day}", "occurred_at": day, "bsn": BSN,
            **TEAMS_KINDS.get(kind, {}), **fields}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(TEAMS_KINDS))
def test_an_income_record_of_a_kind_income_may_not_send_is_dead_lettered(kind):
    report, codes = ingest("income", record(kind))
    assert (report.read, report.events, report.dead_lettered) == (1, 0, 1)
    assert codes == ["kind-not-allowed"]
    assert report.dead_letter_reasons == {"kind not allowed for this source": 1}


@pytest.mark.parametrize("kind", ["consent_changed", "case_opened"])
def test_the_teams_source_may_send_consent_and_cases(kind):
    report, codes = ingest("teams", record(kind))
    assert (report.events, codes) == (1, [])


def test_population_is_the_one_source_that_registers_persons():
    assert ingest("population", record("person_registered"))[0].events == 1
    assert ingest("teams", record("person_registered"))[1] == ["kind-not-allowed"]


def test_an_event_dated_beyond_the_tolerance_is_dead_lettered_as_future_dated():
    ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).date().isoformat()
    report, codes = ingest("income", record("benefit_changed", ahead, benefit_id="B",
                                            benefit_type="bijstand", change="granted"))  # fmt: skip
    assert (report.events, codes) == (0, ["future-dated"])


def test_a_consent_dated_in_the_future_is_refused_and_tomorrow_is_within_tolerance():
    ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).date().isoformat()
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    report, codes = ingest("teams", record("consent_changed", ahead),
                           record("consent_changed", tomorrow))  # fmt: skip
    assert (report.read, report.events, codes) == (2, 1, ["future-dated"])


def test_the_tolerance_is_a_setting():
    ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(days=5)).date().isoformat()
    lenient = SETTINGS.with_(future_tolerance_days=10)
    assert ingest("teams", record("consent_changed", ahead), settings=lenient)[0].events == 1
    env = Settings.from_env({"WIJKHUB_FUTURE_TOLERANCE_DAYS": "3"})
    assert env.future_tolerance_days == 3
    assert Settings.from_env(env.to_env()).future_tolerance_days == 3
    assert Settings.from_env({}).future_tolerance_days == 1


def test_the_table_covers_every_source_and_every_kind():
    assert set(SOURCE_KINDS) == set(SOURCES)
    allowed = set().union(*SOURCE_KINDS.values())
    assert allowed == set(KINDS)
    assert {SOURCES[s] for s in SOURCES if SOURCES[s]} <= allowed
    for source, default in SOURCES.items():
        assert default is None or default in SOURCE_KINDS[source]


def test_the_worker_refuses_a_kind_on_another_domains_raw_topic(tmp_path):
    """Past the intake: a principal that writes raw.income directly (the ACLs let it write
    no other topic) still cannot post a consent or a registration there."""
    from wijkhub.connectors.canonical import to_raw_event
    from wijkhub.connectors.identity import Pseudonymiser
    from wijkhub.schemas.registry import RAW_EVENT, Catalog
    from wijkhub.streams.harness import Harness, build_stages

    from builders import offline_worker_settings

    catalog, now = Catalog(), dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    pseudonymiser = Pseudonymiser(b"p" * 32)
    record = {"kind": "consent_changed", "message_id": "c-1", "occurred_at": "2026-05-01",
              "bsn": BSN, **TEAMS_KINDS["consent_changed"]}  # fmt: skip
    domain, key, event = to_raw_event(record, "teams", pseudonymiser, "0363", now)
    assert domain.value == "teams"
    forged = {**event, "envelope": {**event["envelope"], "domain": "income"}}
    harness = Harness(build_stages(offline_worker_settings(tmp_path), catalog))
    for value in (catalog.encode(RAW_EVENT, event), catalog.encode(RAW_EVENT, forged)):
        harness.feed("raw.income", key.encode(), value)  # both on the income topic
    harness.run()
    letters = harness.records("dlq.streams")
    assert [dict(o.headers)["dl_reason_code"] for o in letters] == [
        b"kind-not-allowed-on-topic", b"kind-not-allowed-on-topic"]  # fmt: skip
    assert harness.records("by-address") == []  # nothing of either reached the linking
