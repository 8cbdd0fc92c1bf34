"""The worker's HTTP pages: /metrics, /health and the operators' household query.

Faust's own table, router, graph and stats pages are switched off (they
would serve table contents to anyone); these are the only pages. Reading a
household view needs an operator token, and every attempt, allowed or not,
is written to the audit topic and acknowledged by Kafka before any data is
served: there is no unaudited read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust
from faust.types import TableT
from faust.web import Request, Response, View

from wijkhub import access
from wijkhub.audit import Chain
from wijkhub.audit import entry as audit_entry
from wijkhub.logs import get as get_logger
from wijkhub.metrics import CONTENT_TYPE_LATEST, Metrics
from wijkhub.schemas.registry import AUDIT_ENTRY, Catalog
from wijkhub.settings import Settings
from wijkhub.streams import household
from wijkhub.streams.topics import AUDIT, Domain, full_name

log = get_logger("wijkhub.pages")
# aiohttp refuses a charset inside content_type; the exposition format is UTF-8.
METRICS_CONTENT_TYPE = "; ".join(
    p.strip() for p in CONTENT_TYPE_LATEST.split(";") if "charset" not in p
)


def register(
    app: faust.App,
    settings: Settings,
    catalog: Catalog,
    metrics: Metrics,
    views: TableT[bytes, Any],
    read_view: Callable[[bytes], household.View | None],
) -> None:
    """``views``: the household stage's table (requests go to the worker holding the key);
    ``read_view``: the household's view as that stage derives it."""
    operators = access.parse_tokens(settings.operator_tokens, "operator token")
    audit_name = full_name(AUDIT, settings.topic_prefix)

    chain = Chain("worker")  # this process's audit hash chain

    async def audit(actor: str, resource: str, allowed: bool, reason: str) -> None:
        key, record = chain.link(
            audit_entry(actor, "household.read", resource, allowed, reason, "http")
        )
        value = catalog.encode(AUDIT_ENTRY, record)
        await app.producer.send_and_wait(audit_name, key, value, None, None, None)
        log.info("household view requested", actor=actor, allowed=allowed)  # purpose: audit

    @app.page("/households/{ref}")
    @app.table_route(table=views, match_info="ref")
    async def household_page(web: View, request: Request, ref: str) -> Response:
        """An operator reads one household view: token checked, a purpose or case reference
        given (AVG art. 5 lid 1 b), only the domains asked for (``?domains=debt,care``),
        every attempt audited with them."""
        actor = access.account_for(operators, request.headers.get("Authorization"))
        if actor is None:
            await audit("unknown", ref, False, "missing or wrong operator token")
            return web.json({"error": "missing or wrong operator token"}, status=401)
        purpose = request.query.get("purpose", "").strip()
        if not purpose:
            await audit(actor, ref, False, "no purpose given")
            return web.json({"error": "give a purpose or case reference (?purpose=…)"},
                            status=400)  # fmt: skip
        domains = {d for d in request.query.get("domains", "").split(",") if d}
        unknown = domains - {d.value for d in Domain}
        if unknown:
            await audit(actor, ref, False, f"unknown domains {sorted(unknown)}")
            return web.json({"error": f"unknown domains {sorted(unknown)}"}, status=400)
        view = read_view(ref.encode())
        shown = f"purpose: {purpose}; domains: {','.join(sorted(domains)) or 'none'}"
        await audit(actor, ref, view is not None,
                    shown if view else f"{shown}; no such household")  # fmt: skip
        if view is None:
            return web.json({"error": f"no household {ref}"}, status=404)
        return web.json(household.for_operator(household.to_json(view), domains))

    @app.page("/metrics")
    async def metrics_page(web: View, request: Request) -> Response:
        return web.bytes(metrics.render(), content_type=METRICS_CONTENT_TYPE)

    @app.page("/health")
    async def health_page(web: View, request: Request) -> Response:
        """200 once partitions are assigned and tables recovered; 503 before."""
        # app.tables is Faust's TableManager, which has a recovery; its interface does not.
        recovery = app.tables.recovery  # type: ignore[attr-defined]  # TableManagerT lacks it
        ready = recovery.completed.is_set() and not app.rebalancing
        return web.json(
            {"status": "ok" if ready else "starting", "app": settings.app_id},
            status=200 if ready else 503,
        )
