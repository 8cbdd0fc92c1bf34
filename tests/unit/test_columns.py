"""Real export column names (Haal Centraal BRP, ZGW Zaken) reach the canonical events."""

import datetime as dt
import json

from wijkhub.connectors.canonical import to_raw_event
from wijkhub.connectors.formats import parse
from wijkhub.connectors.identity import Pseudonymiser, address_ref

P = Pseudonymiser(b"k" * 32)
NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def events(source, data):
    out = []
    for item in parse(source, data, "export"):
        assert item.error is None, item.error
        record = {"message_id": f"m{len(out)}", **item.record}
        out.append(to_raw_event(record, source, P, "0363", NOW)[2])
    return out


def test_a_brp_mutation_csv_with_separate_house_letter_and_addition():
    csv = (
        "Burgerservicenummer;Gebeurtenis;Datum;Postcode;Huisnummer;Huisletter;"
        "Huisnummertoevoeging;FunctieAdres\n"
        "999993653;Verhuizing;2026-03-02;1011 ab;12;a;bis;W\n"
        "999990019;Inschrijving;2026-03-05;1011AB;12;A;BIS;B\n"
    )
    moved, registered = events("population", csv.encode())
    assert moved["payload"][0].endswith("PersonRegistered")  # a move registers the new address
    assert moved["envelope"]["type"] == "nl.wijkhub.population.person-moved"
    assert moved["subject"]["address_ref"] == address_ref("1011AB", "12-A bis")
    assert registered["subject"]["address_ref"] == moved["subject"]["address_ref"]
    assert moved["payload"][1]["address_kind"] == "woonadres"
    assert registered["payload"][1]["address_kind"] == "briefadres"
    assert moved["envelope"]["occurred_at"].date() == dt.date(2026, 3, 2)


def test_a_haal_centraal_persoon_as_nested_json():
    persoon = {
        "gebeurtenis": "inschrijving",
        "burgerservicenummer": "999993653",
        "naam": {"geslachtsnaam": "Dijk", "voorvoegsel": "van", "voornamen": "Jan Pieter"},
        "geboorte": {"datum": {"datum": "1985-06-15"}},
        "nationaliteiten": "wordt niet doorgegeven",
        "verblijfplaats": {
            "adresseerbaarObjectIdentificatie": "0363010000758545",
            "datumVan": {"type": "Datum", "datum": "2025-11-01"},
            "functieAdres": {"code": "W", "omschrijving": "woonadres"},
            "verblijfadres": {"postcode": "1011AB", "huisnummer": 5},
        },
    }
    [event] = events("population", json.dumps(persoon).encode())
    assert event["subject"]["address_ref"] == "1011AB-5"  # the postcode form, not BAG-…
    assert event["envelope"]["occurred_at"].date() == dt.date(2025, 11, 1)
    assert "wordt niet doorgegeven" not in json.dumps(event, default=str)
    match = event["subject"]["match"]  # for linking signals without BSN; dropped there
    assert (match["family_name"], match["prefix"], match["initials"]) == ("Dijk", "van", "JP")
    assert str(match["birth_date"]) == "1985-06-15"


def test_a_zgw_case_export_for_the_teams_source():
    csv = (
        "identificatie,zaaktype,wijkteam,startdatum,burgerservicenummer,contactpersoon,gebeurtenis\n"
        "Z-2026-001,schuldhulp,Wijkteam Oost,2026-02-01,999993653,020-5550000,zaak geopend\n"
    )
    [event] = events("teams", csv.encode())
    name, payload = event["payload"]
    assert name.endswith("CaseOpened")
    assert (payload["case_id"], payload["team"], payload["case_type"]) == (
        "Z-2026-001",
        "Wijkteam Oost",
        "schuldhulp",
    )
    assert payload["opened_on"] == dt.date(2026, 2, 1) and payload["contact"] == "020-5550000"


def test_canonical_names_win_over_system_names():
    record = {"kind": "case_closed", "gebeurtenis": "zaak geopend", "case_id": "C1"}
    [item] = parse("teams", json.dumps(record).encode(), "x")
    assert item.record["kind"] == "case_closed" and item.record["case_id"] == "C1"


def test_a_haal_centraal_persoon_with_only_a_bag_id_is_keyed_by_it():
    persoon = {
        "gebeurtenis": "inschrijving",
        "burgerservicenummer": "999993653",
        "verblijfplaats": {
            "adresseerbaarObjectIdentificatie": "0363010000758545",
            "datumVan": {"datum": "2025-11-01"},
        },
    }
    [event] = events("population", json.dumps(persoon).encode())
    assert event["subject"]["address_ref"] == "BAG-0363010000758545"


def test_one_door_one_address_ref_from_brp_csv_haal_centraal_and_ddas():
    """Residents and creditor signals for 1011 AB 12 a-2 must meet on the same key."""
    brp_csv = (
        "Burgerservicenummer;Gebeurtenis;Datum;AdresseerbaarObjectIdentificatie;Postcode;"
        "Huisnummer;Huisletter;Huisnummertoevoeging\n"
        "999993653;Inschrijving;2026-03-02;0363010000758545;1011 ab;12;a;2\n"
    )
    haal_centraal = {
        "gebeurtenis": "inschrijving",
        "burgerservicenummer": "999993653",
        "verblijfplaats": {
            "adresseerbaarObjectIdentificatie": "0363010000758545",
            "datumVan": {"datum": "2026-03-02"},
            "verblijfadres": {
                "postcode": "1011AB",
                "huisnummer": 12,
                "huisletter": "A",
                "huisnummertoevoeging": "2",
            },
        },
    }
    ddas = {
        "leveringen": [
            {
                "vroegsignalen": [
                    {
                        "ID": "VS-1",
                        "signaaldatum": "2026-03-10",
                        "signaalpartner": {"type": "Huur"},
                        "bedrag": 612.4,
                        "client": {
                            "Achternaam": "Bakker",
                            "Postcode": "1011AB",
                            "Huisnummer": "12",
                            "Huisletter": "a",
                            "Huisnummertoevoeging": "2",
                        },
                    }
                ]
            }
        ]
    }
    [from_csv] = events("population", brp_csv.encode())
    [from_api] = events("population", json.dumps(haal_centraal).encode())
    [signal] = events("vroegsignalering", json.dumps(ddas).encode())
    refs = {e["subject"]["address_ref"] for e in (from_csv, from_api, signal)}
    assert refs == {"1011AB-12-A-2"}
    assert from_csv["subject"]["person_ref"] == from_api["subject"]["person_ref"]
