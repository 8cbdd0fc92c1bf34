"""Every file in connectors/samples/ gives what tests/shared_data.py says it must.

Offline, through the real Intake (parsers, canonical step, Avro encoding,
sealing) with a stand-in producer; the integration test sends the same files
through every intake path into Kafka and expects the same table.
"""

import pytest

from wijkhub.connectors.intake import Intake
from wijkhub.schemas.registry import RAW_EVENT, Catalog
from wijkhub.settings import Settings

from builders import FakeKafka
from shared_data import SAMPLE_EXPECTED as EXPECTED
from shared_data import SAMPLES

SETTINGS = Settings(pseudonym_key=b"p" * 32, dead_letter_key=b"d" * 32)
CATALOG = Catalog()


def test_every_sample_file_has_its_expectations_and_every_tabular_one_a_dead_letter():
    assert sorted(p.name for p in SAMPLES.iterdir() if p.is_file()) == sorted(EXPECTED)
    for name, (_source, events, reasons) in EXPECTED.items():
        if not name.endswith(".xml"):  # an XML file is one message: accepted or refused whole
            assert events and reasons, name


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_sample_gives_the_expected_events_and_dead_letters(name):
    source, event_types, reasons = EXPECTED[name]
    kafka = FakeKafka()
    report = Intake(SETTINGS, source, kafka=kafka, catalog=CATALOG).ingest(
        (SAMPLES / name).read_bytes(), name
    )
    events = [r for r in kafka.sent if r["topic"].startswith("raw.")]
    dead = [r for r in kafka.sent if r["topic"] == "dlq.ingest"]
    assert len(events) + len(dead) == len(kafka.sent) == report.read
    types = sorted(CATALOG.decode(r["value"], RAW_EVENT)["payload"][0].rsplit(".", 1)[1]
                   for r in events)  # fmt: skip
    assert types == event_types
    got = sorted(r["headers"]["dl_reason"].decode() for r in dead)
    assert len(got) == len(reasons)
    assert all(g.startswith(r) for g, r in zip(got, reasons, strict=True)), got
