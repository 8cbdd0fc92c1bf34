"""The household view as plain data, and how a linked event changes it.

Pure functions over JSON-ready dicts (the Faust table stores them as they
are): no Kafka here, so the logic is unit-tested without a broker and the
agent stays a thin loop. Applying the same event twice changes nothing,
which is what makes at-least-once delivery and replays safe.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, Unpack, cast

if TYPE_CHECKING:  # for their types only: both modules import this one
    from wijkhub.streams.household_stage import StoredFact
    from wijkhub.streams.lifecycle import AlertEntry

Payload = dict[str, Any]

# "from" is a keyword: TypedDict's functional form.
MemberPeriod = TypedDict("MemberPeriod", {"person_ref": str, "from": str, "until": str | None})
"""One person's membership of the household (ISO dates; ``until`` None: still a member)."""


class ArrearsDetails(TypedDict, total=False):
    """What an arrears signal carries besides every signal's fields (others carry none)."""

    since: str | None  # the arrears' own start (ISO date), when the creditor gave it
    amount: int  # cents
    crisis: bool
    repeated: bool  # the same arrears reported again: kept, but not counted as new


class Signal(ArrearsDetails):
    """Something that happened to the household's finances or help, as a rule reads it."""

    event_id: str
    type: str  # arrears | benefit-<change> | provision-requested
    category: str  # creditor type, benefit type or product category
    on: str  # ISO date
    domain: str
    person: str | None


class Involvement(TypedDict):
    """Help the household receives: what kind, from whom, since when, how to reach them."""

    kind: str  # see CASE_KIND and PROVISION_KIND
    holder: str  # the organisation or team
    ref: str  # its case, provision or trajectory id
    since: str  # ISO date
    contact: str
    # Not in a view read back from a published record (the HouseholdView has no event ids):
    event_id: NotRequired[str]
    person: str | None
    domain: str  # teams: a wijkteam case; care/youth/debt: a provider's help


class Coordinator(TypedDict):
    team: str
    contact: str
    since: str  # ISO date


class Consent(TypedDict):
    given: bool
    on: str  # ISO date


class View(TypedDict):
    """What the household stage knows of one household, as the rules read it."""

    household_ref: str
    address_ref: str | None
    members: list[str]
    member_periods: list[MemberPeriod]
    involvements: list[Involvement]
    signals: list[Signal]  # in date order, at most MAX_SIGNALS
    coordinator: Coordinator | None
    consent: dict[str, dict[str, Consent]]  # person → "purpose|domain" → latest statement
    open_alerts: dict[str, AlertEntry | str]  # alert id → entry (or, older, its rule id)
    district: dict[str, object] | None
    seen: list[str]  # event ids, at most MAX_SEEN
    updated_at: int  # epoch ms: "now" for the rules (event time)
    # Set by the lifecycle once it resolved an alert or applied an action:
    resolved_alerts: NotRequired[dict[str, str]]  # alert id → resolved on (ISO date)
    applied_actions: NotRequired[list[str]]  # action ids, at most MAX_ACTIONS_REMEMBERED


# Involvement kinds, by where they come from.
CASE_KIND = {
    "schuldhulp": "schuldhulp",
    "wmo": "zorg",
    "jeugd": "jeugd",
    "participatie": "participatie",
    "breed": "breed",
}
PROVISION_KIND = {"care": "zorg", "youth": "jeugd"}
MAX_SIGNALS = 200  # keep the view bounded; rule windows are at most 180 days
MAX_SEEN = 500  # event ids remembered for idempotency of non-signal events


def new_view(household_ref: str) -> View:
    return {
        "household_ref": household_ref,
        "address_ref": None,
        "members": [],
        "member_periods": [],  # [{"person_ref", "from", "until"}], ISO dates
        "involvements": [],
        "signals": [],
        "coordinator": None,
        "consent": {},
        "open_alerts": {},
        "district": None,
        "seen": [],
        "updated_at": 0,
    }


def _iso(d: dt.date | dt.datetime | str) -> str:
    """A date as ISO text; facts kept in a stage's state already hold it as text."""
    return (d if isinstance(d, str) else d.isoformat())[:10]


@dataclass(frozen=True)
class Fact:
    """What :func:`apply` needs of one event, decoded once."""

    event_id: str
    domain: str
    person: str | None
    payload: Payload


