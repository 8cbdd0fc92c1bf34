"""HTTP ingest: ``POST /ingest/<source>`` with a per-source bearer token.

Answers 202 with the event ids when every record became an event, and 422
with a reason per rejected record otherwise. In both cases every record was
handled: valid ones are events, invalid ones dead letters (nothing is lost,
and the sender learns what to correct). 401 for a missing or wrong token,
404 for an unknown source, 413 for a body over ``WIJKHUB_INTAKE_MAX_BODY_BYTES``,
429 (with Retry-After) when a token sends faster than its rate
(``WIJKHUB_INTAKE_RATE_PER_SECOND``, bursts of ``WIJKHUB_INTAKE_RATE_BURST``), 503 when Kafka
did not acknowledge or is not ready (the sender must retry the same body: event ids and
dead-letter keys, from the body's digest and the record's index, make that
safe). Each rejected record names its dead letter's key, a reference for
support that says nothing about the record.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web
from kafka.errors import KafkaError

from wijkhub import access
from wijkhub.connectors.formats import SOURCES
from wijkhub.connectors.intake import Intake, IntakeError, retriable
from wijkhub.connectors.preflight import IntakeNotReady
from wijkhub.logs import get as get_logger
from wijkhub.metrics import Metrics

log = get_logger("wijkhub.http")
MAX_BODY = 16 * 1024 * 1024


@dataclass
class RateLimit:
    """A token bucket per bearer token: ``burst`` requests at once, then ``rate`` per
    second. One source flooding the intake cannot starve the others or the broker.
    A rate of 0 turns the limit off."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # tokens, at

    def wait(self, token: str) -> float:
        """0 when this request may pass (and takes its token), else seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        tokens, at = self._buckets.get(token, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets[token] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[token] = (tokens - 1, now)
        return 0.0


def parse_tokens(spec: str) -> dict[str, str]:
    """``source=token,source2=token2`` → mapping (see :mod:`wijkhub.access`)."""
    return access.parse_tokens(spec, "ingest token", SOURCES)


def _too_large(max_body: int) -> web.Response:
    return web.json_response({"error": f"body larger than {max_body} bytes"}, status=413)


def build(tokens: Mapping[str, str], intake_for: Callable[[str], Intake],
          metrics: Metrics, max_body: int = MAX_BODY,
          limit: RateLimit | None = None) -> web.Application:  # fmt: skip
    """The intake app. ``max_body`` bounds a request's bytes, ``limit`` each token's rate."""
    intakes: dict[str, Intake] = {}
    locks: dict[str, asyncio.Lock] = {}
    limit = limit or RateLimit(rate=0, burst=1)

    async def ingest(request: web.Request) -> web.Response:
        source = request.match_info["source"]
        if source not in SOURCES:
            return web.json_response({"error": f"unknown source {source}"}, status=404)
        given = access.bearer(request.headers.get("Authorization"))
        if not access.token_matches(given, tokens.get(source)):
            return web.json_response({"error": "missing or wrong token"}, status=401)
        wait = limit.wait(tokens[source])
        if wait > 0:
            log.warning("intake rate limited", source=source, retry_after_seconds=wait)
            headers = {"Retry-After": str(math.ceil(wait))}
            return web.json_response({"error": "too many requests", "retry": True},
                                     status=429, headers=headers)  # fmt: skip
        if (request.content_length or 0) > max_body:
            return _too_large(max_body)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # chunked, without a Content-Length
            return _too_large(max_body)
        try:
            intake = intakes.get(source) or intakes.setdefault(source, intake_for(source))
        except IntakeNotReady as exc:  # topics deleted or broker gone since start-up
            return web.json_response({"error": str(exc), "retry": True}, status=503)
        lock = locks.setdefault(source, asyncio.Lock())
        async with lock:  # one producer flush at a time per source
            try:
                report = await asyncio.to_thread(intake.ingest, body, f"http:{source}")
            except (IntakeError, KafkaError) as exc:
                answer = {"error": str(exc) or type(exc).__name__, "retry": retriable(exc)}
                return web.json_response(answer, status=503)
        answer = {**report.as_dict(), "event_ids": report.event_ids, "rejected": report.rejected}
        return web.json_response(answer, status=422 if report.dead_lettered else 202)

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def close_intakes(_app: web.Application) -> None:
        for intake in intakes.values():
            intake.close()

    app = web.Application(client_max_size=max_body)
    app.router.add_post("/ingest/{source}", ingest)
    app.router.add_get("/health", health)
    app.on_cleanup.append(close_intakes)
    return app
