"""The file drop purges processed and failed source files after WIJKHUB_FILEDROP_PURGE_DAYS:
they hold clear BSNs. The term counts from the move out of incoming/, on the drop's clock."""

from __future__ import annotations

import os
from pathlib import Path

from structlog.testing import capture_logs

from wijkhub.connectors.filedrop import DAY_SECONDS, PURGE_EVERY_SECONDS, FileDrop
from wijkhub.connectors.intake import Intake
from wijkhub.metrics import Metrics
from wijkhub.settings import Settings
from wijkhub.streams.topics import SOURCE_FILES

from builders import FakeKafka

SETTINGS = Settings(pseudonym_key=b"p" * 32, dead_letter_key=b"d" * 32)
CSV = (
    b"benefit_id;benefit_type;change;occurred_at;reason;bsn\n"
    b"B-1;bijstand;granted;2026-05-01;;111222333\n"
)
START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def drop(root: Path, clock: Clock, metrics: Metrics | None = None) -> FileDrop:
    kafka = FakeKafka()
    fd = FileDrop(root, lambda s: Intake(SETTINGS, s, kafka=kafka), sources=("income",),
                  max_bytes=1024, purge_after_days=30, metrics=metrics, clock=clock)  # fmt: skip
    fd.prepare()
    return fd


def folder(root: Path, name: str) -> list[str]:
    return sorted(p.name for p in (root / "income" / name).iterdir())


def test_processed_and_failed_files_are_purged_after_their_term_from_the_move(tmp_path):
    clock, metrics = Clock(), Metrics()
    fd = drop(tmp_path, clock, metrics)
    incoming = tmp_path / "income" / "incoming"
    old = incoming / "written-long-ago.csv"
    old.write_bytes(CSV)
    os.utime(old, (START - 400 * DAY_SECONDS,) * 2)  # the source wrote it a year ago
    (incoming / "huge.csv").write_bytes(CSV * 100)  # over max_bytes: failed/
    fd.scan_once()
    assert folder(tmp_path, "processed") == ["written-long-ago.csv"]
    assert folder(tmp_path, "failed") == ["huge.csv", "huge.csv.reason.txt"]
    assert fd.purge() == 0  # the term runs from the move, not from the source's mtime

    clock.now += 30 * DAY_SECONDS - 1
    assert fd.purge() == 0
    clock.now += 2
    with capture_logs() as logs:
        assert fd.purge() == 2
    assert folder(tmp_path, "processed") == folder(tmp_path, "failed") == []
    assert folder(tmp_path, "incoming") == []
    purged = [e for e in logs if e["event"] == "source files purged"]
    assert sorted((e["folder"], e["files"]) for e in purged) == [("failed", 1), ("processed", 1)]
    assert all(e["older_than_days"] == 30 and "file" not in e for e in purged)
    sample = metrics.registry.get_sample_value
    labels = {"source": "income", "folder": "processed"}
    assert sample("wijkhub_filedrop_purged_total", labels) == 1


def test_incoming_files_and_directories_are_never_purged(tmp_path):
    clock = Clock()
    fd = drop(tmp_path, clock)
    waiting = tmp_path / "income" / "incoming" / "next.csv.part"
    waiting.write_bytes(CSV)
    kept = tmp_path / "income" / "processed" / "an-operators-folder"
    kept.mkdir()
    for path in (waiting, kept):
        os.utime(path, (START - 400 * DAY_SECONDS,) * 2)
    assert fd.purge() == 0
    assert waiting.exists() and kept.exists()


def test_a_refused_link_is_purged_by_its_own_age_and_its_target_left_alone(tmp_path):
    clock = Clock()
    target = tmp_path / "elsewhere.csv"
    target.write_bytes(CSV)
    os.utime(target, (START,) * 2)
    fd = drop(tmp_path / "drop", clock)
    (tmp_path / "drop" / "income" / "incoming" / "link.csv").symlink_to(target)
    fd.scan_once()
    assert (tmp_path / "drop" / "income" / "failed" / "link.csv").is_symlink()
    assert target.stat().st_mtime == START  # the move stamped the link, not its target
    clock.now += 31 * DAY_SECONDS
    assert fd.purge() == 1
    assert folder(tmp_path / "drop", "failed") == []
    assert target.read_bytes() == CSV


def test_a_reason_left_behind_by_a_retried_file_goes_too(tmp_path):
    clock = Clock()
    fd = drop(tmp_path, clock)
    (tmp_path / "income" / "incoming" / "huge.csv").write_bytes(CSV * 100)
    fd.scan_once()
    failed = tmp_path / "income" / "failed"
    os.replace(failed / "huge.csv", tmp_path / "income" / "incoming" / "retry.csv")
    clock.now += 31 * DAY_SECONDS
    assert fd.purge() == 0  # no source file purged, but its reason is gone
    assert folder(tmp_path, "failed") == []


def test_the_loop_purges_at_most_once_an_hour(tmp_path, monkeypatch):
    clock = Clock()
    fd = drop(tmp_path, clock)
    calls: list[float] = []
    monkeypatch.setattr(fd, "purge", lambda: calls.append(clock.now) or 0)
    for _ in range(3):
        fd.purge_if_due()
        clock.now += 60
    clock.now += PURGE_EVERY_SECONDS
    fd.purge_if_due()
    assert calls == [START, START + 180 + PURGE_EVERY_SECONDS]


def test_the_purge_term_is_the_source_files_data_class_setting():
    s = Settings.from_env({"WIJKHUB_FILEDROP_PURGE_DAYS": "7"})
    assert s.retention(SOURCE_FILES) == 7
    assert Settings().retention(SOURCE_FILES) == SOURCE_FILES.default_days == 30
