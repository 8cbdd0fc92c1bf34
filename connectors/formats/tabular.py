"""CSV and JSON exports, and the DDAS vroegsignalering exchange model.

CSV: a header line, ``;`` or ``,`` separated (sniffed), UTF-8 (a BOM is
ignored); each row is one record and its original bytes are its line.
JSON: an array of objects, one object, or JSON lines. Exports use the
canonical field names of :mod:`wijkhub.connectors.canonical`; a source may
name a default ``kind`` so a single-purpose export needs no kind column.
DDAS (VNG, v0.9): ``leveringen[].vroegsignalen[]`` in JSON, or a CSV with the
same field names (nested names flattened with a dot, e.g. ``signaalpartner.type``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

from wijkhub.connectors.formats.base import Item
from wijkhub.connectors.formats.columns import canonical_names, flatten, house_number

MAX_FIELD = 10_000


def ddas_record(signal: dict[str, Any]) -> dict[str, Any]:
    """A DDAS Vroegsignaal (JSON, or a flattened CSV row) as a canonical source record."""
    s = flatten(signal)

    def get(*names: str) -> Any:
        for n in names:
            for candidate in (n, f"client.{n}"):
                if s.get(candidate) not in (None, ""):
                    return s[candidate]
        return None

    house = house_number(get("Huisnummer"), get("Huisletter"), get("Huisnummertoevoeging"))
    return {
        "kind": "arrears_signal",
        "message_id": f"ddas-{get('ID')}",
        "signal_id": get("ID"),
        "creditor_type": get("signaalpartner.type", "signaalpartner_type"),
        "amount": get("bedrag"),
        "arrears_since": get("ontstaansdatum"),
        "occurred_at": get("signaaldatum"),
        "crisis": get("crisissignaal"),
        "warm_handover": get("warmeOverdracht"),
        "bsn": get("Burgerservicenummer"),
        "initials": get("Voorletters"),
        "prefix": get("Voorvoegsel"),
        "family_name": get("Achternaam"),
        "birth_date": get("Geboortedatum"),
        "postcode": get("Postcode"),
        "huisnummer": house,
        # for the responsible team's contact card (issue 17): the DDAS client's street and
        # city, and telephone and e-mail where the signal partner delivered them
        "street": get("Straatnaam"),
        "city": get("Plaatsnaam"),
        "telephone": get("Telefoonnummer", "telefoonnummer"),
        "email": get("Emailadres", "emailadres", "email"),
    }


def parse_csv(
    data: bytes, origin: str, default_kind: str | None = None, source: str = ""
) -> Iterator[Item]:
    """One item per data row; a row that does not fit the header is a dead letter."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield Item(data, origin, error="CSV is not UTF-8")
        return
    lines = text.splitlines(keepends=True)
    if not lines:
        return
    delimiter = ";" if lines[0].count(";") >= lines[0].count(",") else ","
    header = next(csv.reader([lines[0]], delimiter=delimiter))
    if len(set(header)) != len(header) or not all(h.strip() for h in header):
        yield Item(data, f"{origin}:1", error="CSV header has empty or repeated column names")
        return
    names = [h.strip() for h in header]
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        position = f"{origin}:{number}"
        original = line.rstrip("\r\n").encode()
        try:
            [row] = list(csv.reader([line], delimiter=delimiter, strict=True))
        except (csv.Error, ValueError):
            yield Item(original, position, error="CSV line is malformed (quotes or line breaks)")
            continue
        if len(row) != len(names):
            yield Item(
                original, position, error=f"CSV line has {len(row)} fields, the header {len(names)}"
            )
            continue
        if any(len(v) > MAX_FIELD for v in row):
            yield Item(original, position, error="CSV field longer than 10000 characters")
            continue
        fields = dict(zip(names, (v.strip() for v in row), strict=True))
        record = ddas_record(fields) if source == "vroegsignalering" else fields
        record = canonical_names(source, record)
        if default_kind and not record.get("kind"):
            record["kind"] = default_kind
        yield Item(original, position, record)


class NotJson(ValueError):
    """Bytes that are no JSON this hub takes: malformed, not UTF-8, nested too deep,
    an integer over Python's 4,300 digits."""


def _load(data: bytes) -> Any:
    """``json.loads`` whose every refusal is a :class:`NotJson` (a deep nesting raises
    RecursionError, a huge integer a plain ValueError: neither is a JSONDecodeError)."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError too
        raise NotJson(type(exc).__name__) from None


def _dump(obj: Any) -> bytes:
    """A record's bytes again, for its dead letter; lone surrogates kept, not fatal."""
    return json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _objects(data: bytes, origin: str) -> Iterator[tuple[bytes, str, Any]]:
    """(original bytes, position, decoded value | NotJson) per JSON record."""
    stripped = data.lstrip()
    if stripped.startswith(b"[") or (stripped.startswith(b"{") and b"\n{" not in stripped):
        try:
            doc = _load(data)
        except NotJson as exc:
            yield data, origin, exc
            return
        for n, obj in enumerate(doc if isinstance(doc, list) else [doc], 1):
            try:
                yield _dump(obj), f"{origin}#{n}", obj
            except (ValueError, RecursionError) as exc:
                yield data, f"{origin}#{n}", NotJson(type(exc).__name__)
        return
    for number, line in enumerate(data.splitlines(), 1):  # JSON lines
        if line.strip():
            try:
                yield line, f"{origin}:{number}", _load(line)
            except NotJson as exc:
                yield line, f"{origin}:{number}", exc


def parse_json(
    data: bytes, origin: str, default_kind: str | None = None, source: str = ""
) -> Iterator[Item]:
    for original, position, obj in _objects(data, origin):
        if isinstance(obj, NotJson):
            yield Item(original, position, error="input is not valid JSON")
        elif isinstance(obj, dict) and "leveringen" in obj:
            yield from parse_ddas(obj, position)
        elif not isinstance(obj, dict):
            yield Item(original, position, error="a source record must be a JSON object")
        else:
            yield _json_item(obj, original, position, default_kind, source)


def _json_item(
    obj: dict[str, Any], original: bytes, position: str, default_kind: str | None, source: str
) -> Item:
    """One JSON object as a record; one too deeply nested to flatten is a dead letter,
    not the end of the input."""
    try:
        record = canonical_names(source, obj)
    except RecursionError:
        return Item(original, position, error="a source record is nested too deeply")
    if default_kind and not record.get("kind"):
        record["kind"] = default_kind
    return Item(original, position, record)


def parse_ddas(doc: dict[str, Any], origin: str) -> Iterator[Item]:
    """The DDAS exchange model: every vroegsignaal of every levering."""
    deliveries = doc.get("leveringen")
    if not isinstance(deliveries, list):
        yield Item(json.dumps(doc).encode(), origin, error="DDAS: leveringen must be a list")
        return
    for d, delivery in enumerate(deliveries, 1):
        signals = delivery.get("vroegsignalen") if isinstance(delivery, dict) else None
        if not isinstance(signals, list):
            yield Item(
                json.dumps(delivery).encode(),
                f"{origin}/levering {d}",
                error="DDAS: vroegsignalen must be a list",
            )
            continue
        for n, signal in enumerate(signals, 1):
            original = _dump(signal)
            position = f"{origin}/levering {d}/vroegsignaal {n}"
            if not isinstance(signal, dict):
                yield Item(original, position, error="DDAS: a vroegsignaal must be an object")
                continue
            try:
                yield Item(original, position, ddas_record(signal))
            except RecursionError:
                yield Item(original, position, error="DDAS: a vroegsignaal is nested too deeply")
