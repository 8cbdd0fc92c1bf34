"""HTTP ingest: ``POST /ingest/<source>`` with a per-source bearer token.

Answers 202 with the event ids when every record became an event, and 422
with a reason per rejected record otherwise. In both cases every record was
handled: valid ones are events, invalid ones dead letters (nothing is lost,
and the sender learns what to correct). 401 for a missing or wrong token,
404 for an unknown source, 413 for a body over the limit, 503 when Kafka
did not acknowledge or is not ready (the sender must retry the same body: event ids and
dead-letter keys, from the body's digest and the record's index, make that
safe). Each rejected record names its dead letter's key, a reference for
support that says nothing about the record.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from aiohttp import web
from kafka.errors import KafkaError

from wijkhub import access
from wijkhub.connectors.formats import SOURCES
from wijkhub.connectors.intake import Intake, IntakeError, retriable
from wijkhub.connectors.preflight import IntakeNotReady
from wijkhub.logs import get as get_logger
from wijkhub.metrics import Metrics

log = get_logger("wijkhub.http")
MAX_BODY = 20 * 1024 * 1024


def parse_tokens(spec: str) -> dict[str, str]:
    """``source=token,source2=token2`` → mapping (see :mod:`wijkhub.access`)."""
    return access.parse_tokens(spec, "ingest token", SOURCES)


def build(tokens: Mapping[str, str], intake_for: Callable[[str], Intake],
          metrics: Metrics) -> web.Application:  # fmt: skip
    intakes: dict[str, Intake] = {}
    locks: dict[str, asyncio.Lock] = {}

    async def ingest(request: web.Request) -> web.Response:
        source = request.match_info["source"]
        if source not in SOURCES:
            return web.json_response({"error": f"unknown source {source}"}, status=404)
        given = access.bearer(request.headers.get("Authorization"))
        if not access.token_matches(given, tokens.get(source)):
            return web.json_response({"error": "missing or wrong token"}, status=401)
        if (request.content_length or 0) > MAX_BODY:
            return web.json_response({"error": "body larger than 20 MiB"}, status=413)
        body = await request.read()
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

    async def metrics_page(_request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), content_type="text/plain")

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def close_intakes(_app: web.Application) -> None:
        for intake in intakes.values():
            intake.close()

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post("/ingest/{source}", ingest)
    app.router.add_get("/metrics", metrics_page)
    app.router.add_get("/health", health)
    app.on_cleanup.append(close_intakes)
    return app
