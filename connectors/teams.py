"""Teams and their members: who receives which alerts, where, and who may log in.

One YAML file (``WIJKHUB_TEAMS_FILE``), validated as a whole before any
process uses it::

    teams:
      wijkteam-noord:
        name: Wijkteam Noord
        aliases: [WT Noord]                     # how source systems name this team (optional)
        email: noord@wijkteams.example          # new-alert notifications (optional)
        webhook: https://zaaksysteem.example/wijkhub  # state changes, signed; https only (optional)
        group: wijkteam-noord                   # its members' group at the provider (default: id)
    roles:                                      # the provider's group of each other role
      regisseur: regisseurs                     # (a team member who is also a regisseur)
      beheerder: beheerders                     # functional administrator: no household data
      fg: fg                                    # privacy officer: no household data
    accounts:                                   # only with WIJKHUB_INBOX_AUTH=local
      j.jansen: {team: wijkteam-noord, password: "scrypt$16384$8$1$…"}

A duplicate-help alert goes to the team responsible for the household and
to every involved party that is a team here (matched by id, name or alias):
the verwijsindex tells each party who else is involved.

Staff sign in at the municipality's identity provider (OIDC); its ``groups``
claim says which team and role a member has, through ``group`` and ``roles``
here (:mod:`wijkhub.connectors.inbox.roles`). The ``accounts`` are a development
mode only (``WIJKHUB_INBOX_AUTH=local``): passwords are stored as scrypt hashes
(``wijkhub inbox hash-password``). Webhook secrets never live in the file:
``WIJKHUB_WEBHOOK_SECRETS`` holds ``team=secret,…``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from wijkhub.access import parse_tokens

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
_HASH = re.compile(r"scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)")
_DUMMY = None  # a hash to compare against for unknown accounts (same time as a real check)


class TeamsFileError(ValueError):
    """The teams file is not valid; ``problems`` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    m = _HASH.fullmatch(stored)
    if not m:
        return False
    n, r, p = (int(x) for x in m.group(1, 2, 3))
    salt, expected = base64.b64decode(m.group(4)), base64.b64decode(m.group(5))
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=2**26)
    return hmac.compare_digest(digest, expected)


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    email: str = ""
    webhook: str = ""
    aliases: tuple[str, ...] = ()
    group: str = ""  # the provider's group of its members

    @property
    def known_as(self) -> set[str]:
        """Every name under which source systems may record this team as a holder."""
        return {self.id, self.name, *self.aliases}


ROLES = ("medewerker", "regisseur", "beheerder", "fg")


@dataclass(frozen=True)
class Member:
    """Who is signed in: their account, their team (empty for beheerder and fg, who see
    no household data) and role (one of ROLES)."""

    account: str
    team: str
    role: str = "medewerker"


