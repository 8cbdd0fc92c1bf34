"""Minimisation: a resident's name and date of birth leave the address stage's state once
the building's facts are a grace period past the day they left; in event time, so the
outcome does not depend on the order the records arrive in."""

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


def scenario(later_resident: bool) -> Scenario:
    s = Scenario(3)
    visser = s.person("Visser", "1990-09-09")
    s.register(visser, "1012CD", "3", "2024-05-01")
    s.register(visser, "1013EF", "11", "2025-01-01")  # left 1012CD on 2025-01-01
    s.arrears("1012CD", "3", "Zorg", "2024-12-01", who=visser)  # by name, while living there
    if later_resident:  # the building's facts reach 2026-03-01: past 2025-01-01 + 365 days
        s.register(s.person("Bos", "1970-01-01"), "1012CD", "3", "2026-03-01")
    return s


def run(records, seed: int) -> Harness:
    harness = Harness(build_stages(SETTINGS, CATALOG, clock=lambda: 0.0), rng=random.Random(seed))
    for record in records:
        harness.feed(*record)
    harness.run(shuffle=seed > 0)
    return harness


def building(harness: Harness) -> dict:
    return json.loads(harness.state["address"][b"1012CD-3"])["state"]


def test_within_the_grace_period_the_signal_links_by_name():
    harness = run(scenario(False).raw_records(SETTINGS.pseudonym_key), 0)
    [visser] = [r for r in building(harness)["residents"].values() if r["periods"]]
    # normalised: all the matcher needs
    assert visser["match"] == {"family": "visser", "initials": "v", "dob": "19900909"}
    assert [v["signals"] for v in harness.views(CATALOG).values() if v["signals"]]


@pytest.mark.parametrize("seed", range(8))
def test_past_it_the_features_are_gone_and_the_signal_too_in_any_order(seed: int):
    records = scenario(True).raw_records(SETTINGS.pseudonym_key)
    if seed:
        random.Random(seed).shuffle(records)
    harness = run(records, seed)
    text = harness.state["address"][b"1012CD-3"]
    assert "isser" not in text and "1990-09-09" not in text and "19900909" not in text
    assert '"bos"' in text  # the one still living there keeps hers: signals may name her
    assert not any(v["signals"] for v in harness.views(CATALOG).values())
    assert harness.review() == {}  # too old to review: nobody there matches it any more
