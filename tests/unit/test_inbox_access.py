"""Who may see what in the inbox, and how long: roles from groups, page checks, sessions."""

from __future__ import annotations

import pytest

from wijkhub.connectors.inbox import roles
from wijkhub.connectors.inbox.gate import provider_for
from wijkhub.connectors.inbox.sessions import MAX_ATTEMPTS, SessionStore
from wijkhub.connectors.teams import Member, TeamsFileError, parse
from wijkhub.settings import Settings, SettingsError

TEAMS = parse(
    """
teams:
  wijkteam-centrum: {name: Wijkteam Centrum}
  wijkteam-noord: {name: Wijkteam Noord, group: wt-noord, aliases: [WT Noord]}
roles: {regisseur: regisseurs, beheerder: beheerders, fg: privacy}
"""
)


@pytest.mark.parametrize(
    ("groups", "member"),
    [
        (["wijkteam-centrum"], Member("a", "wijkteam-centrum", "medewerker")),
        (["/wt-noord"][0:1], Member("a", "wijkteam-noord", "medewerker")),
        (["wt-noord", "regisseurs", "other"], Member("a", "wijkteam-noord", "regisseur")),
        (["beheerders"], Member("a", "", "beheerder")),
        (["privacy", "unrelated"], Member("a", "", "fg")),
    ],
)
def test_groups_give_team_and_role_through_the_teams_file(groups, member):
    assert roles.member_from_groups(TEAMS, "a", [g.lstrip("/") for g in groups]) == member


@pytest.mark.parametrize(
    ("groups", "why"),
    [
        ([], "in no team's group"),
        (["regisseurs"], "in no team's group"),  # a regisseur belongs to a team
        (["wijkteam-centrum", "wt-noord"], "more than one team"),
        (["privacy", "wijkteam-centrum"], "fg may hold no team"),  # no household data
        (["beheerders", "privacy"], "may hold no team or other role"),
        (["wijkteam-noord"], "in no team's group"),  # the team's group is wt-noord, not its id
    ],
)
def test_groups_that_fit_no_single_member_are_refused(groups, why):
    with pytest.raises(roles.Refused, match=why):
        roles.member_from_groups(TEAMS, "a", groups)


def test_each_role_opens_only_its_own_pages():
    opens = {
        role: sorted(p for p in roles.PAGES if roles.may_open(Member("a", "t", role), p))
        for role in ("medewerker", "regisseur", "beheerder", "fg")
    }
    assert opens == {
        "medewerker": ["alerts"],
        "regisseur": ["alerts"],
        "beheerder": ["beheer"],
        "fg": ["audit", "register"],
    }
    assert not roles.may_open(Member("a", "t", "medewerker"), "no-such-page")


def alert(team="wijkteam-centrum", family="duplicate_help", involved=()):
    return {"team": team, "family": family, "involved": [{"holder": h} for h in involved]}


def test_alert_roles_responsible_involved_regisseur_and_none():
    centrum = Member("a", "wijkteam-centrum", "medewerker")
    noord = Member("b", "wijkteam-noord", "medewerker")
    regisseur = Member("c", "wijkteam-noord", "regisseur")
    fg = Member("d", "", "fg")
    assert roles.alert_role(TEAMS, centrum, alert(), None) == "responsible"
    assert roles.alert_role(TEAMS, noord, alert(involved=["WT Noord"]), None) == "involved"
    assert roles.alert_role(TEAMS, noord, alert(), "WT Noord") is None  # not a regisseur
    assert roles.alert_role(TEAMS, regisseur, alert(), "WT Noord") == "involved"
    assert roles.alert_role(TEAMS, regisseur, alert(), "Wijkteam Centrum") is None
    early = alert(family="early_detection")
    assert roles.alert_role(TEAMS, regisseur, early, "WT Noord") is None  # duplicate help only
    assert roles.alert_role(TEAMS, fg, alert(team=""), None) is None  # never household data
    assert roles.alert_role(TEAMS, centrum, None, None) is None