def apply(view: View, linked: dict[str, Any]) -> bool:
    """Fold one linked event into the view; return False if it was already there."""
    event = linked["event"]
    env, subject = event["envelope"], event["subject"]
    name, payload = event["payload"]
    fact = Fact(env["event_id"], env["domain"], subject.get("person_ref"), payload)
    if fact.event_id in view["seen"]:
        return False
    changed = False
    left = linked.get("member_change") == "left"  # the event is about their new address
    if subject.get("address_ref") and view["address_ref"] is None and not left:
        view["address_ref"] = subject["address_ref"]
        changed = True
    handler = _member_left if left else HANDLERS.get(name.rsplit(".", 1)[-1])
    if handler is not None:
        changed |= handler(view, fact)
    if changed:
        view["seen"].append(fact.event_id)
        del view["seen"][:-MAX_SEEN]
        millis = int(env["occurred_at"].timestamp() * 1000)
        view["updated_at"] = max(view["updated_at"], millis)
    return changed


def fold(view: View, fact: StoredFact) -> None:
    """Fold one stored fact (see :mod:`household_stage`) into the view, in event-date order.

    Unlike :func:`apply`, membership is not a fact here (it comes from the address
    stage as periods), and the caller guarantees each fact is folded once.
    """
    handler = HANDLERS.get(fact["name"].rsplit(".", 1)[-1])
    if handler is not None and fact["name"] not in MEMBERSHIP_EVENTS:
        handler(view, Fact(fact["id"], fact["domain"], fact["person"], fact["payload"]))


def ends_something(name: str, payload: Payload) -> bool:
    """Facts that end an involvement sort after those that start one on the same day."""
    short = name.rsplit(".", 1)[-1]
    return (
        short == "CaseClosed"
        or (short == "ProvisionStopped" and bool(payload.get("definitive")))
        or (short in ("DebtHelpChanged",) and payload.get("change") == "ended")
        or (short == "ToewijzingChanged" and payload.get("change") == "withdrawn")
    )


def _member_joined(view: View, f: Fact) -> bool:
    if f.person and f.person not in view["members"]:
        view["members"].append(f.person)
        return True
    return False


def _member_left(view: View, f: Fact) -> bool:
    if f.person in view["members"]:
        view["members"].remove(f.person)
        return True
    return False


def _add_signal(
    view: View, f: Fact, type_: str, category: str, on: dt.date, **extra: Unpack[ArrearsDetails]
) -> bool:
    if any(s["event_id"] == f.event_id for s in view["signals"]):
        return False
    signal: Signal = {"event_id": f.event_id, "type": type_, "category": category, "on": _iso(on),
                      "domain": f.domain, "person": f.person, **extra}  # fmt: skip
    view["signals"].append(signal)
    view["signals"].sort(key=lambda s: s["on"])
    del view["signals"][:-MAX_SIGNALS]
    return True


def _arrears(view: View, f: Fact) -> bool:
    """A repeated signal (same partner, same arrears, amount not higher) is marked, not new."""
    p = f.payload
    since = _iso(p["arrears_since"]) if p.get("arrears_since") else None
    repeated = since is not None and any(
        s["type"] == "arrears"
        and s["category"] == p["creditor_type"]
        and s.get("since") == since
        and s.get("amount", 0) >= p["amount_cents"]
        for s in view["signals"]
    )
    return _add_signal(
        view,
        f,
        "arrears",
        p["creditor_type"],
        p["signal_date"],
        since=since,
        amount=p["amount_cents"],
        crisis=p.get("crisis", False),
        repeated=repeated,
    )


def _benefit(view: View, f: Fact) -> bool:
    p = f.payload
    return _add_signal(view, f, f"benefit-{p['change']}", p["benefit_type"], p["on"])


def _provision_requested(view: View, f: Fact) -> bool:
    p = f.payload
    return _add_signal(view, f, "provision-requested", p["product_category"], p["requested_start"])


def _add_involvement(
    view: View, f: Fact, kind: str, holder: str, ref: str, since: dt.date, contact: str = ""
) -> bool:
    if any(i["ref"] == ref and i["kind"] == kind for i in view["involvements"]):
        return False
    view["involvements"].append(
        {
            "kind": kind,
            "holder": holder,
            "ref": ref,
            "since": _iso(since),
            "contact": contact,
            "event_id": f.event_id,
            "person": f.person,
            "domain": f.domain,  # teams: a wijkteam case; care/youth/debt: a provider's help
        }
    )
    return True


