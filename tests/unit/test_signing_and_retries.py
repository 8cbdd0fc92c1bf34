"""Webhook signatures, backoff with jitter, and which failures are retried."""

import asyncio
import random

from wijkhub.connectors.delivery import (
    BACKOFF_CAP_SECONDS,
    Permanent,
    Temporary,
    backoff,
    sign,
    verify,
    with_retries,
)


def test_a_signature_verifies_only_for_the_same_secret_body_and_a_fresh_timestamp():
    body = b'{"alert_id": "A-1"}'
    header = sign("geheim" * 6, 1_800_000_000, body)
    assert header.startswith("t=1800000000,v1=")
    assert verify("geheim" * 6, header, body, now=1_800_000_010)
    assert not verify("anders" * 6, header, body, now=1_800_000_010)
    assert not verify("geheim" * 6, header, body + b" ", now=1_800_000_010)
    assert not verify("geheim" * 6, header, body, now=1_800_000_000 + 301)  # replayed later
    assert not verify("geheim" * 6, "v1=abc", body)


def test_backoff_grows_exponentially_with_full_jitter_and_a_cap():
    rng = random.Random(1)
    for attempt in range(1, 12):
        ceiling = min(BACKOFF_CAP_SECONDS, 0.5 * 2 ** (attempt - 1))
        waits = [backoff(attempt, 0.5, rng) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8  # jitter spreads over the whole range


def run(outcomes, attempts=4):
    calls, retries = [], []

    async def send():
        calls.append(1)
        result = outcomes[len(calls) - 1]
        if result is not None:
            raise result

    outcome = asyncio.run(with_retries(send, attempts, 0.0, retries.append))
    return outcome, len(calls), retries


def test_temporary_failures_are_retried_until_success():
    outcome, calls, retries = run([Temporary("HTTP 503"), Temporary("TimeoutError"), None])
    assert outcome.delivered and outcome.attempts == 3 and calls == 3
    assert retries == ["HTTP 503", "TimeoutError"]


def test_a_permanent_failure_is_not_retried_and_attempts_run_out():
    outcome, calls, _ = run([Permanent("HTTP 400")])
    assert not outcome.delivered and calls == 1 and "HTTP 400" in outcome.reason
    outcome, calls, retries = run([Temporary("HTTP 500")] * 4)
    assert not outcome.delivered and calls == 4 and len(retries) == 3
    assert outcome.reason.startswith("gave up after 4 attempts")
