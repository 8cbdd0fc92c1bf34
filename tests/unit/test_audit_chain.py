"""The audit trail's hash chains: an edit, a gap, an insertion and a conflicting copy are
found; a redelivered identical entry and several writers side by side are not faults."""

from __future__ import annotations

import random

from wijkhub.audit import Chain, entry, verify
from wijkhub.schemas.registry import AUDIT_ENTRY, Catalog

CATALOG = Catalog()


def written(chain: Chain, n: int) -> list[dict]:
    """n entries as a reader gets them back from the topic (through Avro)."""
    out = []
    for i in range(n):
        _, record = chain.link(entry(f"lid{i}", "household.read", f"H-{i}", True, "", "inbox"))
        out.append(CATALOG.decode(CATALOG.encode(AUDIT_ENTRY, record), AUDIT_ENTRY))
    return out


def test_an_untouched_trail_of_several_writers_in_any_order_is_intact():
    entries = written(Chain("inbox"), 5) + written(Chain("worker"), 3) + written(Chain("cli"), 1)
    random.Random(1).shuffle(entries)  # partitions interleave; a chain is by its places
    entries.append(dict(entries[2]))  # a redelivered copy
    report = verify(entries)
    assert report.intact and report.chains == 3 and report.entries == 10


def test_an_edited_entry_is_found():
    entries = written(Chain("inbox"), 4)
    entries[1] = {**entries[1], "actor": "someone-else"}
    [finding] = verify(entries).findings
    assert (finding.seq, finding.problem) == (2, "edited")


def test_a_removed_entry_is_a_gap():
    entries = written(Chain("inbox"), 4)
    del entries[2]
    assert [(f.seq, f.problem) for f in verify(entries).findings] == [(3, "missing")]


def test_an_edited_copy_beside_the_original_is_a_conflict():
    entries = written(Chain("inbox"), 3)
    entries.append({**entries[0], "allowed": False})
    assert [(f.seq, f.problem) for f in verify(entries).findings] == [(1, "conflict")]


def test_an_inserted_entry_breaks_the_chain():
    chain = Chain("inbox")
    entries = written(chain, 2)
    forged = Chain("inbox", writer=chain.writer, seq=1, head="0" * 64)
    entries[1] = written(forged, 1)[0]  # a forger who does not know the head it replaces
    assert [f.problem for f in verify(entries).findings] == ["edited"]


def test_entries_from_before_chains_are_counted_not_judged():
    old = {**entry("a", "household.read", "H-1", True, "", "http")}
    report = verify([CATALOG.decode(CATALOG.encode(AUDIT_ENTRY, old), AUDIT_ENTRY)])
    assert report.intact and report.unchained == 1
