"""Poison through the real ``wijkhub serve-intake``: one dead letter each, and it keeps serving.

The bodies are the unit suite's (tests/unit/test_poison.py): JSON nested 100,000
deep, integers over 4,300 digits, ``1e999``, NaN, invalid UTF-8, a byte-order
mark. Each once gave a 500 (or worse); each must now be answered 422 with one
rejected record, whose dead letter is on ``dlq.ingest`` exactly once.
"""

from __future__ import annotations

import json

from wijkhub.settings import Settings
from wijkhub.streams.topics import DLQ_INGEST

from builders import POISON, SIGNAL, Hub


def dead_letter_keys(settings: Settings) -> list[bytes]:
    """The key of every record on dlq.ingest, from the beginning to the current end."""
    return [r.key for r in Hub(settings, None).records(DLQ_INGEST)]  # type: ignore[arg-type]


def test_each_poison_body_is_one_dead_letter_and_the_intake_keeps_serving(
    hub_settings, intake_server
):
    keys = []
    for name in sorted(POISON):
        status, answer = intake_server.post("vroegsignalering", POISON[name])
        assert status == 422, (name, answer)
        assert (answer["read"], answer["events"], answer["dead_lettered"]) == (1, 0, 1), name
        keys.append(answer["rejected"][0]["key"].encode())
    good = json.dumps([{**SIGNAL, "message_id": "poison-after", "amount": "12,50"}]).encode()
    assert intake_server.post("vroegsignalering", good)[0] == 202
    on_topic = dead_letter_keys(hub_settings)
    assert {key: on_topic.count(key) for key in keys} == dict.fromkeys(keys, 1)


def test_an_income_token_posting_consent_is_dead_lettered(intake_server):
    consent = {"kind": "consent_changed", "message_id": "income-consent-1", "bsn": "111222333",
               "occurred_at": "2026-05-01", "purpose": "wmo-regie", "consent_domain": "care",
               "consent": "given"}  # fmt: skip
    status, answer = intake_server.post("income", json.dumps([consent]).encode())
    assert (status, answer["events"]) == (422, 0)
    assert answer["reasons"] == {"kind-not-allowed": 1}
    assert answer["rejected"][0]["reason"] == "kind not allowed for this source"
