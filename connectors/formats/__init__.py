"""Source formats: bytes in, :class:`Item` per record out. One entry point per source.

| source | formats | default kind |
|---|---|---|
| ``ijw`` | iJw 3.2 XML: JW301, JW305, JW307, JW315 | from the message |
| ``iwmo`` | iWmo 3.2 XML: WMO301, WMO305, WMO307, WMO315 | from the message |
| ``income`` | CSV, JSON | ``benefit_changed`` |
| ``vroegsignalering`` | DDAS JSON exchange model, DDAS CSV, canonical JSON | ``arrears_signal`` |
| ``schuldhulp`` | CSV, JSON | ``debt_help_changed`` |
| ``population`` | CSV, JSON; canonical or Haal Centraal BRP names (``columns.py``) | — |
| ``teams`` | JSON, CSV; canonical or ZGW Zaken names (``columns.py``) | — |
"""

from __future__ import annotations

from collections.abc import Iterator

from wijkhub.connectors.formats import istandaarden, tabular
from wijkhub.connectors.formats.base import Item

SOURCES: dict[str, str | None] = {
    "ijw": None,
    "iwmo": None,
    "income": "benefit_changed",
    "vroegsignalering": "arrears_signal",
    "schuldhulp": "debt_help_changed",
    "population": None,
    "teams": None,
}


class UnknownSource(ValueError):
    pass


def parse(source: str, data: bytes, origin: str) -> Iterator[Item]:
    """Parse one input (a file, a request body, a Kafka record) of ``source``."""
    if source not in SOURCES:
        raise UnknownSource(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    if not data.strip():
        yield Item(data, origin, error="empty input")
        return
    if source in ("ijw", "iwmo"):
        yield from istandaarden.parse(data, origin, expect=source)
        return
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        yield from tabular.parse_json(data, origin, SOURCES[source], source)
    else:
        yield from tabular.parse_csv(data, origin, SOURCES[source], source)


__all__ = ["SOURCES", "Item", "UnknownSource", "parse"]
