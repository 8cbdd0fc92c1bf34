"""Column names of real exports, mapped to the canonical source-record fields.

Municipal systems do not export our canonical names. The population source
takes the field names of the Haal Centraal BRP Personen API (``burgerservice
nummer``, ``verblijfplaats.verblijfadres.postcode``, ``functieAdres``; nested
JSON is flattened with dots, as in a CSV export of it) plus the usual
``gebeurtenis``/``mutatiesoort`` column of a mutation feed. The teams source
takes the names of the ZGW Zaken API (``identificatie``, ``zaaktype``,
``startdatum``) used by case systems. Names match case-insensitively;
a canonical name that is present always wins, so canonical exports are
unchanged. Codes in those systems (``W``/``B`` for the address function,
Dutch event names) are translated to the canonical values.

Unknown columns are ignored, so a full BRP extract (names, nationality and
more) passes through without that data going any further. Every name and
code here is listed in connectors/MAPPING.md (tests/unit/test_mapping_doc.py
fails otherwise): what is read from a BRP extract is never a surprise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Record = dict[str, Any]

# canonical field ← candidate source names (lower case; dots for nested JSON)
ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    "population": {
        "kind": ("gebeurtenis", "mutatiesoort", "soortmutatie"),
        "message_id": ("mutatie_id", "mutatieid", "berichtid"),
        "bsn": ("burgerservicenummer",),
        "occurred_at": (
            "datum",
            "datumingang",
            "mutatiedatum",
            "datumaanvangadreshouding",
            "verblijfplaats.datumvan.datum",
            "overlijden.datum",
        ),
        "bag_id": (
            "adresseerbaarobjectidentificatie",
            "verblijfplaats.adresseerbaarobjectidentificatie",
        ),
        "postcode": ("verblijfplaats.verblijfadres.postcode", "verblijfplaats.postcode"),
        "address_kind": (
            "functieadres",
            "functieadres.code",
            "verblijfplaats.functieadres.code",
        ),
        "related_bsn": ("gerelateerde.burgerservicenummer", "relatie.burgerservicenummer"),
        # name and date of birth: only as far as linking needs them (see canonical._match)
        "family_name": ("geslachtsnaam", "naam.geslachtsnaam"),
        "prefix": ("voorvoegsel", "naam.voorvoegsel"),
        "initials": ("voorletters", "naam.voorletters"),
        "given_names": ("voornamen", "naam.voornamen"),
        "birth_date": ("geboortedatum", "geboorte.datum.datum"),
        "relation": ("soortrelatie", "relatie.soort"),
        "change": ("relatiewijziging",),
        "destination": ("gemeentevaninschrijving", "nieuwegemeente", "land"),
    },
    "teams": {
        "kind": ("gebeurtenis",),
        "message_id": ("bericht_id", "berichtid"),
        "case_id": ("identificatie", "zaakidentificatie", "zaaknummer"),
        "bsn": ("burgerservicenummer", "betrokkene.burgerservicenummer"),
        "team": ("wijkteam", "behandelaar", "organisatie"),
        "case_type": ("zaaktype",),
        "occurred_at": ("datum", "startdatum", "einddatum", "registratiedatum"),
        "contact": ("contactpersoon", "contactgegevens", "telefoon"),
        "outcome": ("resultaat",),
        "purpose": ("doel", "doelbinding"),
        "consent_domain": ("domein",),
        "consent": ("toestemming",),
    },
}

# Huisnummer, huisletter and huisnummertoevoeging are separate in the BRP.
HOUSE_PARTS = {
    "population": (
        ("huisnummer", "verblijfplaats.verblijfadres.huisnummer", "verblijfplaats.huisnummer"),
        ("huisletter", "verblijfplaats.verblijfadres.huisletter", "verblijfplaats.huisletter"),
        (
            "huisnummertoevoeging",
            "verblijfplaats.verblijfadres.huisnummertoevoeging",
            "verblijfplaats.huisnummertoevoeging",
        ),
    ),
}

VALUES: dict[str, dict[str, str]] = {
    "kind": {
        "inschrijving": "person_registered",
        "geboorte": "person_registered",
        "vestiging": "person_registered",
        "verhuizing": "person_moved",
        "adreswijziging": "person_moved",
        "overlijden": "person_deceased",
        "vertrek": "person_departed",
        "emigratie": "person_departed",
        "relatiewijziging": "relation_changed",
        "zaak geopend": "case_opened",
        "zaak gesloten": "case_closed",
        "regisseur toegewezen": "coordinator_assigned",
        "toestemming": "consent_changed",
    },
    "address_kind": {"w": "woonadres", "b": "briefadres"},
    "relation": {"ouder": "ouder", "kind": "kind", "partner": "partner", "echtgenoot": "partner"},
    "change": {"aangegaan": "started", "beeindigd": "ended", "beëindigd": "ended"},
    "consent": {"gegeven": "given", "ingetrokken": "withdrawn"},
}


def house_number(*parts: Any) -> str | None:
    """Huisnummer + huisletter + toevoeging as one text ("12 A bis"), or None."""
    text = " ".join(str(p).strip() for p in parts if p not in (None, ""))
    return text or None


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects as dotted names: ``{"a": {"b": 1}}`` → ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _lookup(flat: dict[str, Any]) -> Callable[[tuple[str, ...]], Any]:
    lowered = {k.lower(): v for k, v in flat.items()}

    def first(names: tuple[str, ...]) -> Any:
        for name in names:
            if lowered.get(name) not in (None, ""):
                return lowered[name]
        return None

    return first


def canonical_names(source: str, record: Record) -> Record:
    """The record with the source system's names translated; canonical names win."""
    aliases = ALIASES.get(source)
    if aliases is None:
        return record
    flat = flatten(record)
    first = _lookup(flat)
    out = dict(flat)
    for field, names in aliases.items():
        if out.get(field) not in (None, ""):
            continue
        value = first((field, *names))  # "Postcode" is postcode too
        if value is None:
            continue
        if isinstance(value, str) and field in VALUES:
            value = VALUES[field].get(value.strip().lower(), value)
        out[field] = value
    if source in HOUSE_PARTS:
        house = house_number(*(first(names) for names in HOUSE_PARTS[source]))
        if house:
            out["huisnummer"] = house
    return out
