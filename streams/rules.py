"""Detection conditions, evaluated on a household view, and the alerts they raise.

Which rules run, with which parameters, legal basis and data classes, is data:
``rules.yaml``, loaded and validated by :mod:`ruleset`. This module holds the
conditions those rules may use (:data:`CONDITIONS`). Each rule is a readable
prompt for a professional, never a score: it names its legal basis and the
facts that made it fire.

A condition finds *occurrences* of its pattern in a household, each named by
what sets it apart (one creditor, one crisis signal, one kind of help: the
condition's :attr:`Condition.instance`). The rule's ``dedup`` decides how many
alerts those are: ``household`` makes one alert per household (every
occurrence's facts on it), ``household+<instance>`` one per occurrence. The
alert id is derived from rule and that key (:func:`holding`), so a replay or a
redelivered event gives the same id and no second alert. docs/adr/0005.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from wijkhub.streams.household import Involvement, Signal, View
from wijkhub.streams.ids import Ids

if TYPE_CHECKING:  # lifecycle imports this module
    from wijkhub.streams.lifecycle import AlertEntry, ContactAttempt

EARLY_DETECTION = "early_detection"
DUPLICATE_HELP = "duplicate_help"
SEVERITIES = ("low", "medium", "high", "critical")  # in rising order
HOUSEHOLD = "household"  # dedup: one alert per household and rule


class Party(TypedDict):
    """An organisation or team involved with the household, and how to reach it."""

    holder: str
    kind: str
    contact: str


class AlertFact(TypedDict):
    """One fact behind an alert, as a team member reads it: never amounts or case content."""

    event_id: str
    on: str  # ISO date
    type: str
    description: str
    party: NotRequired[Party]  # an involvement's fact: who is involved


Occurrence = tuple[str, list[AlertFact]]
"""What a condition finds: the name of the occurrence (see :class:`Condition`), its facts."""


@dataclass(frozen=True)
class Rule:
    id: str
    version: int
    family: str
    severity: str
    legal_basis: str
    summary: str
    evaluate: Callable[[View], Iterator[Occurrence]]
    """Yields (occurrence, facts) for every occurrence of the condition that holds now."""
    dedup: str = HOUSEHOLD  # or "household+<the condition's instance>": see holding()
    reads: tuple[str, ...] = ()
    window_days: int = 0
    auto_resolve: bool = False  # resolve the alert when the condition no longer holds
    cooldown_days: int = 30  # after resolution, no new alert on evidence within this time
    covers: tuple[str, ...] = ()  # domains the legal basis itself allows this rule to read
    consent_purpose: str | None = None  # for the other domains it reads: consent needed
    escalate: tuple[int, str] | None = None  # (facts at least, severity): new evidence escalates
    expires_after_days: int | None = None  # duplicate help: the alert ends after this long
    # the basis for showing the persons' contact data to the responsible team (contact card)
    contact_basis: str = ""

    def expires_on(self, raised_on: str) -> dt.date | None:
        """When an alert raised on ``raised_on`` ends by itself (None: it does not)."""
        if not self.expires_after_days or not raised_on:
            return None
        return dt.date.fromisoformat(raised_on) + dt.timedelta(days=self.expires_after_days)

    def severity_for(self, facts: list[AlertFact]) -> str:
        """The rule's severity, or its escalated one once the evidence has grown enough."""
        if self.escalate and len(facts) >= self.escalate[0]:
            return self.escalate[1]
        return self.severity

    def view_for(self, view: View) -> View:
        """The view as this rule may see it: facts from domains its basis does not cover only
        for people whose consent for this purpose and domain is on record (latest: given).

        The engine applies this to every rule; a rule author cannot skip it.
        """
        beyond = set(self.reads) - set(self.covers)
        if not beyond:
            return view

        def allowed(item: Signal | Involvement) -> bool:
            domain = item.get("domain")
            if domain not in beyond:
                return True
            statements = view["consent"].get(item.get("person") or "", {})
            latest = statements.get(f"{self.consent_purpose}|{domain}")
            return bool(latest and latest["given"])

        return {
            **view,
            "signals": [s for s in view["signals"] if allowed(s)],
            "involvements": [i for i in view["involvements"] if allowed(i)],
        }


def visible_to(rule: Rule, view: View) -> View:
    """What a team member handling this rule's alert may see of the household: only the
    domains the rule reads, and beyond its legal basis only with consent (:meth:`view_for`)."""
    seen = rule.view_for(view)
    return {
        **seen,
        "signals": [s for s in seen["signals"] if s.get("domain") in rule.reads],
        "involvements": [i for i in seen["involvements"] if i.get("domain") in rule.reads],
    }


