import datetime as dt

import pytest

from wijkhub.connectors.canonical import (
    SOURCE_KINDS,
    Refused,
    cloudevent_headers,
    event_id,
    to_raw_event,
)
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


def test_a_bsn_inside_a_message_id_does_not_travel_on():
    record = arrears(message_id="rel-111222333-x", correlation_id="c-111222333")
    first = to_raw_event(record, "vroegsignalering", P, "0363", NOW)[2]["envelope"]
    assert "111222333" not in first["source_message_id"] + first["correlation_id"]
    other = to_raw_event({**record, "message_id": "rel-111222334-x"}, "vroegsignalering", P,
                         "0363", NOW)[2]["envelope"]  # fmt: skip
    assert other["event_id"] != first["event_id"]  # ids still come from the real message id


def test_an_address_line_gives_the_house_number_when_there_is_no_huisnummer():
    record = {**arrears(), "address_line": "Hoofdstr. 12-a"}
    record.pop("huisnummer", None)
    event = to_raw_event(record, "vroegsignalering", P, "0363", NOW)[2]
    assert event["subject"]["address_ref"].endswith("-12-A")


def test_arrears_without_bsn_is_keyed_by_address_and_encodes():
    domain, key, event = to_raw_event(arrears(), "vroegsignalering", P, "0363", NOW)
    assert domain is Domain.DEBT
    assert key == "1011AB-5"
    assert event["subject"] == {
        "person_ref": None,
        "address_ref": "1011AB-5",
        "match": None,
        "contact": None,
        "data_quality": [],
    }
    assert event["envelope"]["event_id"] == event_id(P, "vroegsignalering", "m1")
    # keyed: another pseudonym key gives another id, so nobody can test a guessed message id
    assert event_id(Pseudonymiser(b"q" * 32), "vroegsignalering", "m1") != event_id(
        P, "vroegsignalering", "m1")  # fmt: skip
    decoded = Catalog().decode(Catalog().encode(RAW_EVENT, event), RAW_EVENT)
    assert decoded["payload"][0] == "nl.wijkhub.debt.ArrearsSignal"
    assert decoded["payload"][1]["amount_cents"] == 12000


def test_a_signal_carries_the_contact_details_its_source_supplied_and_a_case_none():
    """For the responsible team's contact card: the DDAS client's name, street, city and
    the telephone and e-mail a creditor delivered; nothing invented, no BSN in them."""
    record = {**arrears(), "initials": "A.", "family_name": "Yilmaz", "street": "Dorpsstraat",
              "city": "Amsterdam", "telephone": "06-12345678", "email": "123456782"}  # fmt: skip
    event = to_raw_event(record, "vroegsignalering", P, "0363", NOW)[2]
    assert event["subject"]["contact"] == {
        "name": "A. Yilmaz", "street": "Dorpsstraat", "city": "Amsterdam",
        "telephone": "06-12345678", "email": "*********",
    }  # fmt: skip
    case = {"kind": "case_opened", "message_id": "c9", "case_id": "C9", "team": "T",
            "case_type": "wmo", "occurred_at": "2026-04-01", "bsn": "111222333",
            "contact": "06-00000000", "telephone": "06-12345678"}  # fmt: skip
    assert to_raw_event(case, "teams", P, "0363", NOW)[2]["subject"]["contact"] is None


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
        ({"postcode": None, "huisnummer": None}, "neither a valid BSN nor an address"),
        ({"message_id": ""}, "message_id"),
    ],
)
def test_bad_records_get_a_clear_reason(change, message):
    with pytest.raises(InvalidInput, match=message):
        to_raw_event(arrears(**change), "vroegsignalering", P, "0363", NOW)


def test_bsn_required_where_the_source_must_have_one():
    record = {
        "kind": "benefit_changed",
        "message_id": "b1",
        "benefit_id": "B",
        "benefit_type": "x",
        "change": "ended",
        "occurred_at": "2026-01-01",
    }
    with pytest.raises(InvalidInput, match="BSN is missing"):
        to_raw_event(record, "income", P, "0363", NOW)


def test_creditor_signal_with_a_bad_bsn_is_kept_without_it_and_flagged():
    record = arrears(
        bsn="123456789", family_name="Dijk", prefix="van", initials="A.", birth_date="1985-06-15"
    )
    _, key, event = to_raw_event(record, "vroegsignalering", P, "0363", NOW)
    assert event["subject"]["person_ref"] is None
    assert event["subject"]["data_quality"] == ["bsn-failed-elfproef"]
    assert event["subject"]["match"]["family_name"] == "Dijk"
    assert key == "1011AB-5"
    assert "123456789" not in repr(event)


