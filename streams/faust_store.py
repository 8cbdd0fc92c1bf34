"""A stage table's local RocksDB store, read and written a batch at a time.

Faust's own store API reads and writes one key at a time, and picks the key's partition
from the current event (which no batch task has). A batch's keys are read here with one
multi-get per partition, and a batch's entries are written with the changelog offset
they reach in one RocksDB write batch per partition, as Faust's changelog recovery
writes them (``Store.apply_changelog_batch``): one write-ahead-log append per partition
instead of one per key, and the entries and the offset the store has reached are
written together or not at all.

Keys and values go in as the changelog carries them (the record's key and the entry's
JSON bytes), which is what Faust's recovery writes too: a store restored from its
changelog and one written here hold the same bytes.

Faust private APIs used, checked against faust-streaming 0.15.3 (pinned in
pyproject.toml), and why:
- ``Table.data``: the table's store (made at its first use);
- ``rocksdb.Store._db_for_partition``: the RocksDB database of one partition, opened on
  first use, as Faust's own reads and writes open it;
- ``rocksdb.Store.offset_key``: the key under which Faust keeps the changelog offset a
  partition's store has reached (where its recovery resumes reading).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from faust.types import TableT
from rocksdict import WriteBatch


class LocalStore:
    """The RocksDB store of ``table`` (a faust-streaming ``rocksdict`` table)."""

    def __init__(self, table: TableT[bytes, Any]) -> None:
        self.table = table

    def _db(self, partition: int) -> Any:
        return self.table.data._db_for_partition(partition)  # type: ignore[attr-defined]  # private (faust 0.15.3): the module docstring

    def read(self, partitions: Mapping[bytes, int]) -> dict[bytes, bytes]:
        """The stored bytes of each key (key → its partition), where there are any."""
        by_partition: dict[int, list[bytes]] = {}
        for key, partition in partitions.items():
            by_partition.setdefault(partition, []).append(key)
        found: dict[bytes, bytes] = {}
        for partition, keys in by_partition.items():
            for key, value in zip(keys, self._db(partition).get(keys), strict=True):
                if value is not None:
                    found[key] = value
        return found

    def write(self, entries: Mapping[bytes, tuple[int, bytes]], reached: Mapping[int, int]) -> None:
        """Write each key's bytes (key → (partition, bytes)) and, per partition, the
        changelog offset they reach, together: one RocksDB write batch per partition."""
        batches: defaultdict[int, WriteBatch] = defaultdict(lambda: WriteBatch(raw_mode=True))
        for key, (partition, value) in entries.items():
            batches[partition].put(key, value)
        offset_key = self.table.data.offset_key  # type: ignore[attr-defined]  # private (faust 0.15.3): the module docstring
        for partition, offset in reached.items():
            batches[partition].put(offset_key, str(offset).encode())
        for partition, batch in batches.items():
            self._db(partition).write(batch)
