"""File drop: a watched directory per source.

Layout under the drop root, per source (``ijw``, ``income``, …)::

    <root>/<source>/incoming/   systems put files here (write as .part or a dot-name, then rename)
    <root>/<source>/processed/  every file whose records all became events or dead letters,
                                each acknowledged by Kafka
    <root>/<source>/failed/     files that cannot be ingested as they are (unreadable, a symbolic
                                link, over WIJKHUB_FILEDROP_MAX_BYTES, or a record
                                Kafka refuses for good), with <name>.reason.txt; retry by moving
                                them back to incoming/

Files in processed/ and failed/ still hold what the source sent, clear BSNs
included, so the drop purges them: once an hour the watch loop deletes those
moved there more than WIJKHUB_FILEDROP_PURGE_DAYS ago (the ``source-files``
data class in streams/topics.py), with a log line and
``wijkhub_filedrop_purged_total``. The age counts from the move (the drop
sets the file's modification time then), not from when the source wrote it.

A file is moved to processed/ only after Kafka acknowledged every record it
produced (events and dead letters). Small files of one source (an iJw/iWmo
message is a file of its own) are ingested together, up to ``BATCH_FILES`` or
``BATCH_BYTES``, and acknowledged together: one wait for Kafka per batch, not
per message. While Kafka is away the file stays in
incoming/ and every scan retries it; a crash in between leaves it there too.
Ingesting a file again is harmless: event ids derive from source message ids
and dead-letter keys from the file's digest and the record's index, so a
re-delivered identical file adds no duplicate for readers that deduplicate.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from wijkhub.connectors.formats import SOURCES
from wijkhub.connectors.intake import Intake, IntakeReport, retriable
from wijkhub.logs import get as get_logger
from wijkhub.metrics import Metrics
from wijkhub.streams.topics import SOURCE_FILES

log = get_logger("wijkhub.filedrop")
MAX_FILE_BYTES = 64 * 1024 * 1024
DAY_SECONDS = 24 * 60 * 60
PURGED = ("processed", "failed")  # incoming/ is the source's: never purged
PURGE_EVERY_SECONDS = 3600.0  # a file is gone at most this long after its term
REASON = ".reason.txt"  # beside a failed file: why; purged with it
BATCH_FILES = 200  # files of one source acknowledged together
BATCH_BYTES = 8 * 1024 * 1024  # ... as long as they are this small together


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


def batches(paths: list[Path]) -> Iterator[list[Path]]:
    """The files in their order, in runs of at most BATCH_FILES files and BATCH_BYTES (a
    larger file, or one that cannot be sized, on its own)."""
    run: list[Path] = []
    size = 0
    for path in paths:
        try:
            n = path.lstat().st_size
        except OSError:
            n = BATCH_BYTES  # gone or unreadable: alone, where process() says why
        if run and (len(run) == BATCH_FILES or size + n > BATCH_BYTES):
            yield run
            run, size = [], 0
        run.append(path)
        size += n
    if run:
        yield run


def expired(folder: Path, before: float) -> list[Path]:
    """The files (and links, by their own time) in ``folder`` last modified before
    ``before``; a directory someone put there is left alone."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir()
        if (p.is_symlink() or p.is_file()) and p.lstat().st_mtime < before
    )  # fmt: skip


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
    purge_after_days: int = SOURCE_FILES.default_days
    metrics: Metrics | None = None
    clock: Callable[[], float] = time.time
    _intakes: dict[str, Intake] = field(default_factory=dict)
    _next_purge: float = 0.0

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

    def _intake(self, source: str) -> Intake:
        return self._intakes.get(source) or self._intakes.setdefault(
            source, self.intake_for(source)
        )

    def process_many(self, source: str, paths: list[Path]) -> list[IntakeReport]:
        """Ingest several files of one source, acknowledged together; each is moved to
        processed/ after. While Kafka is away every file stays in incoming/. Any other
        failure (a file refused, a record Kafka refuses for good) is one file's: each is
        then processed on its own, which fails, keeps or ingests it as it would alone."""
        if len(paths) == 1:
            return [r] if (r := self.process(source, paths[0])) is not None else []
        try:
            inputs = [(read_regular(p, self.max_bytes), p.name) for p in paths]
            reports = self._intake(source).ingest_many(inputs)
        except Exception as exc:
            if isinstance(exc, RefusedFile) or not retriable(exc):
                return [r for p in paths if (r := self.process(source, p)) is not None]
            log.warning("files kept for retry", source=source, files=len(paths),
                        error=type(exc).__name__)  # fmt: skip
            return []
        for path, report in zip(paths, reports, strict=True):
            self._move(path, _unique(self.root / source / "processed" / path.name))
            log.info("file processed", file=path.name, **report.as_dict())
        return reports

    def process(self, source: str, path: Path) -> IntakeReport | None:
        """Ingest one file; the report once it is in processed/, else None (kept or failed)."""
        try:
            intake = self._intake(source)
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
            self._move(path, failed)
            failed.with_name(failed.name + REASON).write_text(f"{type(exc).__name__}: {exc}\n")
            log.error("file failed", source=source, file=path.name, error=type(exc).__name__)
            return None
        self._move(path, _unique(self.root / source / "processed" / path.name))
        log.info("file processed", file=path.name, **report.as_dict())
        return report

    def _move(self, path: Path, target: Path) -> None:
        """Move a file out of incoming/ and start its purge term now (a link's own time:
        the file it points at is not the drop's to touch)."""
        os.replace(path, target)
        now = self.clock()
        os.utime(target, (now, now), follow_symlinks=False)

    def purge(self) -> int:
        """Delete the files in processed/ and failed/ moved there more than
        ``purge_after_days`` ago; how many were deleted."""
        before = self.clock() - self.purge_after_days * DAY_SECONDS
        total = 0
        for source in self.sources:
            for folder in PURGED:
                due = expired(self.root / source / folder, before)
                old = [p for p in due if not p.name.endswith(REASON)]
                for path in old:
                    path.unlink(missing_ok=True)
                for reason in (p for p in due if p.name.endswith(REASON)):
                    if not reason.with_name(reason.name.removesuffix(REASON)).exists():
                        reason.unlink()  # its file is gone (purged, or moved back to retry)
                if old:
                    log.info("source files purged", source=source, folder=folder,
                             files=len(old), older_than_days=self.purge_after_days)  # fmt: skip
                    if self.metrics:
                        self.metrics.filedrop_purged.labels(source, folder).inc(len(old))
                total += len(old)
        return total

    def purge_if_due(self) -> None:
        """Purge at most once per PURGE_EVERY_SECONDS (the loop polls every few seconds)."""
        if self.clock() >= self._next_purge:
            self.purge()
            self._next_purge = self.clock() + PURGE_EVERY_SECONDS

    def scan_once(self) -> list[IntakeReport]:
        reports = []
        for source in self.sources:
            for batch in batches(self.pending(source)):
                reports += self.process_many(source, batch)
        return reports

    def run(self, poll_seconds: float = 2.0, stop: Callable[[], bool] = lambda: False) -> None:
        self.prepare()
        while not stop():
            self.scan_once()
            self.purge_if_due()
            time.sleep(poll_seconds)

    def close(self) -> None:
        for intake in self._intakes.values():
            intake.close()
