"""A real Prometheus scrapes a running worker, with the scrape config from deploy/prometheus.

Also: ``promtool check metrics`` on the live /metrics page. Prometheus runs on
loopback with its own storage in a temporary directory; targets are the test
worker (file service discovery, as in deploy/prometheus/targets/).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from wijkhub.broker import free_port

from builders import series

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
pytestmark = pytest.mark.timeout(300)


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is missing: .ci/run installs Debian's prometheus package")
    return found


@pytest.fixture(scope="module")
def prometheus(worker, tmp_path_factory):
    home = tmp_path_factory.mktemp("prometheus")
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(DEPLOY / "alerts.yml")]
    (home / "targets").mkdir()
    target = worker.base_url.removeprefix("http://")
    for name, targets in (("workers", [target]), ("intake", []), ("connectors", [])):
        (home / "targets" / f"{name}.json").write_text(json.dumps([{"targets": targets}]))
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    proc = subprocess.Popen(
        [_binary("prometheus"), f"--config.file={home / 'prometheus.yml'}",
         f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=(home / "prometheus.log").open("w"),
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/-/ready", timeout=1)
            break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail("prometheus did not become ready: " + (home / "prometheus.log").read_text())
    yield base
    proc.terminate()
    proc.wait(20)


def query(base: str, expr: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_promtool_accepts_the_live_metrics_page(hub):
    page = hub.worker.metrics_text()
    checked = subprocess.run([_binary("promtool"), "check", "metrics"], input=page,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_scrapes_the_worker_while_events_flow(hub, prometheus, plant):
    def consumed_by_person_stage() -> float:
        return sum(v for labels, v in series(hub.worker.metrics_text(),
                                             "wijkhub_events_consumed_total")
                   if labels["stage"] == "person")  # fmt: skip

    hub.wait_drained()
    before = consumed_by_person_stage()
    p = plant.person("1071GG", "7")
    hub.ingest("population", [p])
    hub.ingest(
        "vroegsignalering",
        [
            plant.arrears("1071GG", "7", "Huur", "2026-03-01"),
            plant.arrears("1071GG", "7", "Energie", "2026-03-20"),
        ],
    )
    hub.wait_drained()
    expected = consumed_by_person_stage()
    assert expected - before == 3  # this test's registration and two signals
    expr = 'sum(wijkhub_events_consumed_total{job="wijkhub-worker", stage="person"})'
    deadline, seen = time.monotonic() + 60, None
    while time.monotonic() < deadline:
        result = query(prometheus, expr)
        seen = float(result[0]["value"][1]) if result else None
        if seen == expected:
            break
        time.sleep(1)
    print(f"\nPrometheus: {expr} = {seen} (worker /metrics: {expected})")
    assert seen == expected
    [up] = query(prometheus, 'up{job="wijkhub-worker"}')
    assert up["value"][1] == "1"
    lag_topics = {r["metric"]["topic"] for r in query(prometheus, "wijkhub_consumer_lag_records")}
    assert {"raw.population", "raw.debt", "by-address", "linked"} <= lag_topics
    [held] = query(prometheus, "wijkhub_commits_held_partitions")
    assert held["value"][1] == "0"  # a healthy worker's commits never wait for a record
    raised = query(prometheus, "sum by (rule) (wijkhub_alerts_raised_total)")
    assert {r["metric"]["rule"] for r in raised} >= {"VS-ARREARS-2-CREDITORS-90D"}
    with urllib.request.urlopen(prometheus + "/api/v1/rules", timeout=10) as answer:
        groups = json.loads(answer.read())["data"]["groups"]
    assert sorted(r["name"] for g in groups for r in g["rules"]) == [
        "WijkhubAlertDeliveryFailing", "WijkhubCommitsHeld", "WijkhubConsumerLagGrowing",
        "WijkhubCrisisAlertNotAcknowledged", "WijkhubDeadLettersSpiking", "WijkhubDeliveryDown",
        "WijkhubSourceStalled",
        "WijkhubWorkerDown"]  # fmt: skip
