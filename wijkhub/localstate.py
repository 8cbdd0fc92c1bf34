"""The worker's local RocksDB stores: a cache of the tables' changelogs, on the worker's disk.

Why a compaction command: RocksDB deletes and overwrites by writing newer entries; the
older values stay in its files until RocksDB compacts them, at a time of its own choosing.
After an erasure (docs/privacy/erasure.md) the operator runs ``wijkhub state compact``
with the worker stopped: every store is flushed and compacted over its whole key range, so
that no file keeps a value the tables no longer hold. (A store can also simply be deleted:
the worker restores it from the changelogs, which compaction has cleaned by then.)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from rocksdict import Options, Rdict


class StateError(RuntimeError):
    """A store that cannot be opened (one line for the operator)."""


def stores(data_dir: Path) -> list[Path]:
    """Every table partition's RocksDB directory of the worker whose data dir is given
    (Faust keeps them as ``<table>-<partition>.db`` under its table dir)."""
    return sorted(p for p in (data_dir / "worker").glob("**/*.db") if p.is_dir())


def _open(path: Path) -> Rdict:
    try:
        return Rdict(str(path), Options(raw_mode=True))  # Faust's own mode: bytes as stored
    except Exception as exc:  # rocksdict raises a bare Exception for a held lock
        if "lock" in str(exc).lower():
            raise StateError(f"{path.name} is in use: stop the worker first") from None
        raise StateError(f"{path.name} cannot be opened: {exc}") from None


def compact(path: Path) -> None:
    """Flush and compact one store over its whole key range."""
    db = _open(path)
    try:
        db.flush()
        db.compact_range(None, None)
    finally:
        db.close()


def entries(path: Path) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) a store holds (for the privacy scan)."""
    db = _open(path)
    try:
        yield from db.items()
    finally:
        db.close()
