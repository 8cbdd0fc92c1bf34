"""Dead-letter keys and Kafka acknowledgements, with a recording producer instead of Kafka.

An input ingested again (a retry, a re-run after a kill) must give its dead
letters the same keys, so a reader taking the latest per key sees each bad
record once; a key is an HMAC of the record's place, never a hash of the row.
A dropped file moves to processed/ only when every record was acknowledged.
The same on the real broker: tests/integration/test_crash_safe_intake.py.
"""

from __future__ import annotations

import hashlib
import re
from collections import namedtuple
from collections.abc import Callable
from pathlib import Path

import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from kafka.future import Future

from wijkhub.connectors.deadletter import distinct_count, letter_key
from wijkhub.connectors.filedrop import FileDrop
from wijkhub.connectors.intake import Intake, IntakeError
from wijkhub.connectors.relay import relay
from wijkhub.settings import Settings

SETTINGS = Settings(pseudonym_key=b"p" * 32, dead_letter_key=b"d" * 32)
BAD_DATE = b"B-2;bijstand;ended;2026-13-01;;111222333"
BAD_BSN = b"B-3;bijstand;granted;2026-05-01;;123456780"
CSV = b"\n".join([b"benefit_id;benefit_type;change;occurred_at;reason;bsn",
                  b"B-1;bijstand;sanction;2026-05-01;geen medewerking;111222333",
                  BAD_DATE, BAD_BSN])  # fmt: skip


class RecordingProducer:
    """KafkaProducer's send/flush/close. At flush each send's future is settled as
    ``outcome(n)`` says (n counts sends): None acknowledged, an exception failed,
    "pending" left undone; an exception from ``raise_on_send`` is raised by send."""

    def __init__(self, outcome: Callable[[int], object] = lambda n: None) -> None:
        self.outcome = outcome
        self.raise_on_send: Exception | None = None
        self.sent: list[tuple[str, bytes | None]] = []
        self._open: list[tuple[int, Future]] = []

    def send(self, topic: str, key: bytes | None = None, value=None, headers=None) -> Future:
        if self.raise_on_send is not None:
            raise self.raise_on_send
        future = Future()
        self._open.append((len(self.sent), future))
        self.sent.append((topic, key))
        return future

    def flush(self, timeout: float | None = None) -> None:
        for n, future in self._open:
            outcome = self.outcome(n)
            if outcome is None:
                future.success(None)
            elif isinstance(outcome, Exception):
                future.failure(outcome)
        self._open = []

    def close(self) -> None:
        pass

    def letters(self, since: int = 0) -> list[bytes]:
        return [key for topic, key in self.sent[since:] if topic == "dlq.ingest" and key]


def intake(producer: RecordingProducer, source: str = "income") -> Intake:
    return Intake(SETTINGS, source, kafka=producer)  # type: ignore[arg-type]


def test_an_input_ingested_again_gives_its_dead_letters_the_same_keys():
    kafka = RecordingProducer()
    first = intake(kafka).ingest(CSV, "uitkering.csv")
    sent = len(kafka.sent)
    again = intake(kafka).ingest(CSV, "renamed-copy.csv")  # same bytes, other name
    assert (first.dead_lettered, again.dead_lettered) == (2, 2)
    assert kafka.letters(sent) == kafka.letters()[:2]
    assert again.event_ids == first.event_ids
    assert distinct_count(kafka.letters()) == 2
    assert [r["key"] for r in again.rejected] == [k.decode() for k in kafka.letters(sent)]

    changed = CSV.replace(b"geen medewerking", b"geen medewerking.")  # another input
    before, old = len(kafka.sent), set(kafka.letters())
    intake(kafka).ingest(changed, "uitkering.csv")
    assert distinct_count(kafka.letters()) == 4
    assert not set(kafka.letters(before)) & old


def test_a_dead_letter_key_is_a_keyed_mac_of_the_place_not_a_hash_of_the_row():
    kafka = RecordingProducer()
    intake(kafka).ingest(CSV, "uitkering.csv")
    for key in kafka.letters():
        assert re.fullmatch(rb"DL-[a-z2-7]{32}", key)  # base32: no 9-digit run to mask
        assert b"111222333" not in key and b"123456780" not in key
    bare = {hashlib.sha256(row).hexdigest()[:32].encode() for row in (BAD_DATE, BAD_BSN)}
    assert not bare & {k[3:] for k in kafka.letters()}
    place = "sha256:abc#1"
    assert letter_key(b"d" * 32, "income", place) == letter_key(b"d" * 32, "income", place)
    others = {letter_key(b"e" * 32, "income", place), letter_key(b"d" * 32, "teams", place),
              letter_key(b"d" * 32, "income", "sha256:abc#2")}  # fmt: skip
    assert letter_key(b"d" * 32, "income", place) not in others and len(others) == 3


def test_distinct_count_takes_each_key_once_and_each_unkeyed_letter_of_old():
    assert distinct_count([b"DL-a", b"DL-a", b"DL-b", b"income", b"income", None]) == 5


