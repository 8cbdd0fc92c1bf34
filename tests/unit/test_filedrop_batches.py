"""The file drop acknowledges small files of one source together (issue 19): an iJw/iWmo
message is a file of its own, and one wait for Kafka per message bounded the XML intake.
Batched or not, each file gives the same events and dead letters, and is moved only after
Kafka acknowledged them; a failure that is one file's stays that file's."""

from __future__ import annotations

from pathlib import Path

from wijkhub.connectors import filedrop
from wijkhub.connectors.filedrop import FileDrop
from wijkhub.connectors.intake import Intake
from wijkhub.settings import Settings

from builders import FakeKafka

SETTINGS = Settings(pseudonym_key=b"p" * 32, dead_letter_key=b"d" * 32)
SAMPLES = Path(filedrop.__file__).parent / "samples"
MESSAGES = {name: (SAMPLES / name).read_bytes()
            for name in ("iwmo.wmo301.xml", "iwmo.wmo305.xml", "iwmo.wmo307.xml",
                         "iwmo.wmo315.xml")}  # fmt: skip


def drop(root: Path, kafka: FakeKafka) -> FileDrop:
    fd = FileDrop(root, lambda s: Intake(SETTINGS, s, kafka=kafka), sources=("iwmo",))
    fd.prepare()
    for name, data in MESSAGES.items():
        (root / "iwmo" / "incoming" / name).write_bytes(data)
    return fd


def folder(root: Path, name: str) -> list[str]:
    return sorted(p.name for p in (root / "iwmo" / name).iterdir())


def test_messages_are_acknowledged_together_and_each_gives_what_it_gives_alone(tmp_path):
    alone = FakeKafka()
    singles = [Intake(SETTINGS, "iwmo", kafka=alone).ingest(data, name)
               for name, data in MESSAGES.items()]  # fmt: skip
    kafka = FakeKafka()
    fd = drop(tmp_path, kafka)
    reports = fd.scan_once()
    assert kafka.flushes == 1
    assert [r.as_dict() for r in reports] == [r.as_dict() for r in singles]
    assert reports[-1].dead_lettered == 1  # wmo315: its BSN fails the elfproef
    assert sorted((r["topic"], r["key"]) for r in kafka.sent) == sorted(
        (r["topic"], r["key"]) for r in alone.sent
    )
    assert (folder(tmp_path, "incoming"), folder(tmp_path, "processed")) == ([], sorted(MESSAGES))


def test_while_kafka_is_away_every_message_of_the_batch_stays_in_incoming(tmp_path):
    kafka = FakeKafka(away=True)
    fd = drop(tmp_path, kafka)
    assert fd.scan_once() == []
    assert kafka.flushes == 1  # one wait for the whole batch, not one per message
    assert (folder(tmp_path, "incoming"), folder(tmp_path, "processed")) == (sorted(MESSAGES), [])


def test_a_refused_file_in_a_batch_fails_alone_and_the_others_are_ingested(tmp_path):
    kafka = FakeKafka()
    fd = drop(tmp_path, kafka)
    (tmp_path / "iwmo" / "incoming" / "zz-link.xml").symlink_to(SAMPLES / "iwmo.wmo305.xml")
    reports = fd.scan_once()
    assert len(reports) == len(MESSAGES)
    assert folder(tmp_path, "processed") == sorted(MESSAGES)
    assert folder(tmp_path, "failed") == ["zz-link.xml", "zz-link.xml.reason.txt"]


def test_batches_keep_the_order_and_bound_files_and_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(filedrop, "BATCH_FILES", 3)
    monkeypatch.setattr(filedrop, "BATCH_BYTES", 100)
    paths = []
    for n, size in enumerate([10, 10, 10, 10, 95, 10, 500, 10]):
        paths.append(tmp_path / f"{n}.xml")
        paths[-1].write_bytes(b"x" * size)
    runs = [[p.name for p in run] for run in filedrop.batches(paths)]
    assert runs == [["0.xml", "1.xml", "2.xml"], ["3.xml"], ["4.xml"], ["5.xml"], ["6.xml"],
                    ["7.xml"]]  # fmt: skip
