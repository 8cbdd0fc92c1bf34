"""The local Keycloak's control without starting it: which Java runs it, what the realm holds."""

from __future__ import annotations

import json

import pytest

from wijkhub.broker import DEMO_TEAMS
from wijkhub.connectors.teams import load
from wijkhub.idp import REALM_FILE, IdpError, demo_users, java_home


def jdk(folder, version: str):
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "java").write_text("")
    (folder / "release").write_text(f'JAVA_VERSION="{version}"\n')
    return folder


def test_a_configured_java_home_must_be_21_or_newer(tmp_path):
    assert java_home(str(jdk(tmp_path / "25", "25.0.1"))) == tmp_path / "25"
    with pytest.raises(IdpError, match="is not a Java 21\\+ home"):
        java_home(str(jdk(tmp_path / "17", "17.0.15")))


def test_the_demo_realm_has_a_member_per_demo_team_and_each_other_role():
    teams = load(DEMO_TEAMS)
    users = demo_users()
    members = {groups[0] for groups in users.values() if len(groups) == 1}
    assert set(teams.teams) <= members  # every demo team can sign in
    assert users["regisseur.demo"] == ["wijkteam-centrum", teams.role_groups["regisseur"]]
    assert users["beheer.demo"] == [teams.role_groups["beheerder"]]
    assert users["fg.demo"] == [teams.role_groups["fg"]]


def test_the_demo_realms_client_uses_pkce_and_back_channel_logout():
    realm = json.loads(REALM_FILE.read_text())
    [client] = realm["clients"]
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert client["attributes"]["backchannel.logout.session.required"] == "true"
    assert not client["publicClient"] and not client["directAccessGrantsEnabled"]
    assert not client["implicitFlowEnabled"]
    [groups] = [m for m in client["protocolMappers"] if m["name"] == "groups"]
    assert groups["config"]["id.token.claim"] == "true"
