"""Every record ends as an event or a dead letter, whatever it holds.

Poison that once escaped the dead-letter path (an HTTP 500, a relay crash loop
without a commit): JSON nested 100,000 deep, integers over Python's 4,300 digits,
an amount of ``1e999``, NaN, invalid UTF-8, byte-order marks. Hypothesis feeds
such input through parse + canonical with a fake producer and checks
``read == events + dead letters``, one Kafka record per record read, and that no
exception escapes. The same against the real ``serve-intake``:
tests/integration/test_poison_intake.py.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wijkhub.connectors.formats import SOURCES
from wijkhub.connectors.http import RateLimit, build
from wijkhub.connectors.intake import Intake, IntakeReport
from wijkhub.metrics import Metrics
from wijkhub.settings import Settings

from builders import BOM, DEPTH, POISON, SIGNAL, FakeKafka, with_amount

SETTINGS = Settings(pseudonym_key=b"p" * 32, dead_letter_key=b"d" * 32)


def ingest(source: str, data: bytes) -> tuple[IntakeReport, FakeKafka]:
    kafka = FakeKafka()
    report = Intake(SETTINGS, source, kafka=kafka).ingest(data, "fuzz")
    return report, kafka


def accounted(report: IntakeReport, kafka: FakeKafka) -> None:
    """Every record read is one record on Kafka: an event or a dead letter."""
    assert report.read == report.events + report.dead_lettered
    assert len(kafka.sent) == report.read
    letters = [r for r in kafka.sent if r["topic"] == "dlq.ingest"]
    assert len(letters) == report.dead_lettered


@pytest.mark.parametrize("name", sorted(POISON))
def test_each_poison_record_becomes_exactly_one_dead_letter(name):
    report, kafka = ingest("vroegsignalering", POISON[name])
    accounted(report, kafka)
    assert (report.read, report.events, report.dead_lettered) == (1, 0, 1), report.as_dict()


def test_a_byte_order_mark_is_skipped_before_json():
    report, kafka = ingest(
        "vroegsignalering", BOM + json.dumps([{**SIGNAL, "amount": "9"}]).encode()
    )
    accounted(report, kafka)
    assert report.events == 1


def test_a_poison_line_among_good_lines_fails_alone():
    good = json.dumps({**SIGNAL, "amount": "9"}).encode()
    report, kafka = ingest(
        "vroegsignalering", b"\n".join([good, b"[" * DEPTH, with_amount("1e999")])
    )
    accounted(report, kafka)
    assert (report.read, report.events, report.dead_lettered) == (3, 1, 2)


def test_a_failure_nobody_foresaw_dead_letters_that_record_alone(monkeypatch):
    def boom(*_args, **_kwargs):
        raise LookupError("a bug on odd input")

    monkeypatch.setattr("wijkhub.connectors.intake.to_raw_event", boom)
    report, kafka = ingest("income", b"benefit_id;change\nB-1;granted\nB-2;ended\n")
    accounted(report, kafka)
    assert report.reasons == {"unreadable": 2}


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None))
    | st.sampled_from(["1e999", "NaN", "-0", "9" * 5000, "2999-01-01", "111222333"])
)
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["kind", "amount", "bedrag", "arrears_months", "occurred_at", "bsn", "message_id",
          "signaalpartner.type", "leveringen", "gebeurtenis", "postcode"]  # fmt: skip
record = st.fixed_dictionaries({}, optional={f: json_value for f in FIELDS})


def _json(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def poison_input(draw: st.DrawFn) -> bytes:
    """Bytes a hostile or broken source might send: JSON, JSON lines, CSV, raw, spliced."""
    kind = draw(st.sampled_from(["json", "lines", "csv", "nested", "bytes"]))
    if kind == "json":
        data = _json(draw(st.lists(record, max_size=5)))
    elif kind == "lines":
        data = b"\n".join(_json(r) for r in draw(st.lists(record, min_size=1, max_size=5)))
    elif kind == "csv":
        rows = draw(st.lists(st.lists(st.text(max_size=12), min_size=3, max_size=3), max_size=4))
        data = b"kind;amount;bsn\n" + b"\n".join(
            ";".join(r).encode("utf-8", "surrogatepass") for r in rows
        )
    elif kind == "nested":
        depth = draw(st.integers(1, 120_000))
        data = draw(st.sampled_from([b"[", b'{"a":', b'{"leveringen":['])) * depth
    else:
        data = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        data = BOM + data
    if draw(st.booleans()) and data:
        at = draw(st.integers(0, len(data)))
        data = (
            data[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"]))
            + data[at:]
        )
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(sorted(SOURCES)), data=poison_input())
def test_fuzz_every_record_read_is_an_event_or_a_dead_letter(source, data):
    report, kafka = ingest(source, data)
    accounted(report, kafka)


def _post_all(app, posts: list[tuple[str, bytes]]) -> list[int]:
    async def run() -> list[int]:
        async with TestClient(TestServer(app)) as client:
            statuses = []
            for token, body in posts:
                headers = {"Authorization": f"Bearer {token}"}
                response = await client.post("/ingest/vroegsignalering", data=body, headers=headers)
                statuses.append(response.status)
            return statuses

    return asyncio.run(run())


TOKEN = "t" * 32


def _app(**options: object):
    intake = Intake(SETTINGS, "vroegsignalering", kafka=FakeKafka())
    return build({"vroegsignalering": TOKEN}, lambda _s: intake, Metrics(), **options)


def test_http_intake_answers_poison_with_422_and_keeps_serving():
    bodies = [POISON[name] for name in sorted(POISON)]
    statuses = _post_all(_app(), [(TOKEN, body) for body in bodies])
    assert statuses == [422] * len(bodies)


def test_http_intake_refuses_a_body_over_the_limit_with_413():
    statuses = _post_all(_app(max_body=1024), [(TOKEN, b"[" + b" " * 2048 + b"]"), (TOKEN, b"[]")])
    assert statuses == [413, 202]


def test_http_intake_limits_each_token_with_429():
    now = [0.0]
    limit = RateLimit(rate=1.0, burst=2, clock=lambda: now[0])
    statuses = _post_all(_app(limit=limit), [(TOKEN, b"[]")] * 3 + [("w" * 32, b"[]")])
    assert statuses == [202, 202, 429, 401]
    now[0] = 1.0
    assert limit.wait(TOKEN) == 0.0


def test_the_rate_limit_refills_and_zero_turns_it_off():
    now = [0.0]
    limit = RateLimit(rate=2.0, burst=1, clock=lambda: now[0])
    assert limit.wait("a") == 0.0 and limit.wait("a") == pytest.approx(0.5)
    assert limit.wait("b") == 0.0  # per token
    now[0] = 0.5
    assert limit.wait("a") == 0.0
    assert all(RateLimit(rate=0, burst=1).wait("a") == 0.0 for _ in range(100))


def test_intake_limits_are_settings():
    env = {"WIJKHUB_INTAKE_MAX_BODY_BYTES": "1000", "WIJKHUB_INTAKE_RATE_PER_SECOND": "2.5",
           "WIJKHUB_INTAKE_RATE_BURST": "7"}  # fmt: skip
    s = Settings.from_env(env)
    assert (s.intake_max_body_bytes, s.intake_rate_per_second, s.intake_rate_burst) == (
        1000,
        2.5,
        7,
    )
    assert Settings.from_env(s.to_env()) == s
    assert Settings.from_env({}).intake_max_body_bytes == 16 * 1024 * 1024


def test_a_streams_dead_letter_names_neither_the_person_nor_the_address_in_its_key():
    from wijkhub.connectors.deadletter import unseal
    from wijkhub.streams.stage import Message, dead_letter, sealed

    key = b"dead-letter-key-0123456789abcdef0123"
    letter = dead_letter("address", Message("by-address", b"1013JK-7", b"junk", "by-address/0/5"),
                         "undecodable", "not Avro")  # fmt: skip
    out = sealed(letter, key)
    headers = dict(out.headers)
    assert b"1013JK" not in out.key + out.value and out.key.startswith(b"DL-")
    assert unseal(key, base64.b64decode(headers["dl_key"])) == b"1013JK-7"  # nothing lost
    assert unseal(key, out.value) == b"junk"
    same = Message("by-address", b"1013JK-7", b"junk", "by-address/0/5")
    again = sealed(dead_letter("address", same, "undecodable", "x"), key)
    assert again.key == out.key  # the same record again: the same letter
