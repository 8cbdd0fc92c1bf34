"""Benchmark: intake rate per format (records/s) into the real broker.

Run with ``wijkhub bench-intake --records N``. Each format of every source
gets N records of its real shape (iJw and iWmo 305 messages built from the
iStandaarden example, DDAS JSON and CSV, income CSV and JSON, BRP and Haal
Centraal population exports, teams JSON lines and a ZGW CSV), all valid;
the time covers parsing, validation, pseudonymisation, Avro encoding and
producing until Kafka acknowledged everything. XML messages are measured as the
file drop takes them (up to ``filedrop.BATCH_FILES`` acknowledged together) and
one at a time (as HTTP posts arrive); XSD validation alone is timed in xmlschema,
which the intake uses, and in lxml's libxml2 validator, on the same messages.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid

from wijkhub.admin import prepare
from wijkhub.broker import cluster
from wijkhub.connectors.filedrop import BATCH_FILES
from wijkhub.connectors.formats import istandaarden
from wijkhub.connectors.intake import Intake
from wijkhub.settings import Settings
from wijkhub.synthetic import make_bsn
from wijkhub.testing import as_iwmo

JW305 = """<?xml version="1.0" encoding="UTF-8"?>
<jw305:Bericht xmlns:ijw="http://www.istandaarden.nl/ijw/3_2/basisschema/schema" \
xmlns:jw305="http://www.istandaarden.nl/ijw/3_2/jw305/schema">
<jw305:Header><jw305:BerichtCode>438</jw305:BerichtCode><jw305:BerichtVersie>3</jw305:BerichtVersie>
<jw305:BerichtSubversie>2</jw305:BerichtSubversie><jw305:Afzender>65656055</jw305:Afzender>
<jw305:Ontvanger>0363</jw305:Ontvanger><jw305:BerichtIdentificatie>
<ijw:Identificatie>{n}</ijw:Identificatie><ijw:Dagtekening>2026-04-15</ijw:Dagtekening>
</jw305:BerichtIdentificatie><jw305:XsdVersie><ijw:BasisschemaXsdVersie>1.0.0</ijw:BasisschemaXsdVersie>
<ijw:BerichtXsdVersie>1.0.0</ijw:BerichtXsdVersie></jw305:XsdVersie></jw305:Header>
<jw305:Client><jw305:Bsn>{bsn}</jw305:Bsn><jw305:Geboortedatum><ijw:Datum>2010-02-14</ijw:Datum>
</jw305:Geboortedatum><jw305:Geslacht>1</jw305:Geslacht><jw305:Naam><ijw:Geslachtsnaam>
<ijw:Achternaam>Wit</ijw:Achternaam></ijw:Geslachtsnaam><ijw:Voorletters>T</ijw:Voorletters>
</jw305:Naam><jw305:StartProducten><jw305:StartProduct><jw305:ToewijzingNummer>{n}</jw305:ToewijzingNummer>
<jw305:Product><ijw:Categorie>55</ijw:Categorie><ijw:Code>55A11</ijw:Code></jw305:Product>
<jw305:ToewijzingIngangsdatum>2026-04-01</jw305:ToewijzingIngangsdatum>
<jw305:Begindatum>2026-04-03</jw305:Begindatum><jw305:StatusAanlevering>1</jw305:StatusAanlevering>
</jw305:StartProduct></jw305:StartProducten></jw305:Client></jw305:Bericht>"""


def _rows(header: str, line: str, n: int, bsns: list[str], sep: str = ";") -> bytes:
    """A CSV export: the header, then ``line`` formatted per record i."""
    rows = [line.format(i=i, bsn=bsns[i], house=1 + i % 300) for i in range(n)]
    return "\n".join([header, *rows]).replace(";", sep).encode() + b"\n"


def _inputs(n: int) -> dict[str, tuple[str, list[bytes]]]:
    """Per format: (source, inputs). XML is one message per input, as systems send it."""
    import random

    rng = random.Random(5)
    bsns = [make_bsn(rng) for _ in range(n)]
    ddas = {"leveringen": [{"gemeentecode": "0363", "vroegsignalen": [
        {"ID": f"VS-{i}", "crisissignaal": False, "warmeOverdracht": False, "bedrag": 100 + i,
         "ontstaansdatum": "2025-01-01", "signaaldatum": "2025-02-01", "signaalpartner":
         {"type": "Huur"}, "client": {"Burgerservicenummer": bsns[i], "Postcode": "1011AB",
                                     "Huisnummer": str(1 + i % 300)}}
        for i in range(n)]}]}  # fmt: skip
    teams = "\n".join(
        json.dumps({"kind": "case_opened", "message_id": f"c{i}", "case_id": f"C{i}",
                    "team": "T", "case_type": "jeugd", "occurred_at": "2026-05-01",
                    "bsn": bsns[i]})
        for i in range(n)
    )  # fmt: skip
    income_json = [
        {"benefit_id": f"U{i}", "benefit_type": "bijstand", "change": "sanction",
         "occurred_at": "2026-04-01", "reason": "inlichtingenplicht", "bsn": bsns[i]}
        for i in range(n)
    ]  # fmt: skip
    haal_centraal = "\n".join(
        json.dumps({"gebeurtenis": "verhuizing", "mutatie_id": f"BRP-{i}",
                    "burgerservicenummer": bsns[i], "verblijfplaats": {
                        "functieAdres": {"code": "W"}, "datumVan": {"datum": "2026-03-01"},
                        "verblijfadres": {"postcode": "1011AB", "huisnummer": 1 + i % 300}}})
        for i in range(n)
    )  # fmt: skip
    jw305 = [JW305.format(n=100000 + i, bsn=bsns[i]).encode() for i in range(n)]
    return {
        "ijw-xml-jw305": ("ijw", jw305),
        "iwmo-xml-wmo305": ("iwmo", [as_iwmo(m, "305", "418") for m in jw305]),
        "ddas-json": ("vroegsignalering", [json.dumps(ddas).encode()]),
        "ddas-csv": (
            "vroegsignalering",
            [
                _rows(
                    "ID;bedrag;ontstaansdatum;signaaldatum;signaalpartner.type;Burgerservicenummer;"
                    "Achternaam;Geboortedatum;Postcode;Huisnummer",
                    "VS-{i};120,50;2025-01-01;2025-02-01;Energie;{bsn};Jansen;1970-01-01;1011AB;{house}",
                    n,
                    bsns,
                )
            ],
        ),
        "income-csv": (
            "income",
            [
                _rows(
                    "benefit_id;benefit_type;change;occurred_at;bsn",
                    "B{i};bijstand;ended;2026-05-01;{bsn}",
                    n,
                    bsns,
                )
            ],
        ),
        "income-json": ("income", [json.dumps(income_json).encode()]),
        "schuldhulp-csv": (
            "schuldhulp",
            [
                _rows(
                    "trajectory_id;organisation;change;occurred_at;contact;bsn",
                    "SH-{i};Stadsbank;started;2026-02-20;020-5551234;{bsn}",
                    n,
                    bsns,
                    sep=",",
                )
            ],
        ),
        "population-brp-csv": (
            "population",
            [
                _rows(
                    "Mutatie_id;Gebeurtenis;Burgerservicenummer;Datum;Postcode;Huisnummer;Huisletter;"
                    "FunctieAdres",
                    "BRP-{i};Inschrijving;{bsn};2026-01-15;1011AB;{house};A;W",
                    n,
                    bsns,
                )
            ],
        ),
        "population-haalcentraal-json-lines": ("population", [haal_centraal.encode()]),
        "teams-json-lines": ("teams", [teams.encode()]),
        "teams-zgw-csv": (
            "teams",
            [
                _rows(
                    "identificatie,zaaktype,wijkteam,startdatum,burgerservicenummer,gebeurtenis",
                    "Z-{i},jeugd,Wijkteam Noord,2026-03-09,{bsn},zaak geopend",
                    n,
                    bsns,
                    sep=",",
                )
            ],
        ),
    }


def run_bench(base: Settings, records: int) -> dict:
    with cluster(base, base.data_dir.resolve() / "bench-broker") as settings:
        return _run(settings.with_(
            topic_prefix=f"bench-intake-{uuid.uuid4().hex[:8]}.",
            pseudonym_key=secrets.token_urlsafe(32).encode(),
            dead_letter_key=secrets.token_urlsafe(32).encode(),
            log_level="WARNING",
        ), records)  # fmt: skip


def _ingest(settings: Settings, name: str, source: str, inputs: list[bytes], batch: int) -> dict:
    """The inputs through one Intake, ``batch`` inputs acknowledged together."""
    intake = Intake(settings, source)
    try:
        began = time.perf_counter()
        reports = []
        for n in range(0, len(inputs), batch):
            run = [(data, f"{name}-{n + i}") for i, data in enumerate(inputs[n : n + batch])]
            reports += intake.ingest_many(run)
        seconds = time.perf_counter() - began
    finally:
        intake.close()
    read, events = sum(r.read for r in reports), sum(r.events for r in reports)
    dead = sum(r.dead_lettered for r in reports)
    if events != read:  # every input is valid: a dead letter means the bench is wrong
        raise AssertionError(f"{name}: {dead} of {read} records were dead-lettered")
    return {"source": source, "read": read, "events": events, "dead_lettered": dead,
            "seconds": round(seconds, 2), "records_per_second": round(read / seconds)}  # fmt: skip


def _run(settings: Settings, records: int) -> dict:
    prepare(settings)
    result: dict = {"records_per_format": records, "formats": {}}
    for name, (source, inputs) in _inputs(records).items():
        if "-xml-" in name:  # one message per input
            # as the file drop takes them (acknowledged together), and as HTTP posts do
            found = _ingest(settings, name, source, inputs, BATCH_FILES)
            alone = _ingest(settings, name + "-alone", source, inputs, 1)
            found["one_at_a_time_records_per_second"] = alone["records_per_second"]
        else:
            found = _ingest(settings, name, source, inputs, 1)
        result["formats"][name] = found
    result["xsd_validation_ms_per_message"] = _validation(
        _inputs(min(records, 200))["ijw-xml-jw305"][1]
    )
    return result


def _validation(messages: list[bytes]) -> dict:
    """XSD validation alone, per message: xmlschema (what the intake runs) against lxml's
    libxml2 validator (``None`` where lxml is not installed), on the same messages."""
    import xmlschema

    schema = istandaarden._schema("ijw", "305")
    began = time.perf_counter()
    for m in messages:
        assert not list(schema.iter_errors(xmlschema.XMLResource(m, defuse="always")))
    result: dict = {"xmlschema": round((time.perf_counter() - began) * 1000 / len(messages), 3)}
    try:
        from lxml import etree
    except ImportError:
        return {**result, "lxml": None}
    validator = etree.XMLSchema(etree.parse(str(istandaarden.XSD_DIR / "ijw3.2" / "JW305.xsd")))
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    began = time.perf_counter()
    for m in messages:
        assert validator.validate(etree.fromstring(m, parser))
    return {**result, "lxml": round((time.perf_counter() - began) * 1000 / len(messages), 3)}
