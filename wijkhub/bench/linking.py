"""Benchmark: linking with many known persons in state (``wijkhub bench-linking``).

Builds a synthetic municipality of N persons, feeds its BRP registrations and
relations through the person and address stages (the pure functions the
Faust agents call, with their state serialised as the tables store it), then
links M creditor signals without BSN against that state. Reports
registrations/s, signals/s, the stored bytes per person (the JSON values of
the ``persons`` and ``addresses`` tables) and the process memory per person.
In the same run, M records go through a raw Kafka consume→produce pass-through
on the same broker: the floor any stage that reads and writes Kafka pays.
"""

from __future__ import annotations

import asyncio
import json
import resource
import secrets
import time
import uuid

from wijkhub import linkeval, simtown
from wijkhub.admin import prepare
from wijkhub.bench.pipeline import passthrough, produce
from wijkhub.broker import cluster
from wijkhub.kafka import connect
from wijkhub.settings import Settings
from wijkhub.streams import residence
from wijkhub.streams.access import ADMIN
from wijkhub.streams.matching import Weights


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _kafka_floor(base: Settings, n: int) -> dict:
    with cluster(base, base.data_dir.resolve() / "bench-broker") as found:
        settings = found.with_(topic_prefix=f"bench-link-{uuid.uuid4().hex[:8]}.",
                               pseudonym_key=secrets.token_urlsafe(32).encode())  # fmt: skip
        prepare(settings)
        src, dst = settings.topic_prefix + "raw.debt", settings.topic_prefix + "linked"
        payload = b"x" * 300  # about the size of an encoded signal
        produce(settings, [(src, f"{i}".encode(), payload) for i in range(n)])
        seconds = asyncio.run(passthrough(connect(settings, ADMIN).kafka_python(), src, dst, n))
        return {"records": n, "seconds": round(seconds, 2), "per_second": round(n / seconds)}


def run_bench(base: Settings, persons: int, signals: int) -> dict:
    rss_before = _rss_mib()
    began = time.perf_counter()
    town = simtown.generate(households=max(1, persons * 100 // 290), signals=signals, seed=3)
    generated = time.perf_counter() - began
    began = time.perf_counter()
    person_states, buildings = linkeval._town_state(town)
    built = time.perf_counter() - began
    registrations = sum(1 for _ in simtown.registrations(town)) + len(town.relations)
    stored = sum(len(json.dumps(s)) for s in person_states.values())
    stored += sum(len(json.dumps(s)) for s in buildings.values())
    weights = Weights.shipped()
    events = [linkeval._signal_event(s) for s in town.signals]
    began = time.perf_counter()
    linked = 0
    for event in events:
        address = event["subject"]["address_ref"]
        # the building's register is read (deserialised) per event; an empty one where
        # nobody lives (as linkeval.evaluate_town)
        raw_state = json.dumps(
            buildings.get(residence.building(address)) or {"residents": [], "relations": []}
        )
        state = json.loads(raw_state)
        result = residence.decide_link(state, address, event, weights, 0.99)
        linked += isinstance(result, residence.Linked)
    linking = time.perf_counter() - began
    n = len(town.residents)
    return {
        "persons": n,
        "buildings": len(buildings),
        "generate_seconds": round(generated, 1),
        "state_build": {
            "records": registrations,
            "seconds": round(built, 1),
            "per_second": round(registrations / built),
        },
        "signal_linking": {
            "signals": len(events),
            "linked": linked,
            "seconds": round(linking, 2),
            "per_second": round(len(events) / linking),
        },
        "stored_bytes_per_person": round(stored / n),
        "process_mib_per_1000_persons": round((_rss_mib() - rss_before) / n * 1000, 2),
        "kafka_passthrough_same_run": _kafka_floor(base, len(events)),
    }
