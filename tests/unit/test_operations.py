"""Operations material in deploy/: alert rules, dashboard and compose agree with the code."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from wijkhub.metrics import Metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BUILTIN = {"up"}  # series Prometheus makes itself


def catalogue_series() -> set[str]:
    """Every series name the metrics catalogue can expose."""
    names = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names |= {family.name + s for s in ("_bucket", "_sum", "_count")}
        else:
            names.add(family.name)
    return names


def used_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(wijkhub_[a-z_]+|up)\b", expr))


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "wijkhub.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


def test_every_dashboard_query_uses_only_catalogue_metrics():
    known = catalogue_series() | BUILTIN
    exprs = dashboard_exprs()
    assert len(exprs) >= 10
    for expr in exprs:
        assert used_names(expr) and used_names(expr) <= known, expr


def test_every_alert_rule_uses_only_catalogue_metrics():
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    assert len(exprs) == 8
    for expr in exprs:
        assert used_names(expr) <= catalogue_series() | BUILTIN, expr


def test_metric_names_follow_prometheus_conventions_and_labels_are_bounded():
    for family in Metrics().registry.collect():
        assert re.fullmatch(r"wijkhub_[a-z_]+", family.name)
        assert family.documentation, family.name
    forbidden = {
        "household",
        "household_ref",
        "person",
        "person_ref",
        "event_id",
        "bsn",
        "alert_id",
    }
    for metric in vars(Metrics()).values():
        labels = set(getattr(metric, "_labelnames", ()))
        assert not labels & forbidden, labels


def promtool(*args: str) -> subprocess.CompletedProcess:
    if shutil.which("promtool") is None:
        pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package")
    return subprocess.run(["promtool", *args], cwd=DEPLOY / "prometheus",
                          capture_output=True, text=True, timeout=120)  # fmt: skip


@pytest.mark.slow  # promtool in subprocesses
def test_promtool_checks_the_rules_and_runs_their_unit_tests():
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr


SECRET_SETTINGS = {f"WIJKHUB_{n}" for n in ("PSEUDONYM_KEY", "DEAD_LETTER_KEY", "ID_KEY",
                   "ACTION_KEYS", "OIDC_CLIENT_SECRET", "INGEST_TOKENS", "OPERATOR_TOKENS",
                   "WEBHOOK_SECRETS", "SMTP_PASSWORD")}  # fmt: skip


def test_compose_runs_the_same_configs_and_topic_definitions():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"kafka", "setup", "worker-1", "worker-2", "prometheus", "grafana"} <= services.keys()
    assert services["kafka"]["image"].startswith("apache/kafka:")
    volumes = " ".join(services["prometheus"]["volumes"] + services["grafana"]["volumes"])
    for path in ("prometheus/prometheus.yml", "prometheus/alerts.yml", "grafana/dashboards"):
        assert f"./{path}" in volumes
    # credentials, topics (streams/topics.py) and ACLs (streams/access.py), then the services
    assert services["setup"]["command"][:2] == ["cluster", "setup"]
    assert (
        services["worker-1"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    )
    assert services["worker-1"]["environment"]["WIJKHUB_WEB_HOST"] == "0.0.0.0"
    for name in ("workers", "intake", "connectors", "inbox", "delivery"):
        listed = json.loads(
            (DEPLOY / "prometheus" / "targets-compose" / f"{name}.json").read_text()
        )
        hosts = {t.split(":")[0] for group in listed for t in group["targets"]}
        assert hosts <= services.keys(), (name, hosts)
    kafka = services["kafka"]["environment"]
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    # secured as everywhere: no plaintext listener, no ACL means no access
    assert "PLAINTEXT" not in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"]
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    for name in ("worker-1", "worker-2", "intake", "filedrop", "inbox", "delivery"):
        env = services[name]["environment"]
        assert env["WIJKHUB_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        [own] = [v for v in services[name]["volumes"] if isinstance(v, dict)]
        assert own["target"] == env["WIJKHUB_KAFKA_CREDENTIALS_DIR"] and own["read_only"], name
    # every secret reaches a container as a file (compose secrets), never in its environment
    secret_names = ("KEY", "SECRET", "TOKENS", "PASSWORD")
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if key.startswith("WIJKHUB_") and any(word in key for word in secret_names):
                assert key.endswith("_FILE"), (name, key)
            if key.removesuffix("_FILE") in SECRET_SETTINGS:
                assert value.startswith("/run/secrets/"), (name, key)
                assert value.rsplit("/", 1)[1] in service["secrets"], (name, key)
    # staff sign in at the municipality's provider: OIDC, never the development mode
    inbox = services["inbox"]["environment"]
    assert inbox["WIJKHUB_INBOX_AUTH"] == "oidc" and "WIJKHUB_OIDC_ISSUER" in inbox
    # no demo accounts unless the teams file is chosen explicitly
    assert "teams.demo.yaml" not in json.dumps(services["inbox"]["volumes"]).replace(
        "(./teams.demo.yaml only for a demo)", ""
    )


def test_the_readme_documents_every_metric():
    readme = (DEPLOY.parent / "README.md").read_text()
    for name in catalogue_series():
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert f"`{family}`" in readme, family
