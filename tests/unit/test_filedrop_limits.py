"""The file drop reads regular files of bounded size only: a symbolic link (which would
let whoever writes incoming/ make the hub read any file it can) or a file over
WIJKHUB_FILEDROP_MAX_BYTES goes to failed/ unread, with the reason."""

from __future__ import annotations

from pathlib import Path

from wijkhub.connectors.filedrop import FileDrop
from wijkhub.connectors.intake import Intake
from wijkhub.settings import Settings

from builders import FakeKafka

SETTINGS = Settings(pseudonym_key=b"p" * 32, dead_letter_key=b"d" * 32)
CSV = (
    b"benefit_id;benefit_type;change;occurred_at;reason;bsn\n"
    b"B-1;bijstand;granted;2026-05-01;;111222333\n"
)


def drop(root: Path, kafka: FakeKafka, max_bytes: int = 1024) -> FileDrop:
    fd = FileDrop(root, lambda s: Intake(SETTINGS, s, kafka=kafka), sources=("income",),
                  max_bytes=max_bytes)  # fmt: skip
    fd.prepare()
    return fd


def test_a_symbolic_link_is_refused_unread(tmp_path):
    secret = tmp_path / "elsewhere.csv"
    secret.write_bytes(CSV)
    kafka = FakeKafka()
    fd = drop(tmp_path / "drop", kafka)
    (tmp_path / "drop" / "income" / "incoming" / "link.csv").symlink_to(secret)
    assert fd.scan_once() == []
    assert kafka.sent == []
    failed = tmp_path / "drop" / "income" / "failed"
    assert (failed / "link.csv").is_symlink()
    assert "symbolic link" in (failed / "link.csv.reason.txt").read_text()
    assert secret.read_bytes() == CSV


def test_a_file_over_the_limit_is_refused_and_one_within_is_ingested(tmp_path):
    kafka = FakeKafka()
    fd = drop(tmp_path, kafka, max_bytes=len(CSV))
    incoming = tmp_path / "income" / "incoming"
    (incoming / "big.csv").write_bytes(CSV + b"B-2;bijstand;ended;2026-05-02;;111222333\n")
    (incoming / "ok.csv").write_bytes(CSV)
    [report] = fd.scan_once()
    assert (report.read, report.events) == (1, 1) and len(kafka.sent) == 1
    assert (tmp_path / "income" / "processed" / "ok.csv").exists()
    reason = (tmp_path / "income" / "failed" / "big.csv.reason.txt").read_text()
    assert "larger than" in reason


def test_the_file_size_limit_is_a_setting():
    s = Settings.from_env({"WIJKHUB_FILEDROP_MAX_BYTES": "2048"})
    assert s.filedrop_max_bytes == 2048
    assert Settings.from_env(s.to_env()).filedrop_max_bytes == 2048
    assert Settings.from_env({}).filedrop_max_bytes == 64 * 1024 * 1024
