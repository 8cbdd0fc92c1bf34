"""The processing register (docs/privacy/register.md) is generated from the rules, the
routing and the data classes, and the committed file is what they give today: changing
streams/rules.yaml (or a data class) without regenerating it fails here."""

from __future__ import annotations

import yaml
from typer.testing import CliRunner

from wijkhub import cli
from wijkhub.connectors.canonical import SOURCE_KINDS
from wijkhub.privacy import REGISTER, processings, render, sources_of
from wijkhub.settings import Settings
from wijkhub.streams import ruleset
from wijkhub.streams.routing import Router
from wijkhub.streams.topics import DATA_CLASSES, SOURCE_FILES, Domain

RUN = "run `.venv/bin/wijkhub privacy register` and commit docs/privacy/register.md"


def shipped() -> str:
    return render(ruleset.load(), Router.load(), Settings())


def test_the_committed_register_is_up_to_date():
    assert REGISTER.read_text(encoding="utf-8") == shipped(), RUN


def test_every_rule_is_a_processing_with_its_purpose_basis_and_sources():
    rules = ruleset.load()
    rows = {p.name: p for p in processings(rules, Router.load())}
    for rule in rules.rules:
        [row] = [p for name, p in rows.items() if f"`{rule.id}`" in name]
        assert row.purpose == rule.summary and rule.legal_basis in row.legal_basis
        assert {c.id for c in row.data_classes} >= {f"raw-{d}" for d in rule.reads}
        assert row.sources and row.recipients
    consent = rows["Rule `DH-3-DOMAINS-NO-REGISSEUR` v1 (dubbele hulp)"]
    assert "consent for `wmo-regie`" in consent.legal_basis
    crisis = rows["Rule `VS-CRISIS-SIGNAL` v1 (vroegsignalering)"]
    assert crisis.recipients.startswith("schuldhulp-crisisteam")  # routing.yaml: specialised
    assert {"Intake: source records to pseudonymised events", "Linking: events to households",
            "Team inbox", "Delivery: webhook and e-mail"} <= rows.keys()  # fmt: skip
    # every data class is in some processing, so the register accounts for all of them
    assert {c for p in rows.values() for c in p.data_classes} == set(DATA_CLASSES)


def test_sources_are_the_connectors_sources_of_each_domain_with_their_kinds():
    assert sources_of([Domain.DEBT]) == (
        "vroegsignalering (arrears_signal); schuldhulp (debt_help_changed)"
    )
    assert sources_of([Domain.YOUTH]).startswith("ijw (provision_requested, ")
    every = sources_of(Domain)
    assert all(f"{source} (" in every for source in SOURCE_KINDS)


def test_a_changed_rules_file_changes_the_register(tmp_path):
    doc = yaml.safe_load(ruleset.RULES_FILE.read_text())
    doc["rules"][0]["description"] = "Een andere omschrijving"
    changed = tmp_path / "rules.yaml"
    changed.write_text(yaml.safe_dump(doc, allow_unicode=True))
    text = render(ruleset.load(changed), Router.load(), Settings())
    assert text != shipped() and "Een andere omschrijving" in text


def test_the_register_shows_the_configured_retention_when_asked():
    s = Settings.from_env({"WIJKHUB_FILEDROP_PURGE_DAYS": "7"})
    text = render(ruleset.load(), Router.load(), s, configured=True)
    assert f"| 7 d | `{SOURCE_FILES.env}` |" in text and "as configured" in text


def test_check_exits_1_on_an_out_of_date_file_and_writing_it_fixes_that(tmp_path):
    target = tmp_path / "register.md"
    runner = CliRunner()
    args = ["privacy", "register", "--output", str(target)]
    missing = runner.invoke(cli.app, [*args, "--check"])
    assert missing.exit_code == 1 and "out of date" in missing.output
    assert runner.invoke(cli.app, args).exit_code == 0
    assert target.read_text(encoding="utf-8") == shipped()
    assert runner.invoke(cli.app, [*args, "--check"]).exit_code == 0
    target.write_text(shipped().replace("730 d", "731 d"), encoding="utf-8")
    assert runner.invoke(cli.app, [*args, "--check"]).exit_code == 1
