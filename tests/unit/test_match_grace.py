"""Minimisation: a resident's name and date of birth leave the address stage's state once
the person's own facts are a grace period past the day they left the building; in event
time (the person stage decides, from the person's facts), so the outcome does not depend
on the order the records arrive in."""

from __future__ import annotations

import json
import random

import pytest

from wijkhub.broker import DISTRICT_FIXTURE
from wijkhub.schemas.registry import Catalog
from wijkhub.settings import Settings
from wijkhub.streams.harness import Harness, build_stages
from wijkhub.testing import Scenario

CATALOG = Catalog()
SETTINGS = Settings(pseudonym_key=b"grace-test-pseudonym-key-0123456789ab",
                    district_table=str(DISTRICT_FIXTURE),
                    action_keys="k1=grace-test-action-key-0123456789abcd",
                    id_key=b"grace-test-id-key-0123456789abcdefgh",
                    match_grace_days=365)  # fmt: skip


def scenario(later_fact: bool) -> Scenario:
    s = Scenario(3)
    visser = s.person("Visser", "1990-09-09")
    s.register(visser, "1012CD", "3", "2024-05-01")
    s.register(visser, "1013EF", "11", "2025-01-01")  # left 1012CD on 2025-01-01
    s.register(s.person("Bos", "1970-01-01"), "1012CD", "3", "2025-02-01")  # lives there now
    s.arrears("1012CD", "3", "Zorg", "2024-12-01", who=visser)  # by name, while living there
    if later_fact:  # his own facts reach 2026-03-01: past 2025-01-01 + 365 days
        s.debt_help(visser, "Kredietbank", "T9", "started", "2026-03-01")
    return s


def run(records, seed: int) -> Harness:
    harness = Harness(build_stages(SETTINGS, CATALOG, clock=lambda: 0.0), rng=random.Random(seed))
    for record in records:
        harness.feed(*record)
    harness.run(shuffle=seed > 0)
    return harness


def building(harness: Harness) -> dict:
    return json.loads(harness.state["address"][b"1012CD-3"])["state"]


def residents(harness: Harness) -> dict:
    return {k[:12]: r["match"] for k, r in building(harness)["residents"].items()}


def test_within_the_grace_period_the_signal_links_by_name():
    harness = run(scenario(False).raw_records(SETTINGS.pseudonym_key), 0)
    # normalised: all the matcher needs
    assert {"family": "visser", "initials": "v", "dob": "19900909"} in residents(harness).values()
    assert [v["signals"] for v in harness.views(CATALOG).values() if v["signals"]]
    assert harness.review() == {}


@pytest.mark.parametrize("seed", range(8))
def test_past_it_his_features_are_gone_in_any_order(seed: int):
    records = scenario(True).raw_records(SETTINGS.pseudonym_key)
    if seed:
        random.Random(seed).shuffle(records)
    harness = run(records, seed)
    features = residents(harness)
    assert {"family": "bos", "initials": "b", "dob": "19700101"} in features.values()
    assert not any(m and m["family"] == "visser" for m in features.values())
    # nobody at the address matches the old signal any more: review, in every order
    assert list(harness.review().values()) == ["no-candidates"]
    assert not any(v["signals"] for v in harness.views(CATALOG).values())