def test_a_valid_creditor_bsn_is_used_and_no_name_is_carried():
    record = arrears(bsn="111222333", family_name="Dijk", birth_date="1985-06-15")
    _, _, event = to_raw_event(record, "vroegsignalering", P, "0363", NOW)
    assert event["subject"]["person_ref"] == P.person_ref("111222333")
    assert event["subject"]["match"] is None


def test_an_invalid_bsn_where_it_is_mandatory_is_refused():
    record = {
        "kind": "case_opened",
        "message_id": "c1",
        "case_id": "C1",
        "team": "T",
        "case_type": "schuldhulp",
        "occurred_at": "2026-05-01",
        "bsn": "123456789",
    }
    with pytest.raises(InvalidInput, match="elfproef"):
        to_raw_event(record, "teams", P, "0363", NOW)


BSN = {"bsn": "111222333"}
EVERY_KIND = [
    {"kind": "person_registered", "postcode": "1011AB", "huisnummer": "1", **BSN},
    {"kind": "person_moved", "postcode": "1011AB", "huisnummer": "2", **BSN},
    {"kind": "person_deceased", **BSN},
    {
        "kind": "relation_changed",
        "related_bsn": "123456782",
        "relation": "kind",
        "change": "started",
        **BSN,
    },
    {
        "kind": "toewijzing_snapshot",
        "domain": "youth",
        "provider": "42420001",
        **BSN,
        "assignments": [
            {
                "number": "1",
                "product_category": "55",
                "product_code": "55A11",
                "assigned_on": "2026-04-01",
                "start_on": "2026-04-01",
            }
        ],
    },
    {
        "kind": "provision_started",
        "domain": "care",
        "provision_id": "1",
        "provider": "1",
        "product_category": "02",
        **BSN,
    },
    {
        "kind": "provision_stopped",
        "domain": "youth",
        "provision_id": "1",
        "provider": "1",
        "product_category": "55",
        "reason_code": "20",
        **BSN,
    },
    {
        "kind": "provision_requested",
        "domain": "care",
        "provider": "1",
        "product_category": "02",
        "requested_start": "2026-05-01",
        **BSN,
    },
    {
        "kind": "benefit_changed",
        "benefit_id": "B",
        "benefit_type": "bijstand",
        "change": "sanction",
        **BSN,
    },
    {
        "kind": "debt_help_changed",
        "trajectory_id": "T",
        "organisation": "Stadsbank",
        "change": "started",
        **BSN,
    },
    {"kind": "case_opened", "case_id": "C", "team": "T", "case_type": "jeugd", **BSN},
    {"kind": "case_closed", "case_id": "C", "team": "T", **BSN},
    {"kind": "coordinator_assigned", "team": "T", **BSN},
    {
        "kind": "consent_changed",
        "purpose": "wmo-regie",
        "consent_domain": "youth",
        "consent": "given",
        **BSN,
    },
]


SOURCE_OF = {kind: source for source, kinds in SOURCE_KINDS.items() for kind in kinds}
CARE_SOURCE = {"care": "iwmo", "youth": "ijw"}  # the iStandaarden kinds: domain per record


def source_of(record: dict) -> str:
    return CARE_SOURCE.get(record.get("domain", ""), SOURCE_OF[record["kind"]])


@pytest.mark.parametrize("record", EVERY_KIND, ids=lambda r: r["kind"])
def test_every_kind_becomes_an_avro_event(record):
    catalog = Catalog()
    full = {"message_id": "m", "occurred_at": "2026-05-01", **record}
    _, _, event = to_raw_event(full, source_of(record), P, "0363", NOW)
    decoded = catalog.decode(catalog.encode(RAW_EVENT, event), RAW_EVENT)
    assert decoded["envelope"]["type"].startswith("nl.wijkhub.")
    assert decoded["payload"] == (event["payload"][0], event["payload"][1])
    assert "111222333" not in repr(decoded)


def test_an_ijw_source_cannot_send_care_records():
    [snapshot] = [r for r in EVERY_KIND if r["kind"] == "toewijzing_snapshot"]
    record = {"message_id": "m", "occurred_at": "2026-05-01", **snapshot, "domain": "care"}
    assert record["kind"] in SOURCE_KINDS["ijw"]
    with pytest.raises(Refused) as refused:
        to_raw_event(record, "ijw", P, "0363", NOW)
    assert refused.value.code == "domain-not-allowed"
