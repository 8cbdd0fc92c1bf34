"""Who may see what in the inbox: the member from the provider's groups, and each page's roles.

Four roles (issue 15), each seeing no more than its work needs:
- ``medewerker``: their team's alerts (and, as an involved party, who else is involved);
  acts on the alerts their team is responsible for;
- ``regisseur``: a team member who also sees the duplicate-help alerts of households
  whose recorded coordinator (regisseur) is their team;
- ``beheerder`` (functional administrator): teams, routing and rule versions; no
  household data, so no alert list and no alert page;
- ``fg`` (privacy officer): the audit trail and the processing register; no household
  data either.

The provider's ``groups`` claim is mapped through the teams file: a team's ``group``
makes its members ``medewerker`` (``roles.regisseur`` on top: ``regisseur``), and
``roles.beheerder`` / ``roles.fg`` name the other two. Someone whose groups fit none,
or more than one team, or a household role beside beheerder or fg, is refused: the
municipality must fix the groups, the inbox never guesses.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wijkhub.connectors.teams import Member, Teams

MEDEWERKER, REGISSEUR, BEHEERDER, FG = "medewerker", "regisseur", "beheerder", "fg"

# page (a route's name) → the roles that may open it; a page not listed is open to none
PAGES: dict[str, frozenset[str]] = {
    "alerts": frozenset({MEDEWERKER, REGISSEUR}),  # the list, an alert, an action
    "beheer": frozenset({BEHEERDER}),
    "audit": frozenset({FG}),
    "register": frozenset({FG}),
}
HOME = {MEDEWERKER: "/meldingen", REGISSEUR: "/meldingen", BEHEERDER: "/beheer", FG: "/audit"}


class Refused(ValueError):
    """The groups give no (or no single) member; the message says why, for the audit."""


def member_from_groups(teams: Teams, account: str, groups: Iterable[str]) -> Member:
    """The member ``account`` is, by the provider's groups (see the module docstring)."""
    held = set(groups)
    in_teams = sorted(t.id for t in teams.teams.values() if t.group in held)
    roles = {role for role, group in teams.role_groups.items() if group in held}
    for office in (BEHEERDER, FG):
        if office in roles:
            if in_teams or len(roles) > 1:
                raise Refused(f"{office} may hold no team or other role (groups conflict)")
            return Member(account, "", office)
    if not in_teams:
        raise Refused("in no team's group")
    if len(in_teams) > 1:
        raise Refused(f"in more than one team's group ({', '.join(in_teams)})")
    return Member(account, in_teams[0], REGISSEUR if REGISSEUR in roles else MEDEWERKER)


def may_open(member: Member, page: str) -> bool:
    return member.role in PAGES.get(page, frozenset())


def alert_role(
    teams: Teams, member: Member, alert: dict[str, Any] | None, coordinator_team: str | None
) -> str | None:
    """How ``member`` may see ``alert``: 'responsible' (the routed team: timeline and
    actions), 'involved' (a party in a duplicate-help alert, or its household's regisseur:
    who else is involved and how to reach them) or None (not at all).

    ``coordinator_team`` is the household's recorded coordinator (regisseur) team, as
    the source system names it, or None."""
    if alert is None or not may_open(member, "alerts"):
        return None
    if alert["team"] == member.team:
        return "responsible"
    if member.team in teams.recipients(alert):
        return "involved"
    if (
        member.role == REGISSEUR
        and alert["family"] == "duplicate_help"
        and coordinator_team is not None
        and member.team in teams.teams
        and coordinator_team in teams.teams[member.team].known_as
    ):
        return "involved"
    return None
