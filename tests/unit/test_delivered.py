"""Step 3 of the checkpoint in memory (stage.Delivered): an entry whose outbox this process
saw acknowledged sends nothing again; any other bytes, or a forgotten key, send it once
more. The harness test of a restart is in test_sequence_neutral."""

from __future__ import annotations

import json

from wijkhub.streams.stage import Delivered

OUTBOX = [{"topic": "linked", "key": "aA==", "value": "dg==", "headers": []}]


def stored(state: dict, outbox: list) -> bytes:
    return json.dumps({"state": state, "outbox": outbox}).encode()


def test_an_entry_whose_exact_bytes_were_delivered_has_nothing_left_to_send():
    delivered = Delivered()
    written = stored({"n": 1}, OUTBOX)
    assert delivered.entry(b"k", written)["outbox"] == OUTBOX  # not delivered yet
    delivered.mark(b"k", written)
    assert delivered.entry(b"k", written) == {"state": {"n": 1}, "outbox": []}
    # another key with the same bytes: not known
    assert delivered.entry(b"other", written)["outbox"] == OUTBOX


def test_other_bytes_under_a_delivered_key_send_their_outbox():
    """A newer entry written by another worker (a partition moved and came back), or a
    changelog recovery of an older one: only the bytes this process saw delivered count."""
    delivered = Delivered()
    delivered.mark(b"k", stored({"n": 1}, OUTBOX))
    assert delivered.entry(b"k", stored({"n": 2}, OUTBOX))["outbox"] == OUTBOX
    assert delivered.entry(b"k", stored({"n": 1}, [*OUTBOX, *OUTBOX]))["outbox"] == OUTBOX * 2


def test_past_its_limit_the_oldest_mark_is_forgotten_and_sent_again():
    delivered = Delivered(limit=2)
    entries = {k: stored({"k": k.decode()}, OUTBOX) for k in (b"a", b"b", b"c")}
    for key, value in entries.items():
        delivered.mark(key, value)
    delivered.mark(b"b", entries[b"b"])  # marked again: the newest
    assert [delivered.entry(k, v)["outbox"] for k, v in entries.items()] == [OUTBOX, [], []]
