"""File drop: a watched directory per source.

Layout under the drop root, per source (``ijw``, ``income``, …)::

    <root>/<source>/incoming/   systems put files here (write as .part or a dot-name, then rename)
    <root>/<source>/processed/  every file whose records all became events or dead letters
    <root>/<source>/failed/     files Kafka did not acknowledge, with <name>.reason.txt; retry by
                                moving them back to incoming/

A file is moved only after Kafka acknowledged everything it produced, so a
crash in between leaves it in incoming/ and it is processed again: the event
ids are derived from source message ids, so a re-delivered identical file
creates no duplicate events downstream.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wijkhub.connectors.formats import SOURCES
from wijkhub.connectors.intake import Intake, IntakeReport
from wijkhub.logs import get as get_logger

log = get_logger("wijkhub.filedrop")


def _unique(target: Path) -> Path:
    if not target.exists():
        return target
    return target.with_name(f"{target.stem}.{time.time_ns()}{target.suffix}")


@dataclass
class FileDrop:
    root: Path
    intake_for: Callable[[str], Intake]
    sources: tuple[str, ...] = tuple(SOURCES)
    _intakes: dict[str, Intake] = field(default_factory=dict)

    def prepare(self) -> None:
        for source in self.sources:
            for sub in ("incoming", "processed", "failed"):
                (self.root / source / sub).mkdir(parents=True, exist_ok=True)

    def pending(self, source: str) -> list[Path]:
        incoming = self.root / source / "incoming"
        files = [
            p for p in incoming.iterdir()
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".part")
        ]  # fmt: skip
        return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))

    def process(self, source: str, path: Path) -> IntakeReport | None:
        try:
            intake = self._intakes.get(source) or self._intakes.setdefault(
                source, self.intake_for(source)
            )
            report = intake.ingest(path.read_bytes(), path.name)
        except Exception as exc:  # Kafka down, disk error: keep the file, say why
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
