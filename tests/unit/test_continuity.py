"""No input record is skipped: the adapter finds a hole in a partition's offsets and reads
it again (streams/faust_adapter.Continuity; faust-streaming's fetcher can skip records
after a rebalance). Pure bookkeeping, checked here without a broker; the integration tier
and ``wijkhub bench --workers 2`` run it with real rebalances."""

from __future__ import annotations

from dataclasses import dataclass

from faust.types import TP

from wijkhub.streams.faust_adapter import Continuity
from wijkhub.streams.topics import TOPICS, WORKER_INPUTS

A, B = TP("raw.debt", 0), TP("raw.debt", 1)


@dataclass
class _Message:
    tp: TP
    offset: int


def batch(*records: tuple[TP, int]) -> list[_Message]:
    return [_Message(tp, offset) for tp, offset in records]


def test_contiguous_offsets_from_the_committed_one_have_no_hole():
    c = Continuity()
    assert c.holes(batch((A, 10), (B, 0), (A, 11)), 1, {A: 10, B: None}) == {}
    assert c.holes(batch((A, 12), (B, 1)), 1, {A: 10}) == {}


def test_a_record_past_the_committed_offset_after_a_rebalance_is_a_hole():
    c = Continuity()
    assert c.holes(batch((A, 300)), 1, {A: 300}) == {}
    # generation 2: the consumer sought back to 301, but a record fetched earlier came
    assert c.holes(batch((A, 451), (A, 452)), 2, {A: 301}) == {A: (301, 451)}


def test_a_jump_inside_a_generation_is_a_hole_and_checking_resumes_at_the_rewind():
    c = Continuity()
    assert c.holes(batch((A, 0), (A, 1), (A, 5)), 1, {}) == {A: (2, 5)}
    # records read before the seek took effect: processed, not holes again
    assert c.holes(batch((A, 6), (A, 7)), 1, {}) == {}
    # the skipped records come again from 2; from there the check runs again
    assert c.holes(batch((A, 2), (A, 3), (A, 4), (A, 5), (A, 6), (A, 7), (A, 8)), 1, {}) == {}
    assert c.holes(batch((A, 10)), 1, {}) == {A: (9, 10)}


def test_a_record_read_again_is_no_hole():
    c = Continuity()
    assert c.holes(batch((A, 5), (A, 6)), 1, {A: 5}) == {}
    assert c.holes(batch((A, 5), (A, 6), (A, 7)), 1, {A: 5}) == {}  # a replay: at least once


def test_a_new_group_without_committed_offsets_starts_wherever_the_log_starts():
    assert Continuity().holes(batch((B, 7000)), 1, {B: None}) == {}


def test_no_worker_input_is_compacted_so_a_gap_in_its_offsets_is_always_a_hole():
    # the premise of turning Faust's gap bookkeeping off: compaction (or transaction
    # markers, which no producer here writes) are the only causes of a real gap
    specs = {t.name: t for t in TOPICS}
    assert all(not specs[name].data_class.compacted for name in WORKER_INPUTS)


def test_a_partition_kept_through_a_rebalance_with_nothing_committed_goes_on_where_it_was():
    # Faust does not seek a partition without a committed offset back after a rebalance:
    # the worker reads on from its position. What it processed before is processed; no
    # hole back to the log start (measured: every raw partition read again from 0, twice)
    c = Continuity()
    assert c.holes(batch((A, 0), (A, 1), (A, 2)), 1, {A: 0}) == {}
    assert c.holes(batch((A, 3), (A, 4)), 2, {A: 0}) == {}  # 0: where the log starts
    assert c.holes(batch((A, 7)), 2, {A: 0}) == {A: (5, 7)}  # a real hole still is one


def test_a_partition_regained_after_another_worker_committed_starts_at_its_commit():
    c = Continuity()
    assert c.holes(batch((A, 0), (A, 1)), 1, {A: None}) == {}
    # generation 2: another worker; generation 3: back here, committed at 40
    assert c.holes(batch((A, 40), (A, 41)), 3, {A: 40}) == {}
    assert c.holes(batch((B, 9)), 3, {B: 5}) == {B: (5, 9)}
