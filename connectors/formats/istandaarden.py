"""iJw 3.2 and iWmo 3.2 messages (301, 305, 307, 315): one parsing core for both standards.

Every message is validated against its XSD (xmlschema, in the pass that decodes
it) before a field is read; a message that does not validate becomes one dead letter whose reason
names the element and the problem (JW315.example.xml's 2027-06-31 gives
"ToewijzingEinddatum: day is out of range for month"). The two standards
share their message structure, so only the namespace tells them apart.

The field mapping of every source format is one table: connectors/MAPPING.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any, cast

import xmlschema

from wijkhub.connectors.formats.base import Item, safe_reason
from wijkhub.schemas.registry import SCHEMA_DIR

XSD_DIR = SCHEMA_DIR / "istandaarden"
_ROOT_NS = re.compile(
    rb"<(?:\w+:)?Bericht\b[^>]*xmlns(?::\w+)?=\"http://www\.istandaarden\.nl/"
    rb"(ijw|iwmo)/3_2/(jw|wmo)(301|305|307|315)/schema\""
)
STANDARDS = {"ijw": ("ijw3.2", "JW", "youth"), "iwmo": ("iwmo3.2", "WMO", "care")}
MAX_BYTES = 20 * 1024 * 1024


@cache
def _schema(standard: str, message: str) -> xmlschema.XMLSchema:
    folder, prefix, _ = STANDARDS[standard]
    return xmlschema.XMLSchema(str(XSD_DIR / folder / f"{prefix}{message}.xsd"))


def _list(node: dict[str, Any] | None, name: str) -> list[dict[str, Any]]:
    value = (node or {}).get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def parse(data: bytes, origin: str, expect: str | None = None) -> Iterator[Item]:
    """Items for one XML message. ``expect`` ('ijw'/'iwmo') refuses the other standard."""
    position = f"{origin}"
    if len(data) > MAX_BYTES:
        yield Item(data, position, error="message larger than 20 MiB")
        return
    found = _ROOT_NS.search(data[:4096])
    if not found:
        yield Item(data, position, error="not an iJw/iWmo 3.2 301, 305, 307 or 315 message")
        return
    standard, message = found.group(1).decode(), found.group(3).decode()
    if expect and standard != expect:
        yield Item(data, position, error=f"an {standard} message sent to the {expect} source")
        return
    schema = _schema(standard, message)
    try:
        # defuse="always": no entity expansion, no external resources (XXE).
        resource = xmlschema.XMLResource(data, defuse="always")
        # One pass: lax decoding validates as it decodes and returns the errors that
        # iter_errors finds (checked on every sample and hundreds of mutations of them);
        # validating first and decoding strictly after walked the document twice.
        lax = schema.to_dict(resource, validation="lax", strip_namespaces=True)
        # lax decoding always returns (data, errors); its DecodeType covers every mode
        decoded, errors = cast(tuple[Any, list[xmlschema.XMLSchemaValidationError]], lax)
        if errors:
            first = errors[0]
            element = (first.path or "").rsplit("/", 1)[-1].split(":")[-1].split("[")[0]
            reason = f"XSD {STANDARDS[standard][1]}{message}: {element}: {first.reason}"
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            yield Item(data, position, error=safe_reason(reason + more))
            return
        # Valid: the message element as a dict (the DecodeType also covers an empty
        # document and strict decoding's bare value).
        doc = cast(dict[str, Any], decoded)
    except xmlschema.XMLSchemaException as exc:
        yield Item(data, position, error=safe_reason(f"not well-formed XML: {type(exc).__name__}"))
        return
    except Exception as exc:  # ElementTree's ParseError and friends on broken bytes
        yield Item(data, position, error=safe_reason(f"not well-formed XML: {type(exc).__name__}"))
        return
    yield from _records(doc, standard, message, data, position)


def _records(
    doc: dict[str, Any], standard: str, message: str, data: bytes, position: str
) -> Iterator[Item]:
    header, client = doc["Header"], doc["Client"]
    ident = header["BerichtIdentificatie"]
    base = {
        "domain": STANDARDS[standard][2],
        "bsn": str(client["Bsn"]),
        "correlation_id": f"{header['Afzender']}-{ident['Identificatie']}",
    }
    msg_id = (
        f"{standard}{message}-{header['Afzender']}-{ident['Identificatie']}-{ident['Dagtekening']}"
    )

    def product(p: dict[str, Any]) -> dict[str, str]:
        return {
            "product_category": str(p["Product"]["Categorie"]),
            "product_code": str(p["Product"].get("Code") or ""),
        }

    if message == "301":
        assignments = [
            {
                "number": str(p["ToewijzingNummer"]),
                **product(p),
                "assigned_on": p["Toewijzingsdatum"],
                "start_on": p["Ingangsdatum"],
                "end_on": p.get("Einddatum"),
            }
            for p in _list(client.get("ToegewezenProducten"), "ToegewezenProduct")
        ]
        yield Item(
            data,
            position,
            {
                **base,
                "kind": "toewijzing_snapshot",
                "message_id": msg_id,
                "provider": str(header["Ontvanger"]),
                "occurred_at": ident["Dagtekening"],
                "assignments": assignments,
            },
        )
        return
    if message == "305":
        products, kind, day = (
            _list(client.get("StartProducten"), "StartProduct"),
            "provision_started",
            "Begindatum",
        )
    elif message == "307":
        products, kind, day = (
            _list(client.get("StopProducten"), "StopProduct"),
            "provision_stopped",
            "Einddatum",
        )
    else:
        products = _list(client.get("AangevraagdeProducten"), "AangevraagdProduct")
        kind, day = "provision_requested", None  # a request has no provision date yet
    for n, p in enumerate(products, 1):
        record: dict[str, Any] = {
            **base,
            "kind": kind,
            "provider": str(header["Afzender"]),
            **product(p),
        }
        if day is None:  # provision_requested
            record |= {
                "message_id": f"{msg_id}-{n}",
                "occurred_at": ident["Dagtekening"],
                "requested_start": p["ToewijzingIngangsdatum"],
                "requested_end": p.get("ToewijzingEinddatum"),
            }
        else:
            number = str(p["ToewijzingNummer"])
            record |= {
                "message_id": f"{msg_id}-{number}-{p[day]}",
                "provision_id": number,
                "occurred_at": p[day],
            }
            if kind == "provision_stopped":
                record["reason_code"] = str(p["RedenBeeindiging"])
        yield Item(data, f"{position}#{n}", record)
