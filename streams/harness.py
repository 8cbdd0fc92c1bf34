"""The whole topology in memory: the worker's own stage objects, without Kafka.

Used by ``wijkhub rules backtest`` and by the tests (property tests draw
arrival orders, batchings, replays and crashes). Topics are append-only
lists; each stage keeps its state per key, stored as JSON the way the
worker's tables store it (so a stage that mutated state it did not return,
or kept something JSON cannot hold, fails here as it would in the worker).

A *crash* is simulated the way the adapter's ordering allows one to happen:
at a step of the checkpoint (:class:`stage.Plan`), with the offsets not
committed, so the same messages come again. Each stage's state is kept twice,
as in the worker: the local store and its changelog; a ``disk-lost`` crash
restores the store from the changelog, as a worker with a fresh disk (or a new
owner of the partition) does. Step 3 (outboxes delivered) is kept in memory
(:class:`stage.Delivered`), which every crash forgets, as a worker's restart does.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wijkhub.schemas.registry import ALERT, HOUSEHOLD_VIEW, Catalog
from wijkhub.settings import Settings
from wijkhub.streams import ruleset
from wijkhub.streams.address_stage import AddressStage
from wijkhub.streams.authenticity import ActionKeys
from wijkhub.streams.district import DistrictTable
from wijkhub.streams.household_stage import HouseholdStage
from wijkhub.streams.ids import Ids
from wijkhub.streams.matching import Weights
from wijkhub.streams.person_stage import PersonStage
from wijkhub.streams.routing import Router
from wijkhub.streams.stage import Delivered, Message, Output, Stage, Timed, caused_at, plan
from wijkhub.streams.topics import ALERTS, UNMATCHED
from wijkhub.streams.topics import HOUSEHOLD_VIEW as VIEW_TOPIC


def build_stages(
    settings: Settings,
    catalog: Catalog,
    rules_file: str | None = None,
    clock: Any = None,
) -> tuple[PersonStage, AddressStage, HouseholdStage]:
    """The three stages as the worker builds them from its settings (one place)."""
    districts = (
        DistrictTable.load(Path(settings.district_table), settings.municipality)
        if settings.district_table
        else None
    )
    household_options: dict[str, Any] = {} if clock is None else {"clock": clock}
    # The worker refuses to start without the keys (build_app); a backtest without them
    # runs, and shows every team action as refused rather than trusting it.
    keys = ActionKeys.parse(settings.action_keys) if settings.action_keys else (
        ActionKeys.verifying_nothing())  # fmt: skip
    ids = Ids(settings.id_key)  # refused here when missing or short
    return (
        PersonStage(catalog, settings.match_grace_days),
        AddressStage(catalog, Weights.shipped(), settings.match_threshold, ids),
        HouseholdStage(
            catalog,
            ruleset.load(rules_file or settings.rules_file or None).rules,
            Router.load(settings.routing_file or None),
            districts,
            settings.municipality,
            settings.allowed_lateness_days,
            keys,
            ids,
            **household_options,
        ),
    )


@dataclass
class Harness:
    """Feeds input records through the stages until every topic is drained."""

    stages: tuple[Stage[Any], ...]
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    max_batch: int = 50
    log: dict[str, list[Output]] = field(default_factory=dict)
    state: dict[str, dict[bytes, str]] = field(default_factory=dict)  # the local stores
    changelog: dict[str, dict[bytes, str]] = field(default_factory=dict)  # their changelogs
    pending: dict[str, list[Message]] = field(default_factory=dict)
    delivered: dict[str, Delivered] = field(default_factory=dict)  # step 3, in memory

    def __post_init__(self) -> None:
        self.consumers = {t: s for s in self.stages for t in s.inputs}
        for s in self.stages:
            self.state.setdefault(s.name, {})
            self.changelog.setdefault(s.name, {})
            self.pending.setdefault(s.name, [])
            self.delivered.setdefault(s.name, Delivered())

    def feed(self, topic: str, key: bytes, value: bytes) -> None:
        """An input record arrives on ``topic`` (e.g. raw.debt, alert-actions)."""
        self._append(Output(topic, key, value))

    def _append(self, out: Output) -> None:
        self.log.setdefault(out.topic, []).append(out)
        stage = self.consumers.get(out.topic)
        if stage is not None:
            self.pending[stage.name].append(
                Message(out.topic, out.key, out.value, out.topic, caused_at(out.headers))
            )

    def step(self, shuffle: bool = False, crash: str = "") -> bool:
        """One batch of one stage; False when nothing is pending anywhere.

        ``crash``: where the worker dies in the checkpoint (:class:`stage.Plan`):
        ``before-state``, ``after-state``, ``after-outputs`` or ``after-clears``; the batch
        comes again. ``disk-lost``: after the clears, and the local store of this stage
        is then restored from its changelog.
        """
        ready = [s for s in self.stages if self.pending[s.name]]
        if not ready:
            return False
        stage = self.rng.choice(ready) if shuffle else ready[0]
        queue = self.pending[stage.name]
        size = self.rng.randint(1, self.max_batch) if shuffle else self.max_batch
        if shuffle:
            self.rng.shuffle(queue)
        batch, self.pending[stage.name] = queue[:size], queue[size:]
        by_key: dict[bytes, list[Message]] = {}
        for m in batch:
            by_key.setdefault(m.key, []).append(m)
        states, delivered = self.state[stage.name], self.delivered[stage.name]
        stored = {k: delivered.entry(k, states[k].encode()) for k in by_key if k in states}
        todo = plan(stage, stored, by_key)
        if crash != "before-state":
            written = {k: json.dumps(v) for k, v in todo.writes.items()}
            states.update(written)  # 1. durable: the store and its changelog
            self.changelog[stage.name].update(written)
            if crash != "after-state":
                for out in todo.outputs:  # 2. sent and acknowledged
                    self._append(out)
                if crash != "after-outputs":
                    purged = {k: json.dumps(v) for k, v in todo.purges.items()}
                    states.update(purged)  # 3. an erasure's outbox gone, durably
                    self.changelog[stage.name].update(purged)
                    for k in todo.clears:  # and delivered: what the store holds now
                        delivered.mark(k, states[k].encode())
        if crash == "disk-lost":
            self.state[stage.name] = dict(self.changelog[stage.name])
        if crash:  # offsets not committed (4.): the same records come again; the worker
            # restarts, and what it knew of delivered outboxes is gone
            self.pending[stage.name] = batch + self.pending[stage.name]
            self.delivered = {s.name: Delivered() for s in self.stages}
        return True

    def run(self, shuffle: bool = False, crash_rate: float = 0.0) -> None:
        modes = ("before-state", "after-state", "after-outputs", "after-clears", "disk-lost")
        while self.step(shuffle, self.rng.choice(modes) if self.rng.random() < crash_rate else ""):
            pass

    def sweep(self, now: float) -> None:
        """The worker's timer at wall-clock ``now``: every timed stage's due records, for
        every key it holds, sent as inputs (:class:`stage.Timed`)."""
        for stage in self.stages:
            if isinstance(stage, Timed):
                for key, text in sorted(self.state[stage.name].items()):
                    for out in stage.due(json.loads(text)["state"], key, now):
                        self._append(out)

    # -- what a team, an operator or a test sees ----------------------------------------

    def latest(self, topic: str) -> dict[bytes, Output]:
        """The compacted view of a topic: the latest record per key (tombstones drop it)."""
        found: dict[bytes, Output] = {}
        for out in self.log.get(topic, []):
            if out.value is None:
                found.pop(out.key, None)
            else:
                found[out.key] = out
        return found

    def alerts(self, catalog: Catalog) -> dict[str, dict[str, Any]]:
        return {k.decode(): catalog.decode(o.value, ALERT) for k, o in self.latest(ALERTS).items()}

    def views(self, catalog: Catalog) -> dict[str, dict[str, Any]]:
        return {
            k.decode(): catalog.decode(o.value, HOUSEHOLD_VIEW)
            for k, o in self.latest(VIEW_TOPIC).items()
        }

    def review(self) -> dict[str, str]:
        """Open review entries: event id → reason."""
        return {k.decode(): dict(o.headers).get("um_reason", b"").decode()
                for k, o in self.latest(UNMATCHED).items()}  # fmt: skip

    def records(self, topic: str) -> list[Output]:
        return list(self.log.get(topic, []))


def run_all(stages: tuple[Stage[Any], ...], records: Iterable[tuple[str, bytes, bytes]]) -> Harness:
    """Every record in the given order, batch after batch: the backtest's plain run."""
    harness = Harness(stages)
    for topic, key, value in records:
        harness.feed(topic, key, value)
    harness.run()
    return harness
