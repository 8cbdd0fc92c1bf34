"""The processing topology, as in DESIGN.md — wiring only:

    raw.<domain> ─ person stage ─► by-address ─ address stage ─► linked
    linked, alert-actions ─ household stage ─► household-view, alerts
                           (and, on its timer, expiry actions to alert-actions)
    (unmatched: for review; hand-over: for the new municipality; dlq.streams)

The stages are plain objects (:mod:`person_stage`, :mod:`address_stage`,
:mod:`household_stage`) with one contract, ``(state, messages) → (state,
outputs)``; the in-memory harness runs the same objects. This module adapts
them to Faust (:mod:`faust_adapter`): one batch task per stage, fed in batches by the
worker's own fetch loop (:mod:`faust_delivery`), one changelogged table per stage.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TableT

from wijkhub.logs import get as get_logger
from wijkhub.metrics import Metrics
from wijkhub.schemas.registry import Catalog
from wijkhub.settings import Settings
from wijkhub.streams import diagnostics, faust_adapter, faust_delivery, pages
from wijkhub.streams.authenticity import ActionKeys
from wijkhub.streams.harness import build_stages
from wijkhub.streams.household import View
from wijkhub.streams.topics import full_name

log = get_logger("wijkhub.streams")


def build_app(settings: Settings, metrics: Metrics | None = None) -> faust.App:
    """Create the Faust app with its topics, tables, stage tasks and /metrics page."""
    metrics = metrics or Metrics()
    catalog = Catalog()
    ActionKeys.parse(settings.action_keys)  # refused here when missing: one clear line
    settings.require_dead_letter_key()  # it seals what the worker dead-letters
    person, address, household = build_stages(settings, catalog)  # refused here if invalid
    if not settings.district_table:
        log.warning(
            "no district table: every alert goes to the fallback team",
            setting="WIJKHUB_DISTRICT_TABLE",
        )
    app = faust_adapter.new_app(settings)
    guard: list[faust_adapter.Processed] = []  # made when the worker starts its consumer

    def processed() -> faust_adapter.Processed:
        if not guard:
            guard.append(faust_adapter.guard_commits(app, settings))
        return guard[0]

    stages = (person, address, household)
    delivery = faust_delivery.Delivery(
        app,
        {full_name(t, settings.topic_prefix): s.name for s in stages for t in s.inputs},
        limit=4 * settings.batch_size,
        dropped=lambda tp, offset: processed().dropped(tp, offset),
    )
    delivery.install(app.consumer)
    tables: dict[str, TableT[bytes, Any]] = {}
    for stage in stages:
        tables[stage.name] = faust_adapter.run_stage(app, settings, metrics, stage, processed,
                                                     delivery)  # fmt: skip

    def read_view(ref: bytes) -> View | None:
        entry = tables[household.name].get(ref)  # {"state": ..., "outbox": [...]}
        if entry is None:
            return None
        view, _, _ = household.derive(entry["state"], ref.decode())
        return view

    faust_adapter.sweep(app, settings, tables[household.name], household)  # alert expiry
    pages.register(app, settings, catalog, metrics, tables[household.name], read_view)
    faust_adapter.measure_lag(app, settings, metrics)
    faust_adapter.reread_skipped(app, metrics, processed, delivery)
    diagnostics.on_signal(app, delivery, processed)  # kill -USR1: what it waits for
    return app
