"""What every format parser yields: an item per record, with its original bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wijkhub.logs import mask_bsn_like


def safe_reason(text: str, limit: int = 300) -> str:
    """A reason fit for a dead-letter header and a log line: no BSN-like number, bounded."""
    return mask_bsn_like(text)[:limit]


@dataclass(frozen=True)
class Item:
    """One record as parsed: a source record, or the reason it is not one.

    ``original`` is the exact bytes the record came from (a CSV line, a JSON
    object, a whole XML message), so a dead letter can keep them.
    ``position`` says where: file + line, or message + product number.
    """

    original: bytes
    position: str
    record: dict[str, Any] | None = None
    error: str | None = None
