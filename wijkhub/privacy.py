"""The processing register (verwerkingsregister, AVG art. 30): generated, never written.

An FG and a DPIA (AVG art. 35) need, per processing, its purpose, legal basis,
data classes, sources, recipients and retention. Each of these already exists
once in the hub as data: the rules in ``streams/rules.yaml`` (purpose = the
description a team reads, legal basis, domains read, consent purpose), the
routing in ``streams/routing.yaml`` (which team receives what), the sources'
event kinds in ``connectors/canonical.py`` and the data classes with their
retention in ``streams/topics.py``. This module renders them as Markdown, so
the register cannot say something the code does not do: ``docs/privacy/register.md``
is this output, and a unit test fails when it is out of date.

Pure functions of their inputs: the same rules, routing and settings give the
same document, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from wijkhub.connectors.canonical import SOURCE_DOMAINS, SOURCE_KINDS
from wijkhub.settings import Settings
from wijkhub.streams.routing import Router
from wijkhub.streams.rules import DUPLICATE_HELP, EARLY_DETECTION, Rule
from wijkhub.streams.ruleset import RuleSet
from wijkhub.streams.topics import (
    ALERTS_CLASS,
    AUDIT_CLASS,
    DATA_CLASSES,
    DEAD_LETTERS,
    ERASURE_REGISTER,
    HAND_OVER_CLASS,
    HOUSEHOLD_VIEW_CLASS,
    LINKING,
    RAW_CLASSES,
    REVIEW,
    SOURCE_FILES,
    STAGE_STATE,
    TEAM_ACTIONS,
    DataClass,
    Domain,
    topics_of,
)

REGISTER = Path(__file__).resolve().parents[1] / "docs" / "privacy" / "register.md"
FAMILY_NAMES = {EARLY_DETECTION: "vroegsignalering", DUPLICATE_HELP: "dubbele hulp"}
BSN = (
    "the BSN only at the connector (Wabb art. 10), replaced there by a keyed pseudonym "
    "(`person_ref`)"
)
CHANNELS = "inbox (details), webhook (the alert record), e-mail (a link only)"


@dataclass(frozen=True)
class Processing:
    """One row of the register."""

    name: str
    purpose: str
    legal_basis: str
    data_classes: tuple[DataClass, ...]
    sources: str
    recipients: str
    window_days: int = 0  # a rule: how far back it looks


def sources_of(domains: Iterable[Domain]) -> str:
    """The sources (with the kinds they may send) whose events land in ``domains``."""
    wanted = set(domains)
    return "; ".join(
        f"{source} ({', '.join(sorted(SOURCE_KINDS[source]))})"
        for source, fed in SOURCE_DOMAINS.items()
        if wanted & set(fed)
    )


def recipients_of(rule: Rule, router: Router) -> str:
    if rule.id in router.by_rule:
        who = f"{router.by_rule[rule.id]} (specialised team, wherever the household lives)"
    else:
        teams = ", ".join(sorted(set(router.by_code.values())))
        who = f"the wijkteam of the household's district ({teams}; else {router.fallback})"
    if rule.family == DUPLICATE_HELP:
        who += (
            "; every involved party that is a team, marked Betrokken: who else is involved "
            "and how to reach them, not the household's timeline (verwijsindex pattern)"
        )
    return f"{who}; by {CHANNELS}"


def rule_processing(rule: Rule, router: Router) -> Processing:
    domains = [Domain(d) for d in rule.reads]
    basis = f"{rule.legal_basis} (covers: {', '.join(rule.covers)})"
    beyond = [d for d in rule.reads if d not in rule.covers]
    if rule.consent_purpose:
        basis += (
            f"; {', '.join(beyond)} only with the person's consent for "
            f"`{rule.consent_purpose}` (the engine hides those facts otherwise)"
        )
        domains.append(Domain.TEAMS)  # the consent events
    read = tuple(dict.fromkeys(RAW_CLASSES[d] for d in domains))
    return Processing(
        name=f"Rule `{rule.id}` v{rule.version} ({FAMILY_NAMES.get(rule.family, rule.family)})",
        purpose=rule.summary,
        legal_basis=basis,
        data_classes=(*read, ALERTS_CLASS),
        sources=sources_of(domains),
        recipients=recipients_of(rule, router),
        window_days=rule.window_days,
    )


def processings(rules: RuleSet, router: Router) -> tuple[Processing, ...]:
    """Every processing of the hub: intake, linking, each rule, inbox, delivery."""
    every_rule = "the legal bases of the rules below, each for the domains it reads"
    return (
        Processing(
            "Intake: source records to pseudonymised events",
            "accept records from the source systems, check them, pseudonymise the BSN; a "
            "record that cannot be accepted is kept aside sealed, with the reason",
            f"{every_rule}; {BSN}",
            (*RAW_CLASSES.values(), DEAD_LETTERS, SOURCE_FILES),
            sources_of(Domain),
            "none outside the hub; dead letters: municipal IT (operators)",
        ),
        Processing(
            "Linking: events to households",
            "link every event, as of its own date, to the household its person or address "
            "belonged to then; match signals without BSN on name, date of birth and address, "
            "and queue for review what cannot be linked with certainty, never a guess",
            every_rule,
            (
                RAW_CLASSES[Domain.POPULATION],
                LINKING,
                STAGE_STATE,
                HOUSEHOLD_VIEW_CLASS,
                REVIEW,
                HAND_OVER_CLASS,
            ),
            sources_of([Domain.POPULATION]) + "; and every source above, for its events",
            "none outside the hub; review queue: municipal IT (operators); hand-over: kept "
            "for the new municipality (nobody reads it yet)",
        ),
        *(rule_processing(rule, router) for rule in rules.rules),
        Processing(
            "Team inbox",
            "show a team its alerts with the facts behind them and the household's timeline "
            "within the rule's domains; record the team's actions (claim, acknowledge, "
            "contact made, resolve with outcome)",
            "as the alert's rule; every view, allowed or refused, is audited before the page "
            "is sent (AVG art. 5 lid 2, art. 32)",
            (ALERTS_CLASS, HOUSEHOLD_VIEW_CLASS, TEAM_ACTIONS, AUDIT_CLASS),
            "the alerts of the rules above",
            "members of the responsible team; operators read one household view with their "
            "own token (`wijkhub household show`), audited",
        ),
        Processing(
            "Contact card",
            "show the responsible team of an open alert who is behind its facts and how to "
            "reach them: name, address, telephone and e-mail as far as a source supplied "
            "them (a vroegsignaal's DDAS client data, the BRP name and address); derived by "
            "the household stage per open alert onto `contact-cards`, removed (tombstone) "
            "when the alert closes or the person is erased",
            "the rule's contact_basis: Wgs art. 3 with the Besluit gemeentelijke "
            "schuldhulpverlening art. 3 (vroegsignalering), Wmo 2015 art. 5.1.1 / Jeugdwet "
            "(coordination); every view is audited before the card is sent",
            (
                RAW_CLASSES[Domain.DEBT],
                RAW_CLASSES[Domain.POPULATION],
                LINKING,
                STAGE_STATE,
                ALERTS_CLASS,
                AUDIT_CLASS,
            ),
            sources_of([Domain.DEBT, Domain.POPULATION]),
            "members of the alert's responsible team only (not involved teams, not the "
            "beheerder or fg); only the inbox principal reads `contact-cards`",
        ),
        Processing(
            "Erasure and subject access",
            "erase a person from every stage, view and alert on request (AVG art. 17), and "
            "export what the hub holds on a person (AVG art. 15); both audited with a case "
            "reference",
            "AVG art. 15 and 17 (the data subject's rights), art. 5 lid 2 (accountability)",
            (ERASURE_REGISTER, STAGE_STATE, ALERTS_CLASS, HOUSEHOLD_VIEW_CLASS, AUDIT_CLASS),
            "requests by the person, received by the privacy officer (fg) or an operator",
            "the privacy officer (fg) and the operator who runs the command; the export goes "
            "to the person",
        ),
        Processing(
            "Delivery: webhook and e-mail",
            "tell a team's own system of every alert change, and the team of a new alert",
            "as the alert's rule",
            (ALERTS_CLASS, DEAD_LETTERS),
            "the alerts of the rules above",
            "the team's webhook (the alert record: rule, facts with dates, no amounts, "
            "signed); the team's e-mail address (a link to the inbox, no personal data)",
        ),
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _days(days: int) -> str:
    return f"{days} d" if days else "while current"


def _retention(classes: Iterable[DataClass], settings: Settings) -> str:
    return "; ".join(f"{c.id}: {_days(settings.retention(c))}" for c in classes)


def _where(data_class: DataClass) -> str:
    return data_class.stored_in or ", ".join(f"`{t}`" for t in topics_of(data_class))


def render(rules: RuleSet, router: Router, settings: Settings, configured: bool = False) -> str:
    """The register as Markdown."""
    origin = (
        "as configured in the environment (`WIJKHUB_RETENTION_*`)"
        if configured
        else "the defaults of this version; a municipality sets its own with the settings named"
    )
    lines = [
        "# Processing register (verwerkingsregister, AVG art. 30)",
        "",
        "<!-- Generated by `wijkhub privacy register` from streams/rules.yaml, "
        "streams/routing.yaml, connectors/canonical.py and streams/topics.py: do not edit; "
        "change those and run it again (a unit test fails while this file is out of date). -->",
        "",
        "Input for the municipality's register of processing activities (AVG art. 30) and "
        "its DPIA (AVG art. 35): per processing of the hub its purpose, legal basis, data "
        "classes, sources, recipients and retention. The controller (the college van "
        "burgemeester en wethouders), the FG's contact details and the security measures are "
        "the municipality's to add. No processing decides about a person: every alert is a "
        "prompt for a professional (AVG art. 22).",
        "",
        f"Retention: {origin}. `while current`: compacted, kept until a tombstone removes the key.",
        "",
        "## Processings",
        "",
        "| processing | purpose | legal basis | data classes | sources | recipients | retention |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in processings(rules, router):
        purpose, retention = p.purpose, _retention(p.data_classes, settings)
        if p.window_days:
            purpose += f" (looks back {p.window_days} days)"
            shorter = [c.id for c in p.data_classes if 0 < settings.retention(c) < p.window_days]
            if shorter:
                retention += (
                    f" ({', '.join(shorter)} shorter than the window: a rebuild from the raw "
                    "topics sees less; the stages' state keeps what they saw)"
                )
        cells = (
            p.name,
            purpose,
            p.legal_basis,
            ", ".join(c.id for c in p.data_classes),
            p.sources,
            p.recipients,
            retention,
        )
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += [
        "",
        "## Data classes",
        "",
        "| class | what | where | retention | setting | legal source | why this default |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in DATA_CLASSES:
        cells = (
            f"`{c.id}`",
            c.title,
            _where(c),
            _days(settings.retention(c)),
            f"`{c.env}`",
            c.legal,
            c.reason,
        )
        lines.append("| " + " | ".join(_cell(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"