@dataclass(frozen=True)
class AlertDraft:
    alert_id: str
    rule: Rule
    facts: list[AlertFact]

    @property
    def raised_on(self) -> str:
        return max(f["on"] for f in self.facts)


def _arrears(view: View, min_amount_cents: int) -> list[Signal]:
    """New arrears signals at or above the municipality's minimum amount (repeats not counted)."""
    return [
        s
        for s in view["signals"]
        if s["type"] == "arrears"
        and not s.get("repeated")
        and s.get("amount", 0) >= min_amount_cents
    ]


def _day(signal: Signal) -> dt.date:
    return dt.date.fromisoformat(signal["on"])


ARREARS_DESCRIPTION = "Betalingsachterstand gemeld, schuldeiser: "


def creditor_of(fact: Mapping[str, Any]) -> str:
    """The creditor type (DDAS signaalpartner) of an arrears fact, as its description names
    it (the description is the one place an alert carries it); "" for another fact."""
    text = str(fact.get("description", ""))
    return text.removeprefix(ARREARS_DESCRIPTION) if text.startswith(ARREARS_DESCRIPTION) else ""


def _arrears_fact(s: Signal) -> AlertFact:
    description = f"{ARREARS_DESCRIPTION}{s['category']}"
    return {"event_id": s["event_id"], "on": s["on"], "type": "debt.arrears-signal",
            "description": description}  # fmt: skip


def arrears_from_distinct_creditors(
    view: View, window_days: int, min_creditors: int, min_amount_cents: int
) -> Iterator[Occurrence]:
    """Arrears from ``min_creditors`` kinds of creditor within the window (repeats not counted).

    The facts are the latest signal per creditor in the window that holds the most kinds
    of creditor, so a third creditor joining the pattern updates (and may escalate) the one
    alert instead of raising another.
    """
    arrears = sorted(_arrears(view, min_amount_cents), key=lambda s: (s["on"], s["event_id"]))
    best: dict[str, Signal] = {}
    for end in arrears:
        window: dict[str, Signal] = {}
        for s in arrears:
            if 0 <= (_day(end) - _day(s)).days <= window_days:
                window[s["category"]] = s
        if len(window) >= max(min_creditors, len(best) + 1):
            best = window
    if best:
        yield "", [_arrears_fact(s) for s in best.values()]


def arrears_consecutive_months(
    view: View, window_days: int, months: int, min_amount_cents: int
) -> Iterator[Occurrence]:
    """Arrears reported by one creditor in ``months`` consecutive calendar months."""
    by_creditor: dict[str, dict[int, Signal]] = {}  # creditor → month number → first signal
    for s in _arrears(view, min_amount_cents):
        day = _day(s)
        by_creditor.setdefault(s["category"], {}).setdefault(day.year * 12 + day.month, s)
    for creditor, per_month in sorted(by_creditor.items()):
        for first in sorted(per_month):
            run = [per_month[m] for m in range(first, first + months) if m in per_month]
            if len(run) == months and (_day(run[-1]) - _day(run[0])).days <= window_days:
                yield creditor, [_arrears_fact(s) for s in run]
                break


def income_loss_then_arrears(
    view: View, window_days: int, changes: list[str], min_amount_cents: int
) -> Iterator[Occurrence]:
    """A benefit ended or sanctioned, followed by any arrears within the window."""
    losses = [s for s in view["signals"] if s["type"] in {f"benefit-{c}" for c in changes}]
    if not losses:
        return
    arrears = [(a, _day(a)) for a in _arrears(view, min_amount_cents)]  # once, not per loss
    for loss in sorted(losses, key=_day):
        lost = _day(loss)
        after = [a for a, day in arrears if 0 <= (day - lost).days <= window_days]
        if after:
            change = loss["type"].removeprefix("benefit-")
            description = f"Uitkering ({loss['category']}): {BENEFIT_CHANGES[change]}"
            fact: AlertFact = {"event_id": loss["event_id"], "on": loss["on"],
                               "type": "income.benefit-changed",
                               "description": description}  # fmt: skip
            yield loss["event_id"], [fact, _arrears_fact(after[0])]


