"""Erasure of a person (AVG art. 17): the request the stages apply, and what the command does
beside Kafka (the file drop).

``wijkhub erase`` pseudonymises a BSN at the command (it never leaves the process in
clear), or takes a ``person_ref``, and writes one :func:`request` to ``erasure-requests``,
keyed by the person like the raw topics. The person stage forgets every fact of the
person received up to that moment and withdraws what it sent; the address stage drops
their residence, match features and the signals matched to them; the household stage
rewrites the views and removes (tombstones) the alerts that rested on their facts. A copy
of an erased fact delivered again later is refused. docs/privacy/erasure.md gives the
guaranteed time until erased data is unreadable everywhere.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wijkhub.connectors.filedrop import PURGED


def request(
    person_ref: str, requested_by: str, case_ref: str, now: dt.datetime | None = None
) -> dict[str, Any]:
    """An Erasure record: every fact received up to ``now`` is erased."""
    at = now or dt.datetime.now(dt.UTC)
    return {"erasure_id": str(uuid.uuid4()), "person_ref": person_ref, "erased_before": at,
            "requested_at": at, "requested_by": requested_by, "case_ref": case_ref}  # fmt: skip


@dataclass(frozen=True)
class Purged:
    """Source files removed from the file drop because they held the person's BSN."""

    files: tuple[Path, ...]


def purge_files(root: Path, bsn: str) -> Purged:
    """Remove every processed or failed source file in the file drop that holds ``bsn``.

    A source file holds clear BSNs of many people; the source system keeps the original,
    so the hub's copy of a file naming an erased person goes whole (the file-drop purge
    would remove it after its term anyway). Files waiting in ``incoming`` are not touched:
    they are not yet processed, and the erasure covers facts received before it.
    """
    needle = bsn.encode()
    found = []
    for folder in PURGED:
        for path in sorted(root.glob(f"*/{folder}/**/*")):
            if path.is_file() and needle in path.read_bytes():
                path.unlink()
                found.append(path)
    return Purged(tuple(found))
