import datetime as dt

import pytest
from wijkhub.connectors.canonical import cloudevent_headers, event_id, to_raw_event
from wijkhub.connectors.identity import InvalidInput, Pseudonymiser
from wijkhub.schemas.registry import RAW_EVENT, Catalog
from wijkhub.streams.topics import Domain

P = Pseudonymiser(b"k" * 32)
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def arrears(**over):
    r = {
        "kind": "arrears_signal",
        "message_id": "m1",
        "signal_id": "s1",
        "creditor_type": "Huur",
        "amount_cents": "12000",
        "arrears_months": "2",
        "occurred_at": "2026-05-01",
        "postcode": "1011AB",
        "huisnummer": "5",
    }
    r.update(over)
    return r


def test_arrears_without_bsn_is_keyed_by_address_and_encodes():
    domain, key, event = to_raw_event(arrears(), "vroegsignalering", P, "0363", NOW)
    assert domain is Domain.DEBT
    assert key == "1011AB-5"
    assert event["subject"] == {"person_ref": None, "address_ref": "1011AB-5"}
    assert event["envelope"]["event_id"] == event_id("vroegsignalering", "m1")
    decoded = Catalog().decode(Catalog().encode(RAW_EVENT, event), RAW_EVENT)
    assert decoded["payload"][0] == "nl.wijkhub.debt.ArrearsSignal"
    assert decoded["payload"][1]["amount_cents"] == 12000


def test_person_event_carries_only_the_pseudonym():
    record = {
        "kind": "case_opened",
        "message_id": "c1",
        "case_id": "C1",
        "team": "T",
        "case_type": "schuldhulp",
        "occurred_at": "2026-05-01",
        "bsn": "111222333",
    }
    _, key, event = to_raw_event(record, "teams", P, "0363", NOW)
    assert key == P.person_ref("111222333")
    assert "111222333" not in repr(event)
    assert all(b"111222333" not in v for _, v in cloudevent_headers(event))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"occurred_at": "2027-06-31"}, "occurred_at"),
        ({"creditor_type": "Bank"}, "creditor_type"),
        ({"amount_cents": "veel"}, "amount_cents"),
        ({"kind": "unknown"}, "unknown kind"),
        ({"postcode": None, "huisnummer": None}, "neither a BSN nor an address"),
        ({"message_id": ""}, "message_id"),
    ],
)
def test_bad_records_get_a_clear_reason(change, message):
    with pytest.raises(InvalidInput, match=message):
        to_raw_event(arrears(**change), "vroegsignalering", P, "0363", NOW)


def test_bsn_required_where_the_source_must_have_one():
    record = {
        "kind": "benefit_ended",
        "message_id": "b1",
        "benefit_id": "B",
        "benefit_type": "x",
        "reason": "r",
        "occurred_at": "2026-01-01",
    }
    with pytest.raises(InvalidInput, match="BSN is missing"):
        to_raw_event(record, "income", P, "0363", NOW)
