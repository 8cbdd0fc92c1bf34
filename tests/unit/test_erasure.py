"""Erasure of a person (AVG art. 17) through the worker's own stages, in memory.

A household of three; the father is erased. His alerts go (tombstones), the mother's
alert keeps only her facts, the view is rewritten without him, and no stage keeps his
pseudonym, name or date of birth, except the person stage's suppression marker under
his key, which holds no fact. The result is the run without his records, wherever the
request comes among the records, and with replays.
"""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from wijkhub.broker import DISTRICT_FIXTURE
from wijkhub.connectors.identity import Pseudonymiser
from wijkhub.erasure import purge_files, request
from wijkhub.schemas.registry import CONTACT_CARD, ERASURE, Catalog
from wijkhub.settings import Settings
from wijkhub.streams.harness import Harness, build_stages
from wijkhub.streams.topics import (
    ALERTS,
    CONTACT_CARDS,
    ERASURES,
    HAND_OVER,
    HOUSEHOLD_VIEW,
    UNMATCHED,
)
from wijkhub.testing import RECEIVED, Scenario, household_of_three

from builders import readable

CATALOG = Catalog()
SETTINGS = Settings(pseudonym_key=b"erasure-test-pseudonym-key-0123456789",
                    district_table=str(DISTRICT_FIXTURE),
                    action_keys="k1=erasure-test-action-key-0123456789",
                    id_key=b"erasure-test-id-key-0123456789abcdef")  # fmt: skip
FATHER_NAME, FATHER_BORN = "Dekker", "1979-08-21"


def household(with_father: bool = True) -> tuple[Scenario, str]:
    s, father = household_of_three(with_father=with_father)
    return s, Pseudonymiser(SETTINGS.pseudonym_key).person_ref(father.bsn)


def erasure_record(person_ref: str, erasure_id: str = "e-1") -> tuple[str, bytes, bytes]:
    record = {**request(person_ref, "fg:privacy-officer", "AVG-2026-17",
                        RECEIVED + dt.timedelta(days=1)), "erasure_id": erasure_id}  # fmt: skip
    return ERASURES, person_ref.encode(), CATALOG.encode(ERASURE, record)


def run(records, seed: int = 0, crash_rate: float = 0.0) -> Harness:
    harness = Harness(build_stages(SETTINGS, CATALOG, clock=lambda: 0.0), rng=random.Random(seed))
    for topic, key, value in records:
        harness.feed(topic, key, value)
    harness.run(shuffle=seed > 0, crash_rate=crash_rate)
    return harness


def seen(harness: Harness) -> tuple[dict, dict]:
    """Alerts (rule, state, facts) and views, as a team and an operator see them."""
    alerts = {aid: (a["rule_id"], a["state"], sorted(f["event_id"] for f in a["facts"]))
              for aid, a in harness.alerts(CATALOG).items()}  # fmt: skip
    return alerts, harness.views(CATALOG)


SCENARIO, FATHER = household()
WITHOUT_HIM = seen(run(household(with_father=False)[0].raw_records(SETTINGS.pseudonym_key)))
HIS_ALERTS = {
    aid.encode()
    for aid, (rule, _, _) in seen(run(SCENARIO.raw_records(SETTINGS.pseudonym_key)))[0].items()
    if rule != "VS-ARREARS-2-CREDITORS-90D"
}


def test_with_him_the_household_has_his_alerts_and_he_is_a_member():
    alerts, views = seen(run(SCENARIO.raw_records(SETTINGS.pseudonym_key)))
    rules = sorted(rule for rule, _, _ in alerts.values())
    assert rules == ["DH-TWO-HOLDERS-SAME-HELP", "VS-ARREARS-2-CREDITORS-90D",
                     "VS-ARREARS-3-MONTHS-ONE-CREDITOR"]  # fmt: skip
    [view] = views.values()
    assert FATHER in view["members"] and len(view["members"]) == 3


@pytest.mark.parametrize("seed", range(12))
def test_after_erasure_everything_is_as_if_he_had_never_been_there(seed: int):
    records = [*SCENARIO.raw_records(SETTINGS.pseudonym_key), erasure_record(FATHER)]
    if seed:
        random.Random(seed).shuffle(records)
        records += random.Random(seed).sample(records, 5)  # replays, the request among them
    harness = run(records, seed, crash_rate=0.2 if seed % 2 else 0.0)
    assert seen(harness) == WITHOUT_HIM
    [mother_alert] = WITHOUT_HIM[0].values()
    assert mother_alert[0] == "VS-ARREARS-2-CREDITORS-90D"  # kept, with her facts only
    removed = {o.key for o in harness.records(ALERTS) if o.value is None}
    assert removed <= HIS_ALERTS  # what was raised before the request came is tombstoned
    assert_no_trace(harness)


def test_his_alerts_raised_before_the_request_are_tombstoned_not_withdrawn():
    harness = run(SCENARIO.raw_records(SETTINGS.pseudonym_key))
    harness.feed(*erasure_record(FATHER))
    harness.run()
    removed = [o.key for o in harness.records(ALERTS) if o.value is None]
    assert sorted(removed) == sorted(HIS_ALERTS)
    assert seen(harness) == WITHOUT_HIM
    assert_no_trace(harness)


def test_a_replay_of_his_records_after_the_erasure_brings_nothing_back():
    raw = SCENARIO.raw_records(SETTINGS.pseudonym_key)
    harness = run([*raw, erasure_record(FATHER)])
    for topic, key, value in raw:  # a rebuild or a source delivering again
        harness.feed(topic, key, value)
    harness.feed(*erasure_record(FATHER))  # and the request again (the same id)
    harness.run()
    assert seen(harness) == WITHOUT_HIM
    assert_no_trace(harness)


