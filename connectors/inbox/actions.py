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
from typing import Any

from wijkhub.streams.lifecycle import OUTCOMES, TEAM_ACTIONS

# What the inbox offers, in Dutch, per action code of the AlertAction schema.
LABELS = {
    "claim": "Oppakken",
    "acknowledge": "Bevestigen (gezien)",
    "contact_made": "Contact gelegd met de andere betrokkenen",
    "resolve": "Afsluiten",
}


def action_record(
    alert: dict[str, Any], action: str, actor: str, outcome: str | None = None
) -> dict[str, Any]:
    """The AlertAction for ``action`` on ``alert`` by ``actor`` (a member of the alert's team)."""
    if action not in TEAM_ACTIONS:
        raise ValueError(f"unknown action; expected one of {TEAM_ACTIONS}")
    if action == "resolve" and outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {sorted(OUTCOMES)}")
    basis = f"{alert['alert_id']}|{alert['revision']}|{action}|{outcome or ''}|{actor}"
    return {
        "action_id": "AA-" + hashlib.sha256(basis.encode()).hexdigest()[:24],
        "alert_id": alert["alert_id"],
        "household_ref": alert["household_ref"],
        "action": action,
        "outcome": outcome if action == "resolve" else None,
        "actor": actor,
        "team": alert["team"],
        "at": dt.datetime.now(dt.UTC),
        "correlation_id": alert["correlation_id"],
    }
