"""File drop: a watched directory per source.

Layout under the drop root, per source (``ijw``, ``income``, …)::

    <root>/<source>/incoming/   systems put files here (write as .part or a dot-name, then rename)
    <root>/<source>/processed/  every file whose records all became events or dead letters,
                                each acknowledged by Kafka
    <root>/<source>/failed/     files that cannot be ingested as they are (unreadable, a symbolic
                                link, over WIJKHUB_FILEDROP_MAX_BYTES, or a record
                                Kafka refuses for good), with <name>.reason.txt; retry by moving
                                them back to incoming/

A file is moved to processed/ only after Kafka acknowledged every record it
produced (events and dead letters). While Kafka is away the file stays in
incoming/ and every scan retries it; a crash in between leaves it there too.
Ingesting a file again is harmless: event ids derive from source message ids
and dead-letter keys from the file's digest and the record's index, so a
re-delivered identical file adds no duplicate for readers that deduplicate.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wijkhub.connectors.formats import SOURCES
from wijkhub.connectors.intake import Intake, IntakeReport, retriable
from wijkhub.logs import get as get_logger

log = get_logger("wijkhub.filedrop")
MAX_FILE_BYTES = 64 * 1024 * 1024


class RefusedFile(ValueError):
    """A file the drop does not read at all (a symbolic link, not a regular file, too big):
    it goes to failed/ with the reason, and nothing of it reaches Kafka."""


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``. A symbolic link is refused
    (whoever may write incoming/ must not make the hub read any other file it can), and
    so is a file over the limit (read no further than the limit, so it cannot fill memory)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        if path.is_symlink():
            raise RefusedFile("a symbolic link: only regular files are ingested") from None
        raise
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise RefusedFile("not a regular file")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RefusedFile(f"larger than {max_bytes} bytes (WIJKHUB_FILEDROP_MAX_BYTES)")
    return data


def _unique(target: Path) -> Path:
    if not target.exists():
        return target
    return target.with_name(f"{target.stem}.{time.time_ns()}{target.suffix}")


@dataclass
class FileDrop:
    root: Path
    intake_for: Callable[[str], Intake]
    sources: tuple[str, ...] = tuple(SOURCES)
    max_bytes: int = MAX_FILE_BYTES
    _intakes: dict[str, Intake] = field(default_factory=dict)

    def prepare(self) -> None:
        for source in self.sources:
            for sub in ("incoming", "processed", "failed"):
                (self.root / source / sub).mkdir(parents=True, exist_ok=True)

    def pending(self, source: str) -> list[Path]:
        incoming = self.root / source / "incoming"
        files = [
            p for p in incoming.iterdir()
            if (p.is_file() or p.is_symlink())  # a link is listed, to be refused, not ignored
            and not p.name.startswith(".") and not p.name.endswith(".part")
        ]  # fmt: skip
        return sorted(files, key=lambda p: (p.lstat().st_mtime, p.name))

    def process(self, source: str, path: Path) -> IntakeReport | None:
        """Ingest one file; the report once it is in processed/, else None (kept or failed)."""
        try:
            intake = self._intakes.get(source) or self._intakes.setdefault(
                source, self.intake_for(source)
            )
            report = intake.ingest(read_regular(path, self.max_bytes), path.name)
        except Exception as exc:
            if not isinstance(exc, RefusedFile) and retriable(
                exc
            ):  # Kafka away for now: leave it in incoming/ for the next scan
                log.warning("file kept for retry", source=source, file=path.name,
                            error=type(exc).__name__)  # fmt: skip
                return None
            # Disk error, a record Kafka refuses for good: keep the file aside, say why
            failed = _unique(self.root / source / "failed" / path.name)
            os.replace(path, failed)
            failed.with_name(failed.name + ".reason.txt").write_text(
                f"{type(exc).__name__}: {exc}\n"
            )
            log.error("file failed", source=source, file=path.name, error=type(exc).__name__)
            return None
        os.replace(path, _unique(self.root / source / "processed" / path.name))
        log.info("file processed", file=path.name, **report.as_dict())
        return report

    def scan_once(self) -> list[IntakeReport]:
        reports = []
        for source in self.sources:
            for path in self.pending(source):
                report = self.process(source, path)
                if report is not None:
                    reports.append(report)
        return reports

    def run(self, poll_seconds: float = 2.0, stop: Callable[[], bool] = lambda: False) -> None:
        self.prepare()
        while not stop():
            self.scan_once()
            time.sleep(poll_seconds)

    def close(self) -> None:
        for intake in self._intakes.values():
            intake.close()