def test_a_roles_section_names_known_roles_and_groups():
    with pytest.raises(TeamsFileError) as refused:
        parse("teams: {t: {}}\nroles: {medewerker: x, fg: ''}\n")
    assert refused.value.problems == [
        "roles: 'medewerker' is not one of regisseur, beheerder, fg",
        "roles: fg needs the name of a group at the provider",
    ]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_at_sign_out_and_its_cookie_finds_nothing_after():
    store = SessionStore(idle_seconds=60, max_seconds=3600, clock=Clock())
    cookie, session = store.create(Member("a", "t"))
    assert store.get(cookie) is session and len(cookie) >= 43  # 256 random bits
    assert cookie not in repr(store.__dict__)  # only its digest is kept
    assert store.end(cookie) is session
    assert store.get(cookie) is None and store.end(cookie) is None


def test_a_session_ends_after_the_idle_time_and_after_the_absolute_limit():
    clock = Clock()
    store = SessionStore(idle_seconds=60, max_seconds=150, clock=clock)
    idle, _ = store.create(Member("a", "t"))
    busy, _ = store.create(Member("b", "t"))
    for _ in range(2):
        clock.now += 50
        assert store.get(busy) is not None  # each request restarts the idle clock
    assert store.get(idle) is None  # 100 s without a request
    clock.now += 50
    assert store.get(busy) is not None  # 150 s since sign-in: still within the limit
    clock.now += 1
    assert store.get(busy) is None  # past the absolute limit, busy or not


def test_the_providers_logout_ends_the_sessions_of_its_session_id_or_subject():
    store = SessionStore(60, 3600, clock=Clock())
    one, _ = store.create(Member("a", "t"), provider_sid="sid-1", subject="sub-a")
    two, _ = store.create(Member("a", "t"), provider_sid="sid-2", subject="sub-a")
    other, _ = store.create(Member("b", "t"), provider_sid="sid-3", subject="sub-b")
    assert [s.provider_sid for s in store.end_provider_session(provider_sid="sid-1")] == ["sid-1"]
    assert store.get(one) is None and store.get(two) is not None
    assert len(store.end_provider_session(subject="sub-a")) == 1
    assert store.end_provider_session() == [] and store.get(other) is not None


def test_a_sign_in_attempt_is_used_once_expires_and_stays_bounded():
    clock = Clock()
    store = SessionStore(60, 3600, clock=clock)
    cookie, attempt = store.begin(state="s")
    assert store.attempt(cookie) is attempt
    assert store.finish(cookie) is attempt and store.finish(cookie) is None  # used once
    late, _ = store.begin()
    clock.now += 601
    assert store.attempt(late) is None
    for _ in range(MAX_ATTEMPTS + 5):
        store.begin()
    assert len(store._attempts) == MAX_ATTEMPTS


def test_oidc_is_the_default_and_says_what_it_misses_in_one_line():
    assert Settings.from_env({}).inbox_auth == "oidc"
    with pytest.raises(SettingsError) as missing:
        provider_for(Settings.from_env({}))
    assert str(missing.value) == (
        "the inbox signs staff in through OIDC and needs WIJKHUB_OIDC_ISSUER and "
        "WIJKHUB_OIDC_CLIENT_SECRET (WIJKHUB_INBOX_AUTH=local only for development)"
    )
    assert provider_for(Settings.from_env({"WIJKHUB_INBOX_AUTH": "local"})) is None
    with pytest.raises(SettingsError, match="WIJKHUB_INBOX_AUTH must be one of oidc, local"):
        Settings.from_env({"WIJKHUB_INBOX_AUTH": "password"})


def test_the_client_secret_comes_from_a_file_too(tmp_path):
    (tmp_path / "secret").write_text("s3cret\n")
    env = {"WIJKHUB_OIDC_CLIENT_SECRET_FILE": str(tmp_path / "secret")}
    assert Settings.from_env(env).oidc_client_secret == "s3cret"
    settings = Settings.from_env(env).with_(oidc_issuer="https://idp.example/realms/x")
    assert Settings.from_env(settings.to_env()) == settings