def test_a_fact_received_after_the_erasure_is_new_processing():
    later = Scenario(8)
    later.records = [r for r in SCENARIO.records if r[1]["kind"] == "person_registered"]
    fresh = [(t, k, v) for t, k, v in later.raw_records(SETTINGS.pseudonym_key)]
    harness = run([*SCENARIO.raw_records(SETTINGS.pseudonym_key), erasure_record(FATHER)])
    received_later = [(t, k, _received_at(v, RECEIVED + dt.timedelta(days=2))) for t, k, v in fresh]
    for record in received_later:
        harness.feed(*record)
    harness.run()
    [view] = harness.views(CATALOG).values()
    assert FATHER in view["members"]  # registered again after the request: he is back


def _received_at(value: bytes, at: dt.datetime) -> bytes:
    raw = CATALOG.decode(value, "nl.wijkhub.RawEvent")
    raw["envelope"]["received_at"] = at
    return CATALOG.encode("nl.wijkhub.RawEvent", raw)


def assert_no_trace(harness: Harness) -> None:
    """No stage state and no compacted topic holds his pseudonym, name or date of birth;
    his own person-stage entry is the suppression marker, without a fact."""
    # as given, and in the matcher's normal form ("dekker", "19790821")
    needles = (FATHER, FATHER_NAME, FATHER_BORN, FATHER_NAME.lower(), FATHER_BORN.replace("-", ""))
    stores = [*harness.state.items(), *harness.changelog.items()]  # what Kafka keeps too
    for stage, states in stores:
        for key, text in states.items():
            if stage == "person" and key == FATHER.encode():
                marker = json.loads(text)["state"]
                assert not any(marker[k] for k in ("registrations", "endings", "snapshots",
                                                   "events")), marker  # fmt: skip
                # nor the outbox the erasure sent (his registration, to every building)
                assert not any(n in readable(text.encode()) for n in needles[1:]), stage
                continue
            seen = readable(key) + readable(text.encode())  # packed raw events decoded too
            for needle in needles:
                assert needle not in seen, (stage, needle)
    for topic in (ALERTS, HOUSEHOLD_VIEW, UNMATCHED, HAND_OVER, CONTACT_CARDS):
        for out in harness.latest(topic).values():
            assert not any(n in readable(out.key) + readable(out.value) for n in needles), topic


def test_purge_removes_the_processed_files_that_hold_the_bsn(tmp_path):
    bsn = "123456782"
    for folder, name, text in (
        ("processed", "a.csv", f"x;{bsn}"),
        ("processed", "b.csv", "x;1"),
        ("failed", "c.csv", bsn),
        ("incoming", "d.csv", bsn),
    ):
        (tmp_path / "brp" / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / "brp" / folder / name).write_text(text)
    purged = purge_files(tmp_path, bsn)
    assert sorted(p.name for p in purged.files) == ["a.csv", "c.csv"]
    assert (tmp_path / "brp" / "processed" / "b.csv").exists()
    assert (tmp_path / "brp" / "incoming" / "d.csv").exists()  # not processed yet: untouched


# -- the contact cards (issue 17) ------------------------------------------------------------


def cards(harness: Harness) -> dict[str, dict]:
    """The latest card per alert (a tombstone: none)."""
    return {k.decode(): CATALOG.decode(o.value, CONTACT_CARD)
            for k, o in harness.latest(CONTACT_CARDS).items() if o.value is not None}  # fmt: skip


def test_the_stage_publishes_a_card_per_open_alert_naming_the_people_behind_its_facts():
    harness = run(SCENARIO.raw_records(SETTINGS.pseudonym_key))
    published = cards(harness)
    alerts = harness.alerts(CATALOG)
    assert set(published) == {aid for aid, a in alerts.items() if a["state"] != "resolved"}
    assert len(published) == 3
    for aid, card in published.items():
        assert card["rule_id"] == alerts[aid]["rule_id"] and card["team"] == alerts[aid]["team"]
        assert card["persons"] and all(p["postcode"] == "1020AB" for p in card["persons"])
    names = {aid: sorted(p["name"] for p in c["persons"]) for aid, c in published.items()}
    by_rule = {alerts[aid]["rule_id"]: n for aid, n in names.items()}
    # the mother's signals carry her BSN and name; the father's water arrears only his name
    # (they count as a third creditor type in the mother's household alert too)
    assert by_rule == {"VS-ARREARS-2-CREDITORS-90D": ["D Dekker", "J Jansen"],
                       "VS-ARREARS-3-MONTHS-ONE-CREDITOR": ["D Dekker"],
                       # his debt help: named by his own signals in the household
                       "DH-TWO-HOLDERS-SAME-HELP": ["D Dekker"]}  # fmt: skip


@pytest.mark.parametrize("seed", [0, 3, 8])
def test_after_erasing_a_person_no_card_names_them(seed: int):
    records = [*SCENARIO.raw_records(SETTINGS.pseudonym_key), erasure_record(FATHER)]
    random.Random(seed).shuffle(records)
    harness = run(records, seed)
    for card in cards(harness).values():
        assert all(p["person_ref"] != FATHER and FATHER_NAME not in p["name"]
                   for p in card["persons"])  # fmt: skip
    assert [c["rule_id"] for c in cards(harness).values()] == ["VS-ARREARS-2-CREDITORS-90D"]


def test_his_cards_published_before_the_erasure_are_tombstoned():
    harness = run(SCENARIO.raw_records(SETTINGS.pseudonym_key))
    before = set(cards(harness))
    harness.feed(*erasure_record(FATHER))
    harness.run()
    removed = {o.key.decode() for o in harness.records(CONTACT_CARDS) if o.value is None}
    assert removed == before - set(cards(harness)) and len(removed) == 2
