"""Keyed ids: nobody without the id key can compute a household_ref or an alert id from an
address (issue 16), and the hub publishes no other kind of household or alert id."""

import hashlib
import hmac

import pytest

from wijkhub.connectors.identity import address_ref
from wijkhub.schemas.registry import Catalog
from wijkhub.settings import SettingsError
from wijkhub.streams.harness import Harness, build_stages
from wijkhub.streams.ids import Ids
from wijkhub.streams.linking import household_for_address
from wijkhub.testing import tricky

from builders import offline_worker_settings

CATALOG = Catalog()


def bare_guesses(address: str) -> set[str]:
    """What anyone could compute from an address alone: the unkeyed forms an id could take."""
    base = household_for_address(address)
    return {base, "H-" + hashlib.sha256(f"household:{base}".encode()).hexdigest()[:24]}


def test_a_household_ref_depends_on_the_key_and_is_no_hash_of_the_address():
    address = address_ref("1011AB", "7")
    one, other = Ids(b"a" * 32), Ids(b"b" * 32)
    ref = one.household(household_for_address(address))
    assert ref == one.household(household_for_address(address))  # stable under one key
    assert ref != other.household(household_for_address(address))
    assert ref not in bare_guesses(address)
    assert one.alert("R", ref) != other.alert("R", ref) != one.alert("R2", ref)
    with pytest.raises(SettingsError, match="WIJKHUB_ID_KEY"):
        Ids(b"short")


def test_ids_keep_their_published_form_whatever_the_worker_remembers():
    # Published ids must not change with an upgrade (alerts in the inbox, links in e-mails):
    # HMAC-SHA256 of "kind:text" under the id key, the first 24 hex digits, asked once or
    # again (from the worker's memory of them).
    ids = Ids(b"k" * 32)

    def mac(text: str) -> str:
        return hmac.new(b"k" * 32, text.encode(), hashlib.sha256).hexdigest()[:24]

    for _ in range(2):
        assert ids.household("1011AB-7") == "H-" + mac("household:1011AB-7")
        assert ids.alert("R1", "H-x") == "A-" + mac("alert:R1|H-x")
        assert ids.erased("P-1") == "E-" + mac("erased:P-1")
    assert repr(ids) == "Ids()"  # neither the key nor what it made


def test_every_published_household_and_alert_id_is_keyed(tmp_path):
    settings = offline_worker_settings(tmp_path).with_(pseudonym_key=b"p" * 32)
    scenario = tricky()
    harness = Harness(build_stages(settings, CATALOG, clock=lambda: 0.0))
    for record in scenario.raw_records(settings.pseudonym_key, CATALOG):
        harness.feed(*record)
    harness.run()
    views, alerts = harness.views(CATALOG), harness.alerts(CATALOG)
    assert views and alerts
    ids = Ids(settings.id_key)
    guessable = set().union(*(bare_guesses(v["address_ref"]) for v in views.values()))
    assert not guessable & set(views)  # no view under a ref computable from its address
    for ref, view in views.items():
        assert ref.startswith("H-") and ref != household_for_address(view["address_ref"])
    for aid, alert in alerts.items():
        view = views[alert["household_ref"]]
        # the alert id the first version made, from the rule and the address's bare household
        bare = household_for_address(view["address_ref"])
        unkeyed = "A-" + hashlib.sha256(f"{alert['rule_id']}|{bare}".encode()).hexdigest()[:24]
        assert aid.startswith("A-") and aid != unkeyed
    # the same facts under another key: other ids, the same alerts otherwise
    again = Harness(build_stages(settings.with_(id_key=b"z" * 32), CATALOG, clock=lambda: 0.0))
    for record in scenario.raw_records(settings.pseudonym_key, CATALOG):
        again.feed(*record)
    again.run()
    assert not set(again.alerts(CATALOG)) & set(alerts)
    assert sorted(a["rule_id"] for a in again.alerts(CATALOG).values()) == sorted(
        a["rule_id"] for a in alerts.values()
    )
    assert ids.key == settings.id_key


def test_the_review_queue_gets_no_name_or_date_of_birth(tmp_path):
    """A signal nobody at the address matches waits for review without the name and date
    of birth it carried for matching (they serve linking and stop at the address stage)."""
    from wijkhub.schemas.registry import RAW_EVENT
    from wijkhub.streams.topics import UNMATCHED
    from wijkhub.testing import Scenario

    settings = offline_worker_settings(tmp_path).with_(pseudonym_key=b"p" * 32)
    s = Scenario(91)
    resident = s.person("Jansen", "1980-04-02")
    s.register(resident, "1011AB", "7", "2024-01-01")
    stranger = s.person("Pietersen", "1955-11-30")  # never registered here
    s.arrears("1011AB", "7", "Huur", "2026-02-01", who=stranger)
    harness = Harness(build_stages(settings, CATALOG, clock=lambda: 0.0))
    for record in s.raw_records(settings.pseudonym_key, CATALOG):
        harness.feed(*record)
    harness.run()
    [entry] = [o for o in harness.latest(UNMATCHED).values()]
    event = CATALOG.decode(entry.value, RAW_EVENT)
    assert event["subject"]["match"] is None
    assert b"Pietersen" not in entry.value and b"1955" not in entry.value