@dataclass(frozen=True)
class Teams:
    teams: dict[str, Team]
    passwords: dict[str, tuple[str, str]] = field(repr=False)  # account → (team, hash)
    webhook_secrets: dict[str, str] = field(default_factory=dict, repr=False)
    role_groups: dict[str, str] = field(default_factory=dict)  # role → the provider's group

    def authenticate(self, account: str, password: str) -> Member | None:
        """The member, if the password is right. Unknown accounts take as long as known ones."""
        global _DUMMY
        team, stored = self.passwords.get(account, ("", ""))
        if not stored:
            _DUMMY = _DUMMY or hash_password(secrets.token_urlsafe(8))
            verify_password(password, _DUMMY)
            return None
        return Member(account, team) if verify_password(password, stored) else None

    def name(self, team: str) -> str:
        return self.teams[team].name if team in self.teams else team

    def recipients(self, alert: dict[str, Any]) -> list[str]:
        """The teams an alert goes to: the responsible team, then every involved party that
        is one of our teams (duplicate help), each once."""
        found = [alert["team"]]
        for party in alert.get("involved") or ():
            for team in self.teams.values():
                if party["holder"] in team.known_as and team.id not in found:
                    found.append(team.id)
        return found


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def webhook_problem(url: str, allow_loopback_http: bool = False) -> str | None:
    """Why a webhook URL is refused, or None. Alerts about households travel encrypted:
    ``https://`` only; plain ``http://`` only to this machine's loopback (a test
    receiver) and only when WIJKHUB_WEBHOOK_ALLOW_LOOPBACK_HTTP allows it."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "webhook is not a valid URL"
    if not host:
        return "webhook must be an absolute https:// URL with a host"
    if parts.scheme == "https" or (
        parts.scheme == "http" and allow_loopback_http and _loopback(host)
    ):
        return None
    return (
        "webhook must be an https:// URL (plain http only to a loopback address, "
        "with WIJKHUB_WEBHOOK_ALLOW_LOOPBACK_HTTP=true)"
    )


def parse(
    text: str, source: str = "teams", webhook_secrets: str = "", allow_loopback_http: bool = False
) -> Teams:
    """The teams file, validated as a whole: every problem is listed at once."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TeamsFileError(source, [f"not valid YAML: {exc}"]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("teams"), dict):
        raise TeamsFileError(source, ["needs a mapping under 'teams'"])
    problems: list[str] = []
    teams: dict[str, Team] = {}
    for team_id, raw in doc["teams"].items():
        raw = raw or {}
        email, webhook = str(raw.get("email", "")), str(raw.get("webhook", ""))
        if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
            problems.append(f"team {team_id}: email {email!r} is not an address")
        problem = webhook_problem(webhook, allow_loopback_http) if webhook else None
        if problem:
            problems.append(f"team {team_id}: {problem}")
        aliases = raw.get("aliases") or []
        if not isinstance(aliases, list):
            problems.append(f"team {team_id}: aliases must be a list of names")
            aliases = []
        name = str(raw.get("name") or team_id)
        group = str(raw.get("group") or team_id)
        teams[str(team_id)] = Team(
            str(team_id), name, email, webhook, tuple(map(str, aliases)), group
        )
    role_groups: dict[str, str] = {}
    for role, group in (doc.get("roles") or {}).items():
        if role not in ROLES[1:]:
            problems.append(f"roles: {role!r} is not one of {', '.join(ROLES[1:])}")
        elif not isinstance(group, str) or not group:
            problems.append(f"roles: {role} needs the name of a group at the provider")
        else:
            role_groups[role] = group
    passwords: dict[str, tuple[str, str]] = {}
    for account, raw in (doc.get("accounts") or {}).items():
        raw = raw or {}
        if raw.get("team") not in teams:
            problems.append(f"account {account}: unknown team {raw.get('team')!r}")
        if not _HASH.fullmatch(str(raw.get("password", ""))):
            problems.append(
                f"account {account}: password must be a scrypt hash "
                "(make one with `wijkhub inbox hash-password`), never the password itself"
            )
        passwords[str(account)] = (str(raw.get("team")), str(raw.get("password", "")))
    try:
        secrets_by_team = parse_tokens(webhook_secrets, "webhook secret", allowed=teams)
    except ValueError as exc:
        problems.append(f"WIJKHUB_WEBHOOK_SECRETS: {exc}")
        secrets_by_team = {}
    for team in teams.values():
        if team.webhook and team.id not in secrets_by_team:
            problems.append(
                f"team {team.id}: has a webhook but no secret in WIJKHUB_WEBHOOK_SECRETS"
            )
    if problems:
        raise TeamsFileError(source, problems)
    return Teams(teams, passwords, secrets_by_team, role_groups)


def load(path: str | Path, webhook_secrets: str = "", allow_loopback_http: bool = False) -> Teams:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TeamsFileError(str(path), [f"cannot read: {exc.strerror}"]) from None
    return parse(text, str(path), webhook_secrets, allow_loopback_http)


def as_mapping(teams: Teams) -> dict[str, Any]:
    """For ``wijkhub inbox teams``: the teams, without hashes or secrets."""
    members: dict[str, list[str]] = {}
    for account, (team, _) in sorted(teams.passwords.items()):
        members.setdefault(team, []).append(account)
    return {
        t.id: {
            "name": t.name,
            "email": t.email,
            "webhook": t.webhook,
            "members": members.get(t.id, []),
        }
        for t in teams.teams.values()
    }
