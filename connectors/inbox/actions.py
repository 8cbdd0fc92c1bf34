"""Team actions as events: what the inbox sends to the household stage.

Which actions an alert allows is the lifecycle's to say (:func:`lifecycle.allowed`):
the inbox offers those and no others, and the household stage refuses the rest.

The action id is derived from the alert, the revision the member saw, the
action, its outcome and the member: a form submitted twice (double click,
browser retry) is one action, and the household stage applies it once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from typing import Any

from wijkhub.streams import ddas
from wijkhub.streams.lifecycle import NO_DETAILS, OUTCOMES, TEAM_ACTIONS

# What the inbox offers, in Dutch, per action code of the AlertAction schema.
LABELS = {
    "claim": "Oppakken",
    "acknowledge": "Bevestigen (gezien)",
    "contact_made": "Contact gelegd met de andere betrokkenen",
    "contact_attempt": "Contactpoging vastleggen",
    "warm_handover": "Warme overdracht vastleggen",
    "resolve": "Afsluiten",
}


NO_OUTCOME = "Kies een uitkomst om de melding af te sluiten."


class FormError(ValueError):
    """What the member must correct in a form before it can be sent: per field (its name in
    the form, which is also the id of its first control) a Dutch message the member can act
    on and that holds no personal data; the field ``""`` is the form as a whole."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        super().__init__(" ".join(problems.values()))
        self.problems = dict(problems)


def details(form: Mapping[str, Any], action: str, alert: Mapping[str, Any]) -> dict[str, Any]:
    """The AlertAction's detail fields from the form: a contact attempt's kind, date, part
    of day and whether it reached the household; a resolution's outcome and DDAS end result,
    which a vroegsignaal's alert (one DDAS reports) must have. Raises :class:`FormError`
    with every field the member must correct, in the order of the form."""
    found, problems = dict(NO_DETAILS), dict[str, str]()
    if action == "contact_attempt":
        kind, day_part = str(form.get("soort", "")), str(form.get("dagdeel", ""))
        reached, on = str(form.get("bereikt", "")), _date(form.get("datum"))
        if kind not in ddas.CONTACT_KINDS:
            problems["soort"] = "Kies de soort contact."
        if on is None:
            problems["datum"] = "Vul de datum van de poging in (jjjj-mm-dd)."
        elif on > dt.datetime.now(dt.UTC).date():
            problems["datum"] = "De datum van de poging ligt in de toekomst."
        if day_part not in ddas.DAY_PARTS:
            problems["dagdeel"] = "Kies het dagdeel."
        if reached not in ("ja", "nee"):
            problems["bereikt"] = "Geef aan of u het huishouden hebt bereikt."
        if not problems and on is not None:
            found.update(contact_kind=kind, contact_on=on.isoformat(), day_part=day_part,
                         reached=reached == "ja")  # fmt: skip
    if action == "resolve":
        result = form.get("eindresultaat")
        if form.get("outcome") not in OUTCOMES:
            problems["outcome"] = NO_OUTCOME
        if not result and ddas.is_case(alert):
            problems["eindresultaat"] = (
                "Kies het eindresultaat (DDAS) om deze vroegsignalering af te sluiten."
            )
        elif result and result not in ddas.END_RESULTS:
            problems["eindresultaat"] = "Kies een eindresultaat uit de lijst."
        elif result:
            found["end_result"] = str(result)
    if problems:
        raise FormError(problems)
    return found


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value or ""))
    except ValueError:
        return None


def action_record(
    alert: dict[str, Any],
    action: str,
    actor: str,
    outcome: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The AlertAction for ``action`` on ``alert`` by ``actor`` (a member of the alert's team);
    ``detail`` as :func:`details` gives it."""
    if action not in TEAM_ACTIONS:
        raise ValueError(f"unknown action; expected one of {TEAM_ACTIONS}")
    if action == "resolve" and outcome not in OUTCOMES:
        raise FormError({"outcome": NO_OUTCOME})
    fields = {**NO_DETAILS, **(detail or {})}
    # the details are part of what makes two submissions one action (two attempts differ)
    basis = f"{alert['alert_id']}|{alert['revision']}|{action}|{outcome or ''}|{actor}"
    if any(v is not None for v in fields.values()):
        basis += "|" + "|".join("" if fields[k] is None else str(fields[k]) for k in NO_DETAILS)
    return {
        "action_id": "AA-" + hashlib.sha256(basis.encode()).hexdigest()[:24],
        "alert_id": alert["alert_id"],
        "household_ref": alert["household_ref"],
        "action": action,
        "outcome": outcome if action == "resolve" else None,
        **fields,
        "actor": actor,
        "team": alert["team"],
        "at": dt.datetime.now(dt.UTC),
        "correlation_id": alert["correlation_id"],
    }
