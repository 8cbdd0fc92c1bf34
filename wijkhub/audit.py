"""Audit entries: one record per access to personal data, for the privacy officer (FG).

The worker's operator query, the team inbox and the operator's CLI write the same
AuditEntry to the audit topic, and wait for Kafka's acknowledgement before they serve
any data: there is no unaudited read.

Why a hash chain per writer: ACLs keep everyone but the cluster administrator from
deleting or altering the topic, but the FG must be able to *show* that nobody did. Each
process that writes audit entries is one chain (``writer``: service and run), every
entry carries its place (``seq``) and the SHA-256 of the previous entry of its chain
(``prev``), and the Kafka key is the writer, so a chain stays in one partition. One
chain per writer needs no coordination between writers (a chain per partition would
need every writer to read the partition's last entry before writing, and two writers
would race). :func:`verify` finds an edited entry (the next one's ``prev`` no longer
matches, or two different entries claim one place), a removed one (a gap in ``seq``)
and an inserted one. What a chain cannot show by itself is a removed *tail*; a
municipality that needs that anchors the heads elsewhere (docs/privacy/erasure.md).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any


def entry(
    actor: str, action: str, resource: str, allowed: bool, reason: str, channel: str
) -> dict[str, Any]:
    """An AuditEntry record: who (account name, never a token), what, when, allowed or not.
    Unchained: :meth:`Chain.link` gives it its place."""
    return {
        "at": dt.datetime.now(dt.UTC),
        "actor": actor,
        "action": action,
        "resource": resource,
        "allowed": allowed,
        "reason": reason,
        "channel": channel,
        "writer": "",
        "seq": 0,
        "prev": "",
    }


HASHED = ("at", "actor", "action", "resource", "allowed", "reason", "channel", "writer", "seq",
          "prev")  # fmt: skip


def entry_hash(record: dict[str, Any]) -> str:
    """SHA-256 of the entry's canonical form (every field; ``at`` in epoch milliseconds,
    as Avro keeps it), so a writer and a verifier hash the same bytes."""
    at = record["at"]
    millis = int(at.timestamp() * 1000) if isinstance(at, dt.datetime) else int(at)
    # a fixed list, so a field a later schema adds (with its default) changes no old hash
    canonical = {k: record.get(k) for k in HASHED} | {"at": millis}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Chain:
    """One writer's chain. ``link`` is synchronous: call it and hand the record to the
    producer without an ``await`` between, so that the places follow the sends."""

    service: str
    writer: str = ""
    seq: int = 0
    head: str = ""
    _run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        self.writer = self.writer or f"{self.service}:{self._run}"

    def link(self, record: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        """(Kafka key, record) with the record's place in this chain."""
        self.seq += 1
        chained = {**record, "writer": self.writer, "seq": self.seq, "prev": self.head}
        # Avro keeps milliseconds: hash what a reader will read back
        at: dt.datetime = chained["at"]
        chained["at"] = at.replace(microsecond=at.microsecond // 1000 * 1000)
        self.head = entry_hash(chained)
        return self.writer.encode(), chained


@dataclass(frozen=True)
class Finding:
    writer: str
    seq: int
    problem: str  # edited | missing | conflict | unreadable | implausible


@dataclass
class Report:
    chains: int = 0
    entries: int = 0
    unchained: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings


def verify(records: Iterable[dict[str, Any]]) -> Report:
    """Check every chain: places 1..n without a gap, one entry per place (a redelivered
    identical copy is fine), and each entry's ``prev`` the hash of the one before."""
    report = Report()
    chains: dict[str, dict[int, dict[str, Any]]] = {}
    for record in records:
        report.entries += 1
        if record.get("seq") == -1:  # a record the reader could not decode
            report.findings.append(Finding(record["writer"], -1, "unreadable"))
            continue
        if not record.get("writer"):
            report.unchained += 1  # written before chains existed: reported, not judged
            continue
        places = chains.setdefault(record["writer"], {})
        known = places.get(record["seq"])
        if known is not None and entry_hash(known) != entry_hash(record):
            report.findings.append(Finding(record["writer"], record["seq"], "conflict"))
            continue
        places[record["seq"]] = record
    report.chains = len(chains)
    for writer, places in sorted(chains.items()):
        if max(places) > 10 * report.entries + 1000:  # a forged place far beyond the rest
            report.findings.append(Finding(writer, max(places), "implausible"))
            places = {k: v for k, v in places.items() if k <= report.entries}
            if not places:
                continue
        previous = ""
        for seq in range(1, max(places) + 1):
            found = places.get(seq)
            if found is None:
                report.findings.append(Finding(writer, seq, "missing"))
                previous = "?"
                continue
            if previous != "?" and found["prev"] != previous:
                report.findings.append(Finding(writer, seq - 1 if seq > 1 else seq, "edited"))
            previous = entry_hash(found)
    return report