Record = namedtuple("Record", "topic partition offset value")


class OneBatchConsumer:
    def __init__(self, records: list[Record]) -> None:
        self.records = records

    def subscription(self) -> set[str]:
        return {"external"}

    def poll(self, timeout_ms: int, max_records: int) -> dict:
        records, self.records = self.records, []
        return {("external", 0): records} if records else {}

    def commit(self) -> None:
        pass


def test_relay_keys_a_dead_letter_by_topic_partition_offset_and_bytes():
    kafka = RecordingProducer()

    def run(records: list[Record]) -> list[bytes]:
        before = len(kafka.sent)
        relay(OneBatchConsumer(records), intake(kafka), "income", stop=lambda t: t.read > 0)
        return kafka.letters(before)

    bad = BAD_DATE.replace(b";", b",")
    header = b"benefit_id,benefit_type,change,occurred_at,reason,bsn\n"
    first = run([Record("external", 0, 7, header + bad), Record("external", 0, 8, b"")])
    assert len(set(first)) == 2
    assert run([Record("external", 0, 7, header + bad), Record("external", 0, 8, b"")]) == first
    # the topic was re-created, offsets start again: other bytes never reuse a key
    assert not set(run([Record("external", 0, 7, header + bad + b" ")])) & set(first)


def drop(tmp_path: Path, kafka: RecordingProducer) -> FileDrop:
    fd = FileDrop(tmp_path, lambda source: intake(kafka, source), sources=("income",))
    fd.prepare()
    (tmp_path / "income" / "incoming" / "uitkering.csv").write_bytes(CSV)
    return fd


def where(tmp_path: Path) -> dict[str, list[str]]:
    return {sub: sorted(p.name for p in (tmp_path / "income" / sub).iterdir())
            for sub in ("incoming", "processed", "failed")}  # fmt: skip


def test_a_file_is_processed_only_once_every_record_is_acknowledged(tmp_path):
    kafka = RecordingProducer()
    assert [r.read for r in drop(tmp_path, kafka).scan_once()] == [3]
    assert where(tmp_path) == {"incoming": [], "processed": ["uitkering.csv"], "failed": []}


@pytest.mark.parametrize(
    "unacked",
    [KafkaTimeoutError("broker away"), "pending"],
    ids=["send-failed-retriable", "never-acknowledged"],
)
def test_an_unacknowledged_record_keeps_the_file_in_incoming_and_the_next_scan_retries(
    tmp_path, unacked
):
    broken = {"on": True}
    kafka = RecordingProducer(lambda n: unacked if broken["on"] and n == 2 else None)
    fd = drop(tmp_path, kafka)
    assert fd.scan_once() == []  # the third record (a dead letter) was not acknowledged
    assert where(tmp_path) == {"incoming": ["uitkering.csv"], "processed": [], "failed": []}
    keys = kafka.letters()
    broken["on"] = False
    [report] = fd.scan_once()
    assert (report.events, report.dead_lettered) == (1, 2)
    assert where(tmp_path) == {"incoming": [], "processed": ["uitkering.csv"], "failed": []}
    assert distinct_count(kafka.letters()) == 2 and set(kafka.letters()) == set(keys)


def test_kafka_unreachable_at_send_keeps_the_file_in_incoming(tmp_path):
    kafka = RecordingProducer()
    kafka.raise_on_send = KafkaTimeoutError("Failed to update metadata after 60.0 secs.")
    fd = drop(tmp_path, kafka)
    assert fd.scan_once() == []
    assert where(tmp_path)["incoming"] == ["uitkering.csv"]
    kafka.raise_on_send = None
    assert len(fd.scan_once()) == 1 and where(tmp_path)["processed"] == ["uitkering.csv"]


def test_a_record_kafka_refuses_for_good_sends_the_file_to_failed_with_the_reason(tmp_path):
    kafka = RecordingProducer(lambda n: MessageSizeTooLargeError() if n == 0 else None)
    assert drop(tmp_path, kafka).scan_once() == []
    assert where(tmp_path) == {
        "incoming": [], "processed": [],
        "failed": ["uitkering.csv", "uitkering.csv.reason.txt"],
    }  # fmt: skip
    reason = (tmp_path / "income" / "failed" / "uitkering.csv.reason.txt").read_text()
    assert reason.startswith("IntakeError: 1 of 3 records were not acknowledged")


def test_intake_error_says_whether_a_retry_can_help():
    kafka = RecordingProducer(lambda n: MessageSizeTooLargeError() if n == 0 else None)
    with pytest.raises(IntakeError) as refused:
        intake(kafka).ingest(CSV, "f.csv")
    assert not refused.value.retriable
    kafka.outcome = lambda n: KafkaTimeoutError() if n % 2 else None
    with pytest.raises(IntakeError) as away:
        intake(kafka).ingest(CSV, "f.csv")
    assert away.value.retriable
