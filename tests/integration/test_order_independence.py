"""Same inputs, same alerts on the real broker: one scenario, four file orders, a replay.

Each order runs under a fresh topic prefix and consumer group with its own worker
process, as a municipality starting from empty topics would. The scenario is
``wijkhub.testing.tricky``: two families at one address, a move, signals without
BSN, relation rows apart from the registrations, DDAS months out of order,
trajectories that end, a late crisis signal. Every order must give the same alerts
(id, rule, team, severity, state, facts), the same household views and no second
``raised`` for any alert id, also after ingesting everything again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter

import pytest

from wijkhub.admin import prepare
from wijkhub.broker import free_port
from wijkhub.connectors.alerts import iter_alerts
from wijkhub.connectors.intake import Intake
from wijkhub.schemas.registry import HOUSEHOLD_VIEW, Catalog
from wijkhub.streams.topics import HOUSEHOLD_VIEW as VIEW_TOPIC
from wijkhub.supervise import WorkerProcess
from wijkhub.testing import tricky

from builders import Hub

pytestmark = pytest.mark.timeout(900)
SCENARIO = tricky(seed=4)
FILES = SCENARIO.by_source()


def relations_apart(files: dict[str, list[dict]]) -> list[tuple[str, list[dict]]]:
    """BRP registrations first, then every signal, then the BRP relation rows."""
    population = files["population"]
    registrations = [r for r in population if r["kind"] != "relation_changed"]
    relations = [r for r in population if r["kind"] == "relation_changed"]
    signals = [(s, rows) for s, rows in files.items() if s != "population"]
    return [("population", registrations), *signals, ("population", relations)]


ORDERS = {
    "brp-first": [(s, FILES[s]) for s in ("population", "schuldhulp", "vroegsignalering")],
    "signals-first": [(s, FILES[s]) for s in ("vroegsignalering", "schuldhulp", "population")],
    "relations-after-signals": relations_apart(FILES),
    "each-file-reversed": [(s, list(reversed(FILES[s]))) for s in
                           ("schuldhulp", "population", "vroegsignalering")],
}  # fmt: skip


def ingest(settings, files: list[tuple[str, list[dict]]]) -> None:
    for source, rows in files:
        intake = Intake(settings, source)
        try:
            report = intake.ingest(b"\n".join(json.dumps(r).encode() for r in rows), source)
        finally:
            intake.close()
        assert report.dead_lettered == 0, report.as_dict()


def final_alerts(settings) -> tuple[dict, Counter]:
    latest, raised = {}, Counter()
    for a in iter_alerts(settings, follow=False):
        latest[a["alert_id"]] = a
        raised[a["alert_id"]] += a["change"] == "raised"
    alerts = {aid: (a["rule_id"], a["team"], a["severity"], a["state"],
                    sorted(f["event_id"] for f in a["facts"]))
              for aid, a in latest.items() if a["change"] != "withdrawn"}  # fmt: skip
    return alerts, raised


def views(hub: Hub) -> dict:
    catalog = Catalog()
    found = {}
    for record in hub.records(VIEW_TOPIC):
        if record.value is None:  # a household nothing belongs to any more
            found.pop(record.key.decode(), None)
            continue
        view = catalog.decode(record.value, HOUSEHOLD_VIEW)
        found[record.key.decode()] = (sorted(view["members"]), view["address_ref"], sorted(
            s["event_id"] for s in view["signals"]), sorted(i["ref"] for i in
                                                            view["involvements"]))  # fmt: skip
    return found


@pytest.fixture(scope="module")
def runs(hub_settings, tmp_path_factory):
    """Per order: (alerts, raised per id, views, alerts after a full replay, backtest)."""
    results = {}
    for name, files in ORDERS.items():
        run = uuid.uuid4().hex[:6]
        settings = hub_settings.with_(
            app_id=f"wijkhub-order-{run}", topic_prefix=f"order-{run}.",
            data_dir=tmp_path_factory.mktemp(f"order-{name}"), web_port=free_port(),
        )  # fmt: skip
        prepare(settings)
        worker = WorkerProcess(settings, settings.data_dir / "worker.log").start()
        try:
            hub = Hub(settings, worker)
            ingest(settings, files)
            hub.wait_drained(120)
            alerts, raised = final_alerts(settings)
            seen = views(hub)
            ingest(settings, ORDERS["brp-first"])  # everything again
            hub.wait_drained(120)
            replayed, raised_after = final_alerts(settings)
        finally:
            worker.stop()
        backtest = subprocess.run(
            [sys.executable, "-m", "wijkhub", "rules", "backtest", "--from", "2020-01-01",
             "--to", "2030-12-31", "--json"],
            env={**os.environ, **settings.to_env()}, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert backtest.returncode == 0, backtest.stderr
        results[name] = (alerts, raised, seen, replayed, raised_after,
                         json.loads(backtest.stdout))  # fmt: skip
    return results


def test_every_file_order_gives_the_planted_alerts(runs):
    for name, (alerts, *_rest) in runs.items():
        per_rule = Counter(a[0] for a in alerts.values())
        print(name, dict(sorted(per_rule.items())))  # for the closing note
        assert per_rule == SCENARIO.expected, name


def test_every_file_order_gives_the_same_alerts_and_views(runs):
    (first, _, first_views, *_), *others = runs.values()
    for alerts, _, seen, *_ in others:
        assert alerts == first
        assert seen == first_views


def test_a_full_replay_raises_nothing_new_and_no_alert_is_raised_twice(runs):
    for alerts, raised, _, replayed, raised_after, _ in runs.values():
        assert replayed == alerts
        assert max(raised_after.values()) == 1 and raised_after == raised


def test_the_backtest_counts_what_the_worker_raised(runs):
    for alerts, *_, backtest in runs.values():
        worker = Counter((a[0], a[1]) for a in alerts.values())
        counted = Counter({(r["rule"], r["team"]): r["active"] for r in backtest["alerts"]})
        print("backtest", dict(counted), "worker", dict(worker))
        assert +counted == worker
