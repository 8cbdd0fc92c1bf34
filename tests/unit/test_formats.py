"""Parsers: the real iStandaarden and DDAS examples, CSV/JSON exports, and arbitrary bytes."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wijkhub.connectors.formats import SOURCES, UnknownSource, parse
from wijkhub.testing import as_iwmo

from shared_data import IJW, VROEGSIGNALERING

DDAS = VROEGSIGNALERING / "enkelvoudigVoorbeeld.json"


def items(source, data, origin="f"):
    return list(parse(source, data, origin))


def test_jw301_is_one_snapshot_with_every_assignment():
    [item] = items("ijw", (IJW / "JW301.example.xml").read_bytes())
    r = item.record
    assert item.error is None
    assert (r["kind"], r["domain"], r["provider"], r["bsn"]) == (
        "toewijzing_snapshot",
        "youth",
        "42420001",
        "999900006",
    )
    assert [a["number"] for a in r["assignments"]] == ["300201", "300202"]
    assert r["assignments"][0] == {
        "number": "300201",
        "product_category": "55",
        "product_code": "55A11",
        "assigned_on": "2026-04-01",
        "start_on": "2026-04-01",
        "end_on": "2026-07-14",
    }


def test_jw305_and_jw307_give_one_event_per_product():
    started = items("ijw", (IJW / "JW305.example.xml").read_bytes())
    stopped = items("ijw", (IJW / "JW307.example.xml").read_bytes())
    assert [
        (i.record["kind"], i.record["provision_id"], i.record["occurred_at"]) for i in started
    ] == [
        ("provision_started", "300201", "2026-04-03"),
        ("provision_started", "300202", "2026-04-15"),
    ]
    assert {i.record["reason_code"] for i in stopped} == {"31"}
    assert len({i.record["message_id"] for i in started + stopped}) == 4


def test_jw315_with_an_impossible_date_is_one_dead_letter_with_that_reason():
    [item] = items("ijw", (IJW / "JW315.example.xml").read_bytes(), "JW315.example.xml")
    assert item.record is None
    assert item.error.startswith("XSD JW315: ToewijzingEinddatum: day is out of range for month")
    assert item.original == (IJW / "JW315.example.xml").read_bytes()


def test_iwmo_goes_through_the_same_core():
    data = as_iwmo((IJW / "JW305.example.xml").read_bytes(), "305", "418")
    parsed = items("iwmo", data)
    assert [i.error for i in parsed] == [None, None]
    assert {i.record["domain"] for i in parsed} == {"care"}
    assert items("ijw", data)[0].error == "an iwmo message sent to the ijw source"


def test_a_message_the_hub_does_not_read_is_refused_clearly():
    [item] = items("ijw", (IJW / "JW323.example.xml").read_bytes())
    assert item.error == "not an iJw/iWmo 3.2 301, 305, 307 or 315 message"


def test_external_entities_are_not_expanded():
    evil = (
        (IJW / "JW305.example.xml")
        .read_bytes()
        .replace(
            b'<?xml version="1.0" encoding="UTF-8"?>',
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
        )
    )
    [item] = items("ijw", evil)
    assert item.record is None
    assert item.error == "not well-formed XML: XMLResourceForbidden"


def test_ddas_example_keeps_the_signal_and_all_its_fields():
    [item] = items("vroegsignalering", DDAS.read_bytes(), "ddas.json")
    r = item.record
    assert (
        r["signal_id"],
        r["creditor_type"],
        r["amount"],
        r["arrears_since"],
        r["occurred_at"],
    ) == ("VS-2025-0001", "Energie", 450, "2024-12-10", "2025-01-05")
    assert (r["family_name"], r["birth_date"], r["postcode"], r["huisnummer"]) == (
        "Dijk",
        "1985-06-15",
        "1234AB",
        "10 A",
    )
    assert item.position == "ddas.json#1/levering 1/vroegsignaal 1"


def test_ddas_csv_has_the_same_fields():
    csv = (
        "ID;crisissignaal;warmeOverdracht;bedrag;ontstaansdatum;signaaldatum;"
        "signaalpartner.type;Burgerservicenummer;Achternaam;Geboortedatum;Postcode;Huisnummer\n"
        "VS-1;true;false;120,50;2025-01-01;2025-02-01;Huur;;Jansen;1970-01-01;1011AB;5\n"
    )
    [item] = items("vroegsignalering", csv.encode())
    assert item.record["amount"] == "120,50" and item.record["crisis"] == "true"
    assert (
        item.original
        == b"VS-1;true;false;120,50;2025-01-01;2025-02-01;Huur;;Jansen;1970-01-01;1011AB;5"
    )


def test_csv_rows_that_do_not_fit_the_header_are_dead_letters_with_their_line():
    csv = (
        b"benefit_id,benefit_type,change,occurred_at,bsn\n"
        b"B1,bijstand,ended,2026-01-01,111222333\nB2,x\n"
    )
    good, bad = items("income", csv, "inkomen.csv")
    assert good.record["kind"] == "benefit_changed" and good.position == "inkomen.csv:2"
    assert bad.error == "CSV line has 2 fields, the header 5" and bad.original == b"B2,x"


def test_json_array_object_and_lines():
    objs = [{"kind": "case_closed", "case_id": "1"}, {"kind": "case_closed", "case_id": "2"}]
    assert len(items("teams", json.dumps(objs).encode())) == 2
    assert len(items("teams", json.dumps(objs[0]).encode())) == 1
    lines = b"\n".join(json.dumps(o).encode() for o in objs) + b"\n{broken"
    parsed = items("teams", lines)
    assert [i.error for i in parsed] == [None, None, "input is not valid JSON"]


def test_unknown_source_is_an_error_not_a_crash():
    with pytest.raises(UnknownSource):
        items("bank", b"{}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=st.sampled_from(sorted(SOURCES)), data=st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_a_parser(source, data):
    for item in items(source, data):
        assert (item.record is None) != (item.error is None)
        assert isinstance(item.original, bytes)


@settings(max_examples=80, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=6000),
    name=st.sampled_from(["JW301", "JW305", "JW307", "JW315"]),
)
def test_truncated_messages_become_dead_letters(cut, name):
    data = (IJW / f"{name}.example.xml").read_bytes()
    truncated = data[:cut]
    parsed = items("ijw", truncated)
    if cut < len(data.rstrip()):
        assert all(i.error for i in parsed)


@settings(max_examples=100, deadline=None)
@given(data=st.text(max_size=500))
def test_arbitrary_text_as_ddas_csv_never_crashes(data):
    for item in items("vroegsignalering", data.encode()):
        assert (item.record is None) != (item.error is None)