def crisis_signal(view: View, window_days: int, min_amount_cents: int) -> Iterator[Occurrence]:
    """Eviction, cut-off of energy or water, end of health insurance: contact within 3 days.

    A crisis signal holds for ``window_days`` from its own date, as of the day the
    household stage evaluates (its story runs in event time): never anchored on the
    household's newest event, so a crisis signal that arrives late still fires.
    """
    as_of = dt.datetime.fromtimestamp(view["updated_at"] / 1000, dt.UTC).date()
    for s in _arrears(view, min_amount_cents):
        if s.get("crisis") and 0 <= (as_of - _day(s)).days <= window_days:
            fact: AlertFact = {**_arrears_fact(s), "description":
                    f"Crisissignaal van schuldeiser {s['category']} (huisuitzetting, afsluiting "
                    "of beëindiging zorgverzekering dreigt)"}  # fmt: skip
            yield s["event_id"], [fact]


def same_help_different_holders(
    view: View, window_days: int, kinds: list[str], min_holders: int
) -> Iterator[Occurrence]:
    """One kind of help, actively given by ``min_holders`` or more organisations or teams."""
    for kind in kinds:
        active = [i for i in view["involvements"] if i["kind"] == kind]
        if len({i["holder"] for i in active}) >= min_holders:
            yield kind, [_involvement_fact(i) for i in active]


def _involvement_fact(i: Involvement) -> AlertFact:
    """Who is involved and how to reach them (the verwijsindex pattern): never case content."""
    contact = f" (contact: {i['contact']})" if i["contact"] else ""
    party: Party = {"holder": i["holder"], "kind": i["kind"], "contact": i["contact"]}
    return {"event_id": i["event_id"], "on": i["since"], "type": f"involvement.{i['kind']}",
            "description": f"Actief {i['kind']}-traject bij {i['holder']}{contact}",
            "party": party}  # fmt: skip


def help_in_domains_without_coordinator(
    view: View, window_days: int, min_domains: int
) -> Iterator[Occurrence]:
    """Active help of ``min_domains`` or more kinds and no regisseur on record."""
    kinds = {i["kind"] for i in view["involvements"]}
    if len(kinds) >= min_domains and view["coordinator"] is None:
        first_per_kind: dict[str, Involvement] = {}
        for i in sorted(view["involvements"], key=lambda i: i["since"]):
            first_per_kind.setdefault(i["kind"], i)
        yield "", [_involvement_fact(i) for i in first_per_kind.values()]


def open_cases_at_teams(view: View, window_days: int, min_teams: int) -> Iterator[Occurrence]:
    """Open wijkteam cases for one household at ``min_teams`` or more teams, for different kinds
    of help (cases of one kind at two teams are the same-help pattern: one alert, not two)."""
    cases = [i for i in view["involvements"] if i.get("domain") == "teams"]
    if len({i["holder"] for i in cases}) >= min_teams and len({i["kind"] for i in cases}) >= 2:
        yield "", [_involvement_fact(i) for i in cases]


def youth_help_after_debt_signal(view: View, window_days: int) -> Iterator[Occurrence]:
    """New youth care or youth protection where a debt signal came in the window before it."""
    debts = [s for s in view["signals"] if s["type"] == "arrears" and not s.get("repeated")]
    for help_ in (i for i in view["involvements"] if i["kind"] == "jeugd"):
        start = dt.date.fromisoformat(help_["since"])
        before = [s for s in debts if 0 <= (start - _day(s)).days <= window_days]
        if before:
            facts = [_involvement_fact(help_), _arrears_fact(max(before, key=_day))]
            yield help_["ref"], facts


@dataclass(frozen=True)
class Condition:
    function: Callable[..., Iterator[Occurrence]]
    parameters: dict[str, type]  # besides window_days, which every rule has
    instance: str | None = None  # what sets one occurrence apart; None: one per household

    @property
    def dedups(self) -> tuple[str, ...]:
        """The ``dedup`` values a rule with this condition may declare."""
        return (HOUSEHOLD, f"{HOUSEHOLD}+{self.instance}") if self.instance else (HOUSEHOLD,)


BENEFIT_CHANGES = {"ended": "beëindigd", "sanction": "maatregel opgelegd",
                   "suspended": "opgeschort", "granted": "toegekend"}  # fmt: skip