def _end_involvement(view: View, kind: str, holder: str, ref: str) -> bool:
    before = len(view["involvements"])
    view["involvements"] = [
        i
        for i in view["involvements"]
        if not (i["kind"] == kind and i["holder"] == holder and i["ref"] == ref)
    ]
    return len(view["involvements"]) != before


def _provision_started(view: View, f: Fact) -> bool:
    p = f.payload
    kind = PROVISION_KIND[f.domain]
    return _add_involvement(view, f, kind, p["provider"], p["provision_id"], p["started_on"])


def _provision_stopped(view: View, f: Fact) -> bool:
    p = f.payload
    if not p["definitive"]:
        return False  # a temporary stop (reason 20) keeps the involvement
    return _end_involvement(view, PROVISION_KIND[f.domain], p["provider"], p["provision_id"])


def _toewijzing_changed(view: View, f: Fact) -> bool:
    """Assignments diffed from 301 snapshots by the link stage: add, or withdraw."""
    p = f.payload
    kind = PROVISION_KIND[f.domain]
    if p["change"] == "withdrawn":
        return _end_involvement(view, kind, p["provider"], p["number"])
    return _add_involvement(view, f, kind, p["provider"], p["number"], p["start_on"])


def _debt_help(view: View, f: Fact) -> bool:
    p = f.payload
    if p["change"] == "ended":
        return _end_involvement(view, "schuldhulp", p["organisation"], p["trajectory_id"])
    return _add_involvement(
        view, f, "schuldhulp", p["organisation"], p["trajectory_id"], p["on"], p.get("contact", "")
    )


def _case_opened(view: View, f: Fact) -> bool:
    p = f.payload
    return _add_involvement(
        view, f, CASE_KIND[p["case_type"]], p["team"], p["case_id"], p["opened_on"], p["contact"]
    )


def _case_closed(view: View, f: Fact) -> bool:
    p = f.payload
    return any(
        [_end_involvement(view, kind, p["team"], p["case_id"]) for kind in set(CASE_KIND.values())]
    )


def _coordinator(view: View, f: Fact) -> bool:
    p = f.payload
    coordinator: Coordinator = {"team": p["team"], "contact": p["contact"], "since": _iso(p["on"])}
    if view["coordinator"] == coordinator:
        return False
    view["coordinator"] = coordinator
    return True


def _consent(view: View, f: Fact) -> bool:
    """Consent is per person, purpose and domain; the latest statement counts."""
    if not f.person:
        return False
    p = f.payload
    key = f"{p['purpose']}|{p['domain']}"
    entry: Consent = {"given": p["given"], "on": _iso(p["on"])}
    per_person = view["consent"].setdefault(f.person, {})
    if key in per_person and per_person[key]["on"] > entry["on"]:
        return False  # an older statement arriving late does not override a newer one
    per_person[key] = entry
    return True


MEMBERSHIP_EVENTS = (
    "nl.wijkhub.population.PersonRegistered",
    "nl.wijkhub.population.PersonDeceased",
)
HANDLERS: dict[str, Callable[[View, Fact], bool]] = {
    "PersonRegistered": _member_joined,
    "PersonDeceased": _member_left,
    "ArrearsSignal": _arrears,
    "BenefitChanged": _benefit,
    "ProvisionRequested": _provision_requested,
    "ProvisionStarted": _provision_started,
    "ProvisionStopped": _provision_stopped,
    "ToewijzingChanged": _toewijzing_changed,
    "DebtHelpChanged": _debt_help,
    "CaseOpened": _case_opened,
    "CaseClosed": _case_closed,
    "CoordinatorAssigned": _coordinator,
    "ConsentChanged": _consent,
}


