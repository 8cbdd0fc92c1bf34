"""``wijkhub rules backtest`` on the history the other tests recorded on the real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import yaml

from wijkhub.streams import ruleset


def backtest(hub, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "wijkhub", "rules", "backtest", "--from", "2025-01-01",
         "--to", "2027-12-31", "--json", *args],
        env={**os.environ, **hub.settings.to_env()}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_backtest_counts_what_the_workers_raised_and_compares_a_stricter_file(hub, tmp_path):
    hub.wait_drained()
    doc = yaml.safe_load(ruleset.RULES_FILE.read_text())
    for rule in doc["rules"]:
        if rule["id"] == "VS-ARREARS-2-CREDITORS-90D":
            rule["condition"]["min_creditors"] = 3
    stricter = tmp_path / "rules.yaml"
    stricter.write_text(yaml.safe_dump(doc))
    result = backtest(hub, "--rules", str(stricter))
    rows = {(r["rule"], r["team"]): r for r in result["alerts"]}
    two_creditors = [r for (rule, _), r in rows.items() if rule == "VS-ARREARS-2-CREDITORS-90D"]
    raised = {a["alert_id"] for a in hub.alerts() if a["rule_id"] == "VS-ARREARS-2-CREDITORS-90D"}
    assert sum(r["active"] for r in two_creditors) == len(raised) > 0
    assert sum(r["candidate"] for r in two_creditors) < len(raised)
    assert all(r["difference"] == r["candidate"] - r["active"] for r in rows.values())
    assert result["events"] > 100