CONDITIONS: dict[str, Condition] = {
    "arrears_from_distinct_creditors": Condition(
        arrears_from_distinct_creditors, {"min_creditors": int, "min_amount_cents": int}
    ),
    "arrears_consecutive_months": Condition(
        arrears_consecutive_months, {"months": int, "min_amount_cents": int}, "creditor"
    ),
    "income_loss_then_arrears": Condition(
        income_loss_then_arrears, {"changes": list, "min_amount_cents": int}, "benefit-change"
    ),
    "crisis_signal": Condition(crisis_signal, {"min_amount_cents": int}, "signal"),
    "help_in_domains_without_coordinator": Condition(
        help_in_domains_without_coordinator, {"min_domains": int}
    ),
    "open_cases_at_teams": Condition(open_cases_at_teams, {"min_teams": int}),
    "youth_help_after_debt_signal": Condition(youth_help_after_debt_signal, {}, "youth-help"),
    "same_help_different_holders": Condition(
        same_help_different_holders, {"kinds": list, "min_holders": int}, "kind"
    ),
}


def holding(view: View, rules: tuple[Rule, ...], ids: Ids) -> list[AlertDraft]:
    """Every condition that holds now, as the alerts it means (open or not), one per
    dedup key: the household, or the household and the occurrence; ids keyed by ``ids``."""
    ref = view["household_ref"]
    drafts: list[AlertDraft] = []
    for rule in rules:
        found = list(rule.evaluate(rule.view_for(view)))
        if rule.dedup != HOUSEHOLD:
            drafts += [AlertDraft(ids.alert(rule.id, f"{ref}|{o}"), rule, f) for o, f in found]
        elif found:  # one alert for the household: the facts of every occurrence on it
            facts = {f["event_id"]: f for _, occurrence in found for f in occurrence}
            ordered = sorted(facts.values(), key=lambda f: (f["on"], f["event_id"]))
            drafts.append(AlertDraft(ids.alert(rule.id, ref), rule, ordered))
    return drafts


def evaluate(view: View, rules: tuple[Rule, ...], ids: Ids) -> list[AlertDraft]:
    """New alerts for this view: conditions that hold and are not already open."""
    return [d for d in holding(view, rules, ids) if d.alert_id not in view["open_alerts"]]


def _millis(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def alert_record(
    alert_id: str,
    alert: AlertEntry,
    rule: Rule,
    household_ref: str,
    municipality: str,
    correlation_id: str,
    change: str,
) -> dict[str, Any]:
    """The Alert as published after ``change``: rule, facts, state and routing; no amounts,
    no names. ``alert`` is the lifecycle's entry for it (see :mod:`lifecycle`)."""

    def at(day: str) -> dt.datetime:
        return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC)

    expires = rule.expires_on(alert["on"])
    return {
        "alert_id": alert_id,
        "rule_id": rule.id,
        "rule_version": rule.version,
        "family": rule.family,
        "severity": alert["severity"] or rule.severity,
        "state": alert["state"],
        "resolution": alert["resolution"],
        "household_ref": household_ref,
        "team": alert["team"],
        "municipality": municipality,
        "summary": f"{rule.summary}. Grondslag: {rule.legal_basis}.",
        "raised_at": at(alert["on"]),
        "facts": [
            {
                "event_id": f["event_id"],
                "type": f["type"],
                "occurred_at": at(f["on"]),
                "description": f["description"],
            }
            for f in alert["facts"]
        ],
        "correlation_id": correlation_id,
        "change": change,
        "revision": alert["revision"],
        "claimed_by": alert["claimed_by"],
        "acknowledged_at": _millis(alert["acknowledged_at"]),
        "contact_made_at": _millis(alert["contact_made_at"]),
        "published_at": _millis(alert["published_at"]),
        "expires_at": at(expires.isoformat()) if expires else None,
        "involved": _parties(alert["facts"]) if rule.family == DUPLICATE_HELP else [],
        "contact_attempts": [_attempt(a) for a in alert.get("contact_attempts", [])],
        "warm_handover": alert.get("warm_handover", False),
        "end_result": alert.get("end_result"),
    }


def _attempt(a: ContactAttempt) -> dict[str, Any]:
    """A lifecycle contact attempt as the Alert's ContactAttempt record."""
    return {
        "kind": a["kind"],
        "on": dt.date.fromisoformat(a["on"]),
        "day_part": a["day_part"],
        "reached": a["reached"],
        "actor": a["actor"],
    }


def _parties(facts: list[AlertFact]) -> list[Party]:
    """The organisations and teams involved, once each, in the order of the facts."""
    seen: dict[tuple[str, str], Party] = {}
    for f in facts:
        party = f.get("party")
        if party:
            seen.setdefault((party["holder"], party["kind"]), party)
    return list(seen.values())