def to_record(view: View) -> dict[str, Any]:
    """The view in the shape of the HouseholdView Avro schema (published contract)."""
    return {
        "household_ref": view["household_ref"],
        "address_ref": view["address_ref"],
        "members": list(view["members"]),
        "member_periods": [
            {
                "person_ref": m["person_ref"],
                "from": dt.date.fromisoformat(m["from"]),
                "until": dt.date.fromisoformat(m["until"]) if m["until"] else None,
            }
            for m in view.get("member_periods", [])
        ],
        "involvements": [
            {
                "kind": i["kind"],
                "holder": i["holder"],
                "ref": i["ref"],
                "since": dt.date.fromisoformat(i["since"]),
                "contact": i["contact"],
                "domain": i.get("domain") or "",
                "person_ref": i.get("person"),
            }
            for i in view["involvements"]
        ],
        "signals": [
            {
                "event_id": s["event_id"],
                "type": s["type"],
                "category": s["category"],
                "on": dt.date.fromisoformat(s["on"]),
                "domain": s.get("domain") or "",
                "person_ref": s.get("person"),
            }
            for s in view["signals"]
        ],
        "district": view.get("district"),
        "coordinator": (
            {**view["coordinator"], "since": dt.date.fromisoformat(view["coordinator"]["since"])}
            if view["coordinator"]
            else None
        ),
        "consent": [
            {
                "person_ref": person,
                "purpose": key.split("|", 1)[0],
                "domain": key.split("|", 1)[1],
                "given": entry["given"],
                "on": dt.date.fromisoformat(entry["on"]),
            }
            for person, statements in sorted(view["consent"].items())
            for key, entry in sorted(statements.items())
        ],
        "open_alerts": sorted(view["open_alerts"]),
        "updated_at": dt.datetime.fromtimestamp(view["updated_at"] / 1000, dt.UTC),
    }


def from_record(record: dict[str, Any]) -> View:
    """A published HouseholdView back in the shape the rules read (for the team inbox, which
    shows a household only as far as an alert's rule may see it)."""
    view = new_view(record["household_ref"])
    # The decoded record's items enter the view's shapes here (the casts): its fields are
    # the view's, with dates as ISO text, and person_ref also under the name the rules read.
    consent: dict[str, dict[str, Consent]] = {}
    for c in record["consent"]:
        consent.setdefault(c["person_ref"], {})[f"{c['purpose']}|{c['domain']}"] = {
            "given": c["given"], "on": _iso(c["on"])}  # fmt: skip
    view.update(
        {
            "address_ref": record["address_ref"],
            "members": list(record["members"]),
            "member_periods": [
                {
                    "person_ref": m["person_ref"],
                    "from": _iso(m["from"]),
                    "until": _iso(m["until"]) if m["until"] else None,
                }
                for m in record.get("member_periods", [])
            ],
            "signals": [
                cast(Signal, {**s, "on": _iso(s["on"]), "person": s.get("person_ref")})
                for s in record["signals"]
            ],
            "involvements": [
                cast(Involvement, {**i, "since": _iso(i["since"]), "person": i.get("person_ref")})
                for i in record["involvements"]
            ],
            "consent": consent,
            "district": record.get("district"),
            "coordinator": (
                cast(
                    Coordinator,
                    {**record["coordinator"], "since": _iso(record["coordinator"]["since"])},
                )
                if record.get("coordinator")
                else None
            ),
        }
    )
    return view


def to_json(view: View) -> dict[str, Any]:
    """The published view as JSON (dates as ISO text), for operators' queries."""
    record = to_record(view)

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value.isoformat() if isinstance(value, dt.date) else value

    return {k: plain(v) for k, v in record.items()}


STRUCTURE = ("household_ref", "address_ref", "district", "members", "member_periods",
             "open_alerts", "updated_at")  # fmt: skip


def for_operator(view: dict[str, Any], domains: set[str]) -> dict[str, Any]:
    """What an operator sees of a published view (:func:`to_json`): its structure (who
    lived there when, the district, the open alert ids), how many facts each domain holds,
    and the facts of only the ``domains`` asked for (the purpose given is audited with
    them). As the inbox shows a team only its rule's domains, so an operator reading a
    household to fix a link sees the debt facts only when they ask for debt."""
    counts: dict[str, int] = {}
    for fact in (*view["signals"], *view["involvements"]):
        counts[fact["domain"]] = counts.get(fact["domain"], 0) + 1
    return {
        **{k: view[k] for k in STRUCTURE},
        "facts_per_domain": dict(sorted(counts.items())),
        "domains_shown": sorted(domains),
        "signals": [s for s in view["signals"] if s["domain"] in domains],
        "involvements": [i for i in view["involvements"] if i["domain"] in domains],
        "coordinator": view["coordinator"] if "teams" in domains else None,
        "consent": [c for c in view["consent"] if "teams" in domains],
    }
