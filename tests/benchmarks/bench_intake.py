"""Benchmark: intake rate per format (records/s) into the real broker.

Run with ``wijkhub bench-intake --records N --json``. Each format gets N
records of its real shape (iJw 305 XML messages built from the iStandaarden
example, a DDAS JSON delivery, an income CSV, teams JSON lines), all valid;
the time covers parsing, validation, pseudonymisation, Avro encoding and
producing until Kafka acknowledged everything.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid

from wijkhub.admin import create_topics
from wijkhub.broker import LocalBroker
from wijkhub.connectors.intake import Intake
from wijkhub.settings import Settings
from wijkhub.synthetic import make_bsn

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


def _inputs(n: int) -> dict[str, tuple[str, list[bytes]]]:
    import random

    rng = random.Random(5)
    bsns = [make_bsn(rng) for _ in range(n)]
    ddas = {"leveringen": [{"gemeentecode": "0363", "vroegsignalen": [
        {"ID": f"VS-{i}", "crisissignaal": False, "warmeOverdracht": False, "bedrag": 100 + i,
         "ontstaansdatum": "2025-01-01", "signaaldatum": "2025-02-01", "signaalpartner":
         {"type": "Huur"}, "client": {"Burgerservicenummer": bsns[i], "Postcode": "1011AB",
                                     "Huisnummer": str(1 + i % 300)}}
        for i in range(n)]}]}  # fmt: skip
    csv = "benefit_id;benefit_type;change;occurred_at;bsn\n" + "".join(
        f"B{i};bijstand;ended;2026-05-01;{bsns[i]}\n" for i in range(n)
    )
    teams = "\n".join(
        json.dumps({"kind": "case_opened", "message_id": f"c{i}", "case_id": f"C{i}",
                    "team": "T", "case_type": "jeugd", "occurred_at": "2026-05-01",
                    "bsn": bsns[i]})
        for i in range(n)
    )  # fmt: skip
    return {
        "ijw-xml-jw305": (
            "ijw",
            [JW305.format(n=100000 + i, bsn=bsns[i]).encode() for i in range(n)],
        ),
        "ddas-json": ("vroegsignalering", [json.dumps(ddas).encode()]),
        "income-csv": ("income", [csv.encode()]),
        "teams-json-lines": ("teams", [teams.encode()]),
    }


def run_bench(base: Settings, records: int) -> dict:
    broker = None
    settings = base
    if settings.bootstrap_servers is None:
        broker = LocalBroker(settings.data_dir.resolve() / "bench-broker")
        settings = settings.with_(bootstrap_servers=broker.start())
    settings = settings.with_(
        topic_prefix=f"bench-intake-{uuid.uuid4().hex[:8]}.",
        pseudonym_key=secrets.token_urlsafe(32).encode(),
        dead_letter_key=secrets.token_urlsafe(32).encode(),
        log_level="WARNING",
    )
    try:
        create_topics(settings)
        result: dict = {"records_per_format": records, "formats": {}}
        for name, (source, inputs) in _inputs(records).items():
            intake = Intake(settings, source)
            try:
                began = time.perf_counter()
                read = events = dead = 0
                for n, data in enumerate(inputs):
                    report = intake.ingest(data, f"{name}-{n}")
                    read, events, dead = (
                        read + report.read,
                        events + report.events,
                        dead + report.dead_lettered,
                    )
                seconds = time.perf_counter() - began
            finally:
                intake.close()
            result["formats"][name] = {"source": source, "read": read, "events": events,
                                       "dead_lettered": dead, "seconds": round(seconds, 2),
                                       "records_per_second": round(read / seconds)}  # fmt: skip
        return result
    finally:
        if broker is not None:
            broker.stop()
