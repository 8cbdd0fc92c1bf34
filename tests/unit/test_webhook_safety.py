"""Webhooks: ``https://`` only (plain http to loopback when a setting allows it, for
tests), checked when the teams file is loaded; a redirect is never followed but
dead-lettered with its reason, so an alert cannot be steered to another address."""

from __future__ import annotations

import asyncio
from collections import namedtuple

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from wijkhub.connectors import teams
from wijkhub.connectors.delivery import Deliverer, Permanent, WebhookSink, raise_for_status
from wijkhub.connectors.teams import TeamsFileError, webhook_problem
from wijkhub.metrics import Metrics
from wijkhub.settings import Settings

SECRET = "s" * 32
Record = namedtuple("Record", "topic partition offset key value")
ALERT = {"alert_id": "A-1", "revision": 1, "team": "t1", "change": "raised", "involved": []}


@pytest.mark.parametrize(
    ("url", "loopback", "refused"),
    [
        ("https://zaaksysteem.example/wijkhub", False, False),
        ("http://zaaksysteem.example/wijkhub", False, True),
        ("http://zaaksysteem.example/wijkhub", True, True),  # loopback only
        ("http://10.0.0.8/hook", True, True),
        ("http://127.0.0.1:8080/hook", False, True),
        ("http://127.0.0.1:8080/hook", True, False),
        ("http://localhost/hook", True, False),
        ("http://[::1]:8080/hook", True, False),
        ("ftp://x.example/hook", True, True),
        ("https:///no-host", False, True),
        ("zaaksysteem.example/wijkhub", False, True),
    ],
)
def test_webhook_urls_must_be_https_or_allowed_loopback(url, loopback, refused):
    assert (webhook_problem(url, loopback) is not None) is refused


def test_the_teams_file_refuses_a_plain_http_webhook_with_a_clear_error():
    text = "teams:\n  t1: {webhook: 'http://zaaksysteem.example/hook'}\n"
    with pytest.raises(TeamsFileError, match=r"team t1: webhook must be an https:// URL"):
        teams.parse(text, webhook_secrets=f"t1={SECRET}")
    local = "teams:\n  t1: {webhook: 'http://127.0.0.1:9/hook'}\n"
    with pytest.raises(TeamsFileError, match="WIJKHUB_WEBHOOK_ALLOW_LOOPBACK_HTTP"):
        teams.parse(local, webhook_secrets=f"t1={SECRET}")
    allowed = teams.parse(local, webhook_secrets=f"t1={SECRET}", allow_loopback_http=True)
    assert allowed.teams["t1"].webhook == "http://127.0.0.1:9/hook"


def test_allowing_loopback_http_is_a_setting_off_by_default():
    assert Settings.from_env({}).webhook_allow_loopback_http is False
    on = Settings.from_env({"WIJKHUB_WEBHOOK_ALLOW_LOOPBACK_HTTP": "true"})
    assert on.webhook_allow_loopback_http is True
    assert Settings.from_env(on.to_env()).webhook_allow_loopback_http is True


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_final_failure(status):
    with pytest.raises(Permanent, match="redirects are not followed"):
        raise_for_status(status)


class Producer:
    """AIOKafkaProducer's send_and_wait, recorded."""

    def __init__(self) -> None:
        self.sent: list[tuple] = []

    async def send_and_wait(self, topic, value, key=None, headers=None) -> None:
        self.sent.append((topic, value, key, dict(headers or [])))


def _deliver_via(path: str, loopback: bool = True) -> tuple[Producer, list[str]]:
    """Deliver ALERT to team t1 whose webhook is ``path`` on a local server that
    redirects /moved to /elsewhere; (dead letters, paths the server saw)."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.path)
        if request.path == "/moved":
            raise web.HTTPFound("/elsewhere")
        return web.Response(status=204)

    async def run() -> Producer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        async with TestServer(app, host="127.0.0.1") as server:
            url = f"http://127.0.0.1:{server.port}{path}"
            settings = Settings(webhook_allow_loopback_http=loopback, delivery_attempts=3,
                                delivery_backoff_seconds=0.01)  # fmt: skip
            text = f"teams:\n  t1: {{webhook: '{url}'}}\n"
            hooks = teams.parse(text, webhook_secrets=f"t1={SECRET}", allow_loopback_http=True)
            producer = Producer()
            async with aiohttp.ClientSession() as session:
                sinks = [WebhookSink(settings, hooks, session)]
                deliverer = Deliverer(settings, hooks, sinks, producer, Metrics())
                await deliverer.deliver(Record("alerts", 0, 7, b"A-1", b"v"), ALERT)
            return producer

    return asyncio.run(run()), seen


def test_a_redirecting_webhook_is_dead_lettered_once_and_the_target_never_called():
    producer, seen = _deliver_via("/moved")
    assert seen == ["/moved"]  # one attempt, and /elsewhere never reached
    [(_topic, _value, _key, headers)] = producer.sent
    assert headers["dl_reason_code"] == b"undeliverable"
    assert b"redirects are not followed" in headers["dl_reason"]


def test_a_plain_http_webhook_is_refused_at_delivery_too():
    producer, seen = _deliver_via("/hook", loopback=False)
    assert seen == []
    [(_topic, _value, _key, headers)] = producer.sent
    assert b"https://" in headers["dl_reason"]


def test_an_allowed_loopback_webhook_is_delivered():
    producer, seen = _deliver_via("/hook")
    assert (producer.sent, seen) == ([], ["/hook"])
